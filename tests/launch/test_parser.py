"""Resolving launch files to processes: args, conditions, includes, groups, params, remaps, errors with FILE:LINE.

Nothing here starts a process.
"""

import sys

import pytest

from meldbot.executables import command_for
from meldbot.launch import LaunchError, load_plan
from meldbot.launch.parser import declared_args


def argv_of(plan, label):
    return next(p.argv for p in plan.processes if p.label == label)


def write_child(write):
    return write("child.launch.yaml", """
        launch:
        - arg: {name: robot, description: which arm}
        """)


def labels(plan):
    return [p.label for p in plan.processes]


def test_args_defaults_and_command_line_override(write):
    f = write("a.launch.yaml", """
        launch:
        - arg: {name: greeting, default: hello}
        - arg: {name: who, default: "$(var greeting)-world"}
        - executable: {cmd: "echo $(var who)", name: say}
        """)
    assert argv_of(load_plan(f), "say-1") == ["echo", "hello-world"]
    assert argv_of(load_plan(f, {"greeting": "hi"}), "say-1") == ["echo", "hi-world"]
    assert argv_of(load_plan(f, {"who": "me"}), "say-1") == ["echo", "me"]


def test_let_sets_a_variable_and_choices_are_checked(write):
    f = write("a.launch.yaml", """
        launch:
        - arg:
            name: mode
            default: sim
            choice: [{value: sim}, {value: real}]
        - let: {name: tag, value: "$(var mode)-run"}
        - executable: {cmd: "echo $(var tag)"}
        """)
    assert argv_of(load_plan(f), "echo-1") == ["echo", "sim-run"]
    with pytest.raises(LaunchError, match=r"argument 'mode' is 'fake', not one of 'sim', 'real' \(.*a.launch.yaml:2\)"):
        load_plan(f, {"mode": "fake"})


def test_conditions_if_unless_with_equals_not_eval(write):
    f = write("c.launch.yaml", """
        launch:
        - arg: {name: sim, default: "true"}
        - arg: {name: n, default: "2"}
        - executable: {cmd: "echo a", name: a, if: $(var sim)}
        - executable: {cmd: "echo b", name: b, unless: $(var sim)}
        - executable: {cmd: "echo c", name: c, if: "$(not $(var sim))"}
        - executable: {cmd: "echo d", name: d, if: "$(equals $(var n) 2)"}
        - executable: {cmd: "echo e", name: e, if: "$(eval '$(var n) > 5')"}
        - executable: {cmd: "echo f", name: f, unless: "$(and $(var sim) $(not-equals $(var n) 3))"}
        - executable: {cmd: "echo g", name: g, if: "1"}
        """)
    assert labels(load_plan(f)) == ["a-1", "d-1", "g-1"]
    assert labels(load_plan(f, {"sim": "False", "n": "7"})) == ["b-1", "c-1", "e-1", "f-1", "g-1"]


def test_bad_condition_value_names_file_and_line(write):
    f = write("c.launch.yaml", """
        launch:
        - arg: {name: sim, default: "yes"}
        - executable:
            cmd: echo a
            if: $(var sim)
        """)
    with pytest.raises(LaunchError, match=r"condition 'if' of 'executable' must evaluate to true/false/1/0, "
                                          r"got 'yes' \(.*c.launch.yaml:5\)"):
        load_plan(f)


def test_include_passes_args_and_is_not_scoped(write, tmp_path):
    write("child.launch.yaml", """
        launch:
        - arg: {name: robot}
        - arg: {name: speed, default: "1"}
        - let: {name: from_child, value: "set-in-child"}
        - executable: {cmd: "echo $(var robot) $(var speed) $(dirname)", name: child}
        """)
    f = write("parent.launch.yaml", """
        launch:
        - include:
            file: $(dirname)/child.launch.yaml
            arg:
            - {name: robot, value: widowx}
        - executable: {cmd: "echo $(var from_child)", name: after}
        """)
    plan = load_plan(f)
    assert argv_of(plan, "child-1") == ["echo", "widowx", "1", str(tmp_path.resolve())]
    assert argv_of(plan, "after-1") == ["echo", "set-in-child"]  # ROS 2 includes leak their configurations


