"""`meldbot launch` command line: path and package forms, --print, --show-args, clean one-line errors."""

import textwrap

import pytest

from meldbot import executables
from meldbot.cli import main
from meldbot.launch.cli import split_target
from meldbot.launch.errors import LaunchError

GRAPH = textwrap.dedent("""
    launch:
    - arg: {name: policy, description: exported policy (.ts)}
    - arg: {name: episodes, default: "3", description: episodes per task}
    - node:
        pkg: meldbot
        exec: trial_runner
        namespace: arm
        on_exit: shutdown
        param: [{name: episodes, value: $(var episodes)}, {name: policy, value: $(var policy)}]
    """).lstrip()


@pytest.fixture
def share(tmp_path, monkeypatch):
    (tmp_path / "launch").mkdir()
    (tmp_path / "launch" / "demo.launch.yaml").write_text(GRAPH)
    monkeypatch.setattr(executables, "package_share", lambda pkg="meldbot": tmp_path)
    return tmp_path


def test_package_form_and_path_form(share):
    path, args = split_target(["meldbot", "demo.launch.yaml", "policy:=/p.ts", "episodes:=5"])
    assert path == share / "launch" / "demo.launch.yaml" and args == {"policy": "/p.ts", "episodes": "5"}
    path, args = split_target([str(share / "launch" / "demo.launch.yaml"), "policy:=a:=b"])
    assert path == share / "launch" / "demo.launch.yaml" and args == {"policy": "a:=b"}
    with pytest.raises(LaunchError, match="malformed launch argument 'episodes=5'"):
        split_target([str(path), "episodes=5"])
    with pytest.raises(LaunchError, match="'nope.launch.yaml' was not found in the share directory"):
        split_target(["meldbot", "nope.launch.yaml"])


def test_print_shows_processes_without_starting_them(share, capsys):
    assert main(["launch", "meldbot", "demo.launch.yaml", "policy:=/p.ts", "--print"]) == 0
    out = capsys.readouterr().out
    assert "[trial_runner-1] (node at" in out and "on_exit=shutdown" in out
    assert "__ns:=/arm" in out and "episodes:=3" in out and "policy:=/p.ts" in out
    assert "cmd: " in out and "trial_runner_node" in out


def test_show_args_lists_declared_arguments(share, capsys):
    assert main(["launch", "meldbot", "demo.launch.yaml", "--show-args"]) == 0
    out = capsys.readouterr().out
    assert "'policy':\n        exported policy (.ts)\n        (required)" in out
    assert "'episodes':\n        episodes per task\n        (default: '3')" in out


def test_errors_are_one_line_and_exit_2(share, capsys):
    assert main(["launch", "meldbot", "demo.launch.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"meldbot launch: error: argument 'policy' has no default and was not given "
                   f"({share / 'launch' / 'demo.launch.yaml'}:2)")
    assert main(["launch", str(share / "missing.launch.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_options_may_follow_the_file_and_arguments(share, capsys, tmp_path):
    assert main(["launch", "meldbot", "demo.launch.yaml", "--print", "policy:=/p.ts", "--log-dir", str(tmp_path)]) == 0
    assert "policy:=/p.ts" in capsys.readouterr().out
    assert main(["launch", "meldbot", "demo.launch.yaml", "--bogus"]) == 2
    assert "unknown option '--bogus'" in capsys.readouterr().err


def test_the_rehearsal_launch_file_resolves():
    """The lead's launch/rehearsal.launch.yaml passes every check (nothing is started)."""
    from meldbot.launch import load_plan

    rehearsal = executables.SOURCE_ROOT / "launch" / "rehearsal.launch.yaml"
    if not rehearsal.is_file():
        pytest.skip("no launch/rehearsal.launch.yaml in this checkout")
    plan = load_plan(rehearsal, {"policy": "/tmp/untrained.ts"})
    assert plan.processes and any(p.shutdown_on_exit for p in plan.processes)
    assert not plan.warnings