def test_include_missing_required_arg_names_the_included_file(write):
    write_child(write)
    f = write("parent.launch.yaml", """
        launch:
        - include: {file: $(dirname)/child.launch.yaml}
        """)
    with pytest.raises(LaunchError, match=r"argument 'robot' has no default and was not given by the include at "
                                          r".*parent.launch.yaml:2 \(.*child.launch.yaml:2\)"):
        load_plan(f)


def test_missing_include_file_and_relative_path_hint(write):
    write("child.launch.yaml", "launch: []\n")
    f = write("parent.launch.yaml", """
        launch:
        - include:
            file: child.launch.yaml
        """)
    with pytest.raises(LaunchError, match=r"included launch file 'child.launch.yaml' does not exist .*\$\(dirname\)/"
                                          r"child.launch.yaml.*parent.launch.yaml:3\)"):
        load_plan(f)
    g = write("gone.launch.yaml", """
        launch:
        - include: {file: $(dirname)/nope.launch.yaml}
        """)
    with pytest.raises(LaunchError, match=r"nope.launch.yaml' does not exist \(.*gone.launch.yaml:2\)"):
        load_plan(g)


def test_group_scoping_and_namespaces(write):
    f = write("g.launch.yaml", """
        launch:
        - let: {name: x, value: outer}
        - group:
            children:
            - push_ros_namespace: {namespace: arm}
            - let: {name: x, value: inner}
            - set_env: {name: GROUP_ONLY, value: "1"}
            - set_remap: {from: image, to: camera/image}
            - set_parameter: {name: use_sim_time, value: true}
            - node: {pkg: meldbot, exec: pymunk_twin, name: twin}
            - node: {pkg: meldbot, exec: policy_server, namespace: policy}
            - node: {pkg: meldbot, exec: mcap_recorder, namespace: /abs}
            - group:
                scoped: "false"
                children:
                - let: {name: leaked, value: "yes"}
            - executable: {cmd: "echo $(var x) $(var leaked)", name: in_group}
        - group:
            forwarding: false
            keep: [{name: kept, value: "$(var x)"}]
            children:
            - executable: {cmd: "echo $(var kept) $(var x default-x)", name: fresh}
        - executable: {cmd: "echo $(var x) $(var leaked none)", name: outside}
        """)
    plan = load_plan(f)
    twin = argv_of(plan, "pymunk_twin-1")
    assert twin[:len(command_for("pymunk_twin"))] == command_for("pymunk_twin")
    assert twin[len(command_for("pymunk_twin")):] == ["--ros-args", "-r", "__node:=twin", "-r", "__ns:=/arm",
                                                      "-p", "use_sim_time:=true", "-r", "image:=camera/image"]
    assert "__ns:=/arm/policy" in argv_of(plan, "policy_server-1")
    assert "__ns:=/abs" in argv_of(plan, "mcap_recorder-1")
    assert "image:=camera/image" in argv_of(plan, "policy_server-1")
    assert argv_of(plan, "in_group-1") == ["echo", "inner", "yes"]
    assert argv_of(plan, "fresh-1") == ["echo", "outer", "default-x"]
    assert argv_of(plan, "outside-1") == ["echo", "outer", "none"]  # the scoped group popped x, leaked, ns, remaps
    env = {p.label: p.env for p in plan.processes}
    assert env["pymunk_twin-1"]["GROUP_ONLY"] == "1" and "GROUP_ONLY" not in env["outside-1"]


def test_node_argv_params_from_file_inline_and_remaps(write, tmp_path):
    (tmp_path / "p.yaml").write_text("/**:\n  ros__parameters:\n    rate_hz: 10.0\n")
    f = write("n.launch.yaml", """
        launch:
        - arg: {name: rate, default: "25"}
        - node:
            pkg: meldbot
            exec: policy_server
            name: policy
            namespace: arm
            args: "--verbose"
            ros_args: "--log-level warn"
            param:
            - from: $(dirname)/p.yaml
            - {name: rate_hz, value: $(var rate)}
            - {name: label, value: "'$(var rate)'"}
            - {name: gains, value: [1.0, 2.5]}
            - {name: enabled, value: true}
            - name: limits
              param:
              - {name: vel, value: 0.5}
            remap:
            - {from: joint_states, to: /arm/joint_states_raw}
        """)
    argv = argv_of(load_plan(f), "policy_server-1")
    base = command_for("policy_server")
    assert argv[:len(base)] == base
    assert argv[len(base):] == [
        "--verbose", "--ros-args", "--log-level", "warn",
        "--ros-args", "-r", "__node:=policy", "-r", "__ns:=/arm",
        "--params-file", str(tmp_path.resolve() / "p.yaml"),
        "-p", "rate_hz:=25", "-p", "label:='25'", "-p", "gains:=[1.0, 2.5]", "-p", "enabled:=true",
        "-p", "limits.vel:=0.5",
        "-r", "joint_states:=/arm/joint_states_raw"]


def test_environment_for_children(write, monkeypatch):
    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    monkeypatch.setenv("ROS_DOMAIN_ID", "42")
    monkeypatch.setenv("DROP_ME", "1")
    f = write("e.launch.yaml", """
        launch:
        - unset_env: {name: DROP_ME}
        - executable:
            cmd: env
            env: [{name: EXTRA, value: "$(env ROS_DOMAIN_ID)"}]
        """)
    p = load_plan(f).processes[0]
    assert p.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert p.env["ROS_DOMAIN_ID"] == "42" and p.env["PYTHONUNBUFFERED"] == "1" and p.env["EXTRA"] == "42"
    assert "DROP_ME" not in p.env and p.env_additions["DROP_ME"] is None
    assert p.env_additions["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")  # an explicit choice is kept
    assert load_plan(f).processes[0].env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"


def test_cmd_splitting_keeps_substitution_values_whole(write):
    f = write("s.launch.yaml", """
        launch:
        - arg: {name: py, default: "/opt/my python/bin/python"}
        - executable: {cmd: "$(var py) -c 'print(1)' --flag=$(var py)x", name: run}
        """)
    assert argv_of(load_plan(f), "run-1") == ["/opt/my python/bin/python", "-c", "print(1)",
                                              "--flag=/opt/my python/bin/pythonx"]


def test_process_attributes(write):
    f = write("p.launch.yaml", f"""
        launch:
        - executable:
            cmd: {sys.executable} -c pass
            name: required
            output: screen
            on_exit: shutdown
            sigterm_timeout: "2.5"
            sigkill_timeout: 1.0
        - executable: {{cmd: echo, name: required}}
        """)
    plan = load_plan(f)
    first, second = plan.processes
    assert (first.label, second.label) == ("required-1", "required-2")
    assert first.shutdown_on_exit and first.output == "screen" and first.sigterm_timeout == 2.5
    assert first.sigkill_timeout == 1.0 and not second.shutdown_on_exit and second.output == "log"


def test_show_args_lists_groups_and_includes(write):
    write_child(write)
    f = write("top.launch.yaml", """
        launch:
        - arg: {name: a, default: "1", description: first}
        - group:
            if: "true"
            children:
            - arg: {name: b}
        - include: {file: $(dirname)/child.launch.yaml, arg: [{name: robot, value: x}]}
        """)
    decls = declared_args(f)
    assert [(d.name, d.default, d.conditional) for d in decls] == [("a", "1", False), ("b", None, True),
                                                                   ("robot", None, False)]


# --- errors: every one names FILE:LINE -------------------------------------------------------------------------
@pytest.mark.parametrize("body, line, message", [
    ("- foo: {x: 1}\n", 2, r"unsupported tag 'foo' at .*bad.launch.yaml:2"),
    ("- timer: {period: '1'}\n", 2, r"tag 'timer' is valid ROS 2 but not supported"),
    ("- node:\n    pkg: meldbot\n    exec: policy_server\n    colour: red\n", 5, r"unknown attribute 'colour' of 'node'"),
    ("- node:\n    pkg: meldbot\n    exec: policy_server\n    respawn: 'true'\n", 5,
     r"attribute 'respawn' of 'node' is valid ROS 2 but not supported"),
    ("- node: {pkg: meldbot}\n", 2, r"'node' needs attribute 'exec'"),
    ("- arg:\n    name: rate\n    default: 5\n", 4, r"attribute 'default' of 'arg' must be a YAML string, got int 5: "
                                                     r"quote it \('5'\)"),
    ("- executable:\n    cmd: echo\n    if: true\n", 4, r"attribute 'if' of 'executable' must be a YAML string"),
    ("- executable:\n    cmd: echo\n    sigterm_timeout: 3\n", 4,
     r"attribute 'sigterm_timeout' of 'executable' must be a YAML float or string, got int 3 \(write 3.0\)"),
    ("- executable:\n    cmd: echo $(var x\n", 3, r"bad substitution .*missing '\)'"),
    ("- executable:\n    cmd: echo $(var undefined_thing)\n", 3, r"launch configuration 'undefined_thing' does not exist"),
    ("- node: {pkg: nav2_bringup, exec: bt_navigator}\n", 2,
     r"package 'nav2_bringup' is not available without a ROS install"),
    ("- node: {pkg: meldbot, exec: no_such_exec}\n", 2, r"package 'meldbot' has no executable 'no_such_exec'"),
    ("- executable:\n    cmd: echo\n    on_exit: restart\n", 4, r"on_exit of 'executable' must be 'shutdown'"),
    ("- executable:\n    cmd: echo\n    output: loud\n", 4, r"output of 'executable' must be one of screen, log, both"),
    ("- node:\n    pkg: meldbot\n    exec: policy_server\n    param:\n    - from: /no/such/params.yaml\n", 6,
     r"parameter file '/no/such/params.yaml' does not exist"),
    ("- node:\n    pkg: meldbot\n    exec: policy_server\n    param:\n    - {name: a}\n", 6,
     r"parameter 'a' needs exactly one of 'value' or nested 'param'"),
    ("- node:\n    pkg: meldbot\n    exec: policy_server\n    name: bad-name\n", 5, r"invalid node name 'bad-name'"),
    ("- group:\n    scoped: 'true'\n", 2, r"'group' needs 'children'"),
    ("- arg: {name: a, default: x}\n- arg: {name: a, default: y, name: b}\n", 3, r"duplicate key 'name'"),
    ("- executable: {cmd: echo, if: 'true', unless: 'false'}\n", 2, r"cannot have both 'if' and 'unless'"),
    ("- {node: {exec: x}, arg: {name: y}}\n", 2, r"each entry must be a mapping with exactly one key"),
    ("- arg:\n    name: policy\n    description: exported model\n", 2,
     r"argument 'policy' has no default and was not given"),
])
def test_errors_name_file_and_line(write, body, line, message):
    f = write("bad.launch.yaml", "launch:\n" + body)
    with pytest.raises(LaunchError, match=message) as info:
        load_plan(f)
    assert f"bad.launch.yaml:{line}" in str(info.value)


def test_root_must_be_launch(write):
    with pytest.raises(LaunchError, match=r"exactly one root key, 'launch' \(.*x.launch.yaml:1\)"):
        load_plan(write("x.launch.yaml", "nodes: []\n"))
    with pytest.raises(LaunchError, match=r"invalid YAML.*y.launch.yaml:3"):
        load_plan(write("y.launch.yaml", "launch:\n- arg: {name: a\n- node: {}\n"))


def test_unknown_command_line_argument_warns(write):
    f = write("w.launch.yaml", """
        launch:
        - arg: {name: policy, default: x}
        """)
    plan = load_plan(f, {"polcy": "/tmp/p.ts"})
    assert any("argument 'polcy' given on the command line is not declared" in w for w in plan.warnings)
    assert not load_plan(f, {"policy": "y"}).warnings


def test_group_as_a_plain_list_like_the_ros_tutorial(write):
    f = write("t.launch.yaml", """
        launch:
        - group:
          - push_ros_namespace: {namespace: turtlesim2}
          - node: {pkg: meldbot, exec: pymunk_twin, name: sim}
        - node: {pkg: meldbot, exec: pymunk_twin, name: sim2}
        """)
    first, second = load_plan(f).processes
    assert "__ns:=/turtlesim2" in first.argv and not any(a.startswith("__ns:=") for a in second.argv)
