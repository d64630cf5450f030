"""Visit a ROS 2 YAML launch file and resolve it to a `LaunchPlan` (what to start, with which argv/env).

Semantics follow ros2/launch + launch_ros (Kilted):
- a file is first checked whole (tags, attributes, attribute types, substitution syntax), like
  ``Parser.parse_description`` does, so a typo in a branch that is not taken is still reported;
- then its actions are visited in order, substitutions expanded at visit time;
- launch configurations (``arg``/``let``/include ``arg``) live in one scope per ``group scoped``;
  ``include`` is NOT scoped (values set in an included file stay visible after it), as in ROS 2;
- attribute types are checked the way ``launch_yaml`` checks them (strings must be YAML strings),
  so a file accepted here is accepted by ``ros2 launch`` too.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from meldbot import executables
from meldbot.launch import substitutions as subs
from meldbot.launch import yaml_loader
from meldbot.launch.errors import LaunchError, Location
from meldbot.launch.model import OUTPUT_MODES, ArgDecl, LaunchPlan, ProcessSpec
from meldbot.launch.yaml_loader import MarkedDict, MarkedList

# --- schema ---------------------------------------------------------------------------------------
# Attribute kinds: "subst" a YAML string that may contain $(...); "plain" a YAML string taken literally
# (escapes only); "bool"/"float" typed or a string with substitutions; "value" a parameter value of any
# YAML scalar/list type; "list:<sub-entity>" a list of mappings; "children" a group's entity list.
CONDITION = {"if": "subst", "unless": "subst"}
PROCESS = {"name": "subst", "output": "subst", "on_exit": "plain", "cwd": "subst", "env": "list:env",
           "sigterm_timeout": "float", "sigkill_timeout": "float"}
SCHEMAS: dict[str, dict[str, str]] = {
    "arg": {"name": "plain", "default": "subst", "description": "plain", "choice": "list:choice"},
    "let": {"name": "subst", "value": "subst"},
    "node": {**PROCESS, "pkg": "subst", "exec": "subst", "namespace": "subst", "exec_name": "subst",
             "args": "subst", "ros_args": "subst", "param": "list:param", "remap": "list:remap"},
    "executable": {**PROCESS, "cmd": "subst"},
    "include": {"file": "subst", "arg": "list:name_value"},
    "group": {"scoped": "bool", "forwarding": "bool", "keep": "list:name_value", "children": "children"},
    "push_ros_namespace": {"namespace": "subst"},
    "push-ros-namespace": {"namespace": "subst"},
    "set_env": {"name": "subst", "value": "subst"},
    "unset_env": {"name": "subst"},
    "set_remap": {"from": "subst", "to": "subst"},
    "set_parameter": {"name": "subst", "value": "value"},
    "log": {"message": "subst"},
}
REQUIRED = {"arg": ("name",), "let": ("name", "value"), "node": ("exec",), "executable": ("cmd",),
            "include": ("file",), "push_ros_namespace": ("namespace",), "push-ros-namespace": ("namespace",),
            "set_env": ("name", "value"), "unset_env": ("name",), "set_remap": ("from", "to"),
            "set_parameter": ("name", "value"), "log": ("message",)}
SUB_SCHEMAS = {"env": ({"name": "subst", "value": "subst"}, ("name", "value")),
               "choice": ({"value": "plain"}, ("value",)),
               "remap": ({"from": "subst", "to": "subst"}, ("from", "to")),
               "name_value": ({"name": "subst", "value": "subst"}, ("name", "value")),
               "param": ({"name": "subst", "value": "value", "param": "list:param", "from": "subst"}, ())}
# Real ROS 2 tags/attributes this runner does not implement: named as such rather than "unknown".
ROS_ONLY_TAGS = {"timer", "for", "for_each", "shutdown", "append_env", "set_parameters_from_file", "set_use_sim_time",
                 "ros_timer", "set_ros_log_dir", "node_container", "load_composable_node", "composable_node",
                 "lifecycle_node", "lifecycle_transition", "set_launch_configuration", "opaque_function"}
ROS_ONLY_ATTRS = {"launch-prefix", "respawn", "respawn_delay", "respawn_max_retries", "shell", "emulate_tty",
                  "node-name", "allow_substs", "deprecated_reason", "output_format"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _where(container, key=None) -> Location:
    return container.where(key) if hasattr(container, "where") else Location("?", 0)


@dataclass
class _File:
    path: Path  # absolute, for $(dirname)/$(filename)
    display: str  # as shown in messages


@dataclass
class _Entity:
    tag: str
    body: Mapping  # attributes ({} when the tag has none)
    where: Location
    file: _File
    children: MarkedList | None = None  # group/launch only

    def at(self, key: str) -> Location:
        return _where(self.body, key) if key in self.body else self.where


@dataclass
class _State:
    """What a scoped group pushes and pops: launch configurations, environment, ROS namespace/remaps/params."""

    configs: dict[str, str]
    env: dict[str, str]
    ros_namespace: str | None = None
    remaps: list[tuple[str, str]] = field(default_factory=list)
    params: list[tuple[str, object]] = field(default_factory=list)


def child_env_defaults(env: dict[str, str]) -> dict[str, str]:
    """The runner's environment for children: discovery stays on loopback unless set; unbuffered Python."""
    env = dict(env)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env["PYTHONUNBUFFERED"] = "1"
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(executables.SOURCE_ROOT) not in paths:  # nodes import from the source tree even if not pip-installed
        env["PYTHONPATH"] = os.pathsep.join([str(executables.SOURCE_ROOT), *paths])
    return env


class Visitor:
    """Resolves one launch file (and what it includes) into a `LaunchPlan`."""

    def __init__(self, cli_args: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None,
                 package_share: Callable[[str], Path] = executables.package_share):
        self.environ = dict(os.environ if environ is None else environ)
        self.initial_env = child_env_defaults(self.environ)
        self.cli_args = dict(cli_args or {})
        self.state = _State(configs=dict(self.cli_args), env=dict(self.initial_env))
        self.package_share = package_share
        self.anon: dict[str, str] = {}
        self.counters: Counter = Counter()
        self.include_stack: list[Path] = []
        self.plan: LaunchPlan | None = None

    # --- entry --------------------------------------------------------------------------------------
    def run(self, path: str | Path) -> LaunchPlan:
        self.plan = LaunchPlan(file=str(path))
        self._visit_file(Path(path), str(path), include_args=None, where=None)
        self.plan.configurations = dict(self.state.configs)
        declared = {a.name for a in self.plan.args} | {a.name for a in declared_args(path, self.cli_args)}
        for name in self.cli_args:
            if name not in declared:
                self.plan.warnings.append(f"argument '{name}' given on the command line is not declared by "
                                          f"{path} or the files it includes (ros2 launch ignores it; check "
                                          f"the spelling)")
        return self.plan

    def _ctx(self, f: _File) -> subs.EvalContext:
        return subs.EvalContext(self.state.configs, self.state.env, f.path, self.package_share, self.anon)

    def _visit_file(self, path: Path, display: str, include_args: list[str] | None, where: Location | None):
        resolved = path.resolve()
        if resolved in self.include_stack:
            raise LaunchError(f"'{display}' includes itself (include cycle)", where)
        f = _File(resolved, display)
        children = load_children(path, display)
        validate(children, f)
        if include_args is not None:  # as IncludeLaunchDescription: best-effort check of required args
            for e in iter_entities(children, f):
                if e.tag == "arg" and "default" not in e.body and not _conditional(e) \
                        and e.body.get("name") not in include_args:
                    raise LaunchError(f"argument '{e.body.get('name')}' has no default and was not given "
                                      f"by the include at {where}", e.where)
        self.include_stack.append(resolved)
        try:
            self._visit_children(children, f)
        finally:
            self.include_stack.pop()

    def _visit_children(self, children: MarkedList, f: _File):
        for e in iter_entities(children, f):
            if self._condition(e):
                getattr(self, "_do_" + e.tag.replace("-", "_"))(e)

    # --- attribute access -----------------------------------------------------------------------------
    def _text(self, e: _Entity, key: str, default: str | None = None) -> str | None:
        """Expanded string value of attribute `key`; errors name the attribute's line."""
        if key not in e.body:
            return default
        return self._expand(e.body[key], e.file, e.at(key))

    def _expand(self, text, f: _File, where: Location) -> str:
        try:
            return subs.expand(str(text), self._ctx(f))
        except subs.SubstitutionError as exc:
            raise LaunchError(str(exc), where) from None

    def _bool(self, e: _Entity, key: str, default: bool) -> bool:
        value = e.body.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        try:
            return subs.to_bool(self._text(e, key), f"attribute '{key}' of '{e.tag}'")
        except subs.SubstitutionError as exc:
            raise LaunchError(str(exc), e.at(key)) from None

    def _float(self, e: _Entity, key: str, default: float) -> float:
        if key not in e.body:
            return default
        text = self._text(e, key)
        try:
            value = float(text)
        except ValueError:
            raise LaunchError(f"attribute '{key}' of '{e.tag}' must be a number, got {text!r}", e.at(key)) from None
        if value < 0:
            raise LaunchError(f"attribute '{key}' of '{e.tag}' must be >= 0, got {value}", e.at(key))
        return value

    def _condition(self, e: _Entity) -> bool:
        for key, want in (("if", True), ("unless", False)):
            if key in e.body:
                value = self._text(e, key).strip().lower()
                if value in ("true", "1"):
                    return want
                if value in ("false", "0"):
                    return not want
                raise LaunchError(f"condition '{key}' of '{e.tag}' must evaluate to true/false/1/0, got "
                                  f"{self._text(e, key)!r}", e.at(key))
        return True

    def _cmdline(self, e: _Entity, key: str) -> list[str]:
        """Split a command line as ExecuteProcess._parse_cmdline does: literal text is shlex-split,
        a substitution's value is never split (it joins the text it touches)."""
        try:
            parts = subs.parse(str(e.body[key]))
            ctx = self._ctx(e.file)
            args, arg = [], []
            for part in parts:
                if isinstance(part, subs.Subst):
                    arg.append(subs.evaluate([part], ctx))
                    continue
                tokens = shlex.split(part)
                if not tokens:
                    if arg:
                        args.append("".join(arg))
                        arg = []
                    continue
                if part[0].isspace() and arg:
                    args.append("".join(arg))
                    arg = []
                arg.append(tokens[0])
                if len(tokens) > 1:
                    args.append("".join(arg))
                    args.extend(tokens[1:-1])
                    arg = [tokens[-1]]
                if part[-1].isspace():
                    args.append("".join(arg))
                    arg = []
            if arg:
                args.append("".join(arg))
            return args
        except subs.SubstitutionError as exc:
            raise LaunchError(str(exc), e.at(key)) from None
        except ValueError as exc:  # shlex: unbalanced quotes
            raise LaunchError(f"cannot split '{key}' of '{e.tag}': {exc}", e.at(key)) from None

    # --- actions ----------------------------------------------------------------------------------------
    def _do_arg(self, e: _Entity):
        name = _unescape(e.body["name"])
        choices = tuple(_unescape(c["value"]) for c in e.body.get("choice") or ())
        decl = ArgDecl(name, e.body.get("default"), _unescape(e.body.get("description", "")), choices, e.where,
                       conditional=_conditional(e))
        self.plan.args.append(decl)
        if name not in self.state.configs:
            if decl.default is None:
                raise LaunchError(f"argument '{name}' has no default and was not given", e.where)
            self.state.configs[name] = self._text(e, "default")
        if choices and self.state.configs[name] not in choices:
            raise LaunchError(f"argument '{name}' is {self.state.configs[name]!r}, not one of "
                              f"{', '.join(repr(c) for c in choices)}", e.where)

    def _do_let(self, e: _Entity):
        self.state.configs[self._text(e, "name")] = self._text(e, "value")

    def _do_set_env(self, e: _Entity):
        self.state.env[self._text(e, "name")] = self._text(e, "value")

    def _do_unset_env(self, e: _Entity):
        self.state.env.pop(self._text(e, "name"), None)

    def _do_log(self, e: _Entity):
        self.plan.messages.append(f"[INFO] [launch.user]: {self._text(e, 'message')}")

    def _do_push_ros_namespace(self, e: _Entity):
        pushed = self._text(e, "namespace")
        namespace = make_absolute(prefix_namespace(self.state.ros_namespace, pushed))
        _check_namespace(namespace, e.at("namespace"))
        self.state.ros_namespace = namespace

    def _do_set_remap(self, e: _Entity):
        self.state.remaps.append((self._text(e, "from"), self._text(e, "to")))

    def _do_set_parameter(self, e: _Entity):
        self.state.params.append((self._text(e, "name"), self._param_value(e.body, "value", e.file)))

    def _do_group(self, e: _Entity):
        scoped, forwarding = self._bool(e, "scoped", True), self._bool(e, "forwarding", True)
        keeps = [(self._expand(k["name"], e.file, _where(k, "name")), self._expand(k["value"], e.file, _where(k, "value")))
                 for k in e.body.get("keep") or ()]
        saved = copy.deepcopy(self.state)
        if scoped and not forwarding:
            self.state = _State(configs={}, env=dict(self.initial_env))
        self.state.configs.update(keeps)
        try:
            self._visit_children(e.children, e.file)
        finally:
            if scoped:
                self.state = saved

    def _do_include(self, e: _Entity):
        text = self._text(e, "file")
        path = Path(text)
        if not path.is_file():
            hint = ""
            if not path.is_absolute() and (e.file.path.parent / path).is_file():
                hint = (" (relative paths are resolved from the working directory, as in ros2 launch; "
                        f"write '$(dirname)/{text}')")
            raise LaunchError(f"included launch file '{text}' does not exist{hint}", e.at("file"))
        if not path.name.endswith((".yaml", ".yml")):
            raise LaunchError(f"included launch file '{text}' is not a YAML launch file (only "
                              f"*.launch.yaml can run without a ROS install)", e.at("file"))
        args = [(self._expand(a["name"], e.file, _where(a, "name")), self._expand(a["value"], e.file, _where(a, "value")))
                for a in e.body.get("arg") or ()]
        self.state.configs.update(args)  # as SetLaunchConfiguration in the including scope (not scoped)
        self._visit_file(path, text, include_args=[n for n, _ in args], where=e.where)

    def _do_node(self, e: _Entity):
        exec_name = self._text(e, "exec")
        pkg = self._text(e, "pkg")
        if pkg is None:
            base = [exec_name]
        else:
            try:
                base = executables.command_for(exec_name, pkg)
            except LookupError as exc:
                raise LaunchError(str(exc), e.at("pkg" if pkg != executables.PACKAGE else "exec")) from None
        argv = base + (self._cmdline(e, "args") if "args" in e.body else [])
        if "ros_args" in e.body:
            argv += ["--ros-args", *self._cmdline(e, "ros_args")]
        name = self._text(e, "name")
        if name is not None and not _NAME.match(name):
            raise LaunchError(f"invalid node name {name!r} (letters, digits and '_', not starting with a digit)",
                              e.at("name"))
        namespace = self._text(e, "namespace")
        full_ns = make_absolute(prefix_namespace(self.state.ros_namespace, namespace))
        if full_ns is not None:
            _check_namespace(full_ns, e.at("namespace"))
        ros = executables.ros_args(name, full_ns)
        # global set_parameter first, so the node's own params override them (as launch_ros orders them)
        for key, value in self.state.params:
            ros += executables.ros_args(params={key: value})[1:]
        for kind, item in self._params(e):
            ros += executables.ros_args(params_files=[item])[1:] if kind == "file" else \
                executables.ros_args(params=dict([item]))[1:]
        remaps = list(self.state.remaps) + [
            (self._expand(r["from"], e.file, _where(r, "from")), self._expand(r["to"], e.file, _where(r, "to")))
            for r in e.body.get("remap") or ()]
        ros += executables.ros_args(remaps=remaps)[1:]
        label = self._text(e, "exec_name") or Path(exec_name).name
        self._add_process(e, "node", label, argv + ros, node_name=name, namespace=full_ns)

    def _do_executable(self, e: _Entity):
        argv = self._cmdline(e, "cmd")
        if not argv:
            raise LaunchError("'cmd' of 'executable' is empty", e.at("cmd"))
        label = self._text(e, "name") or Path(argv[0]).name
        self._add_process(e, "executable", label, argv)

    def _add_process(self, e: _Entity, kind: str, label: str, argv: list[str], **extra):
        env = dict(self.state.env)
        for item in e.body.get("env") or ():
            env[self._expand(item["name"], e.file, _where(item, "name"))] = \
                self._expand(item["value"], e.file, _where(item, "value"))
        output = self._text(e, "output", "log")
        if output not in OUTPUT_MODES:
            raise LaunchError(f"output of '{e.tag}' must be one of {', '.join(OUTPUT_MODES)}, got {output!r}",
                              e.at("output"))
        on_exit = e.body.get("on_exit")
        if on_exit is not None and on_exit != "shutdown":
            raise LaunchError(f"on_exit of '{e.tag}' must be 'shutdown' (the only value ROS 2 YAML accepts), "
                              f"got {on_exit!r}", e.at("on_exit"))
        self.counters[label] += 1
        additions = {k: v for k, v in env.items() if self.environ.get(k) != v}
        additions.update({k: None for k in self.environ if k not in env})
        self.plan.processes.append(ProcessSpec(
            label=f"{label}-{self.counters[label]}", argv=argv, env=env, env_additions=additions, output=output,
            where=e.where, kind=kind, shutdown_on_exit=on_exit == "shutdown",
            sigterm_timeout=self._float(e, "sigterm_timeout", 5.0),
            sigkill_timeout=self._float(e, "sigkill_timeout", 5.0), cwd=self._text(e, "cwd"), **extra))

    # --- parameters -------------------------------------------------------------------------------------
    def _params(self, e: _Entity):
        """Yield ("file", path) and ("param", (dotted name, value)) in file order."""
        for p in e.body.get("param") or ():
            if "from" in p:
                path = self._expand(p["from"], e.file, _where(p, "from"))
                if not Path(path).is_file():
                    raise LaunchError(f"parameter file '{path}' does not exist", _where(p, "from"))
                yield "file", path
            else:
                yield from (("param", item) for item in self._param_items(p, e, prefix=""))

    def _param_items(self, p, e: _Entity, prefix: str):
        name = prefix + self._expand(p["name"], e.file, _where(p, "name"))
        if "param" in p:
            for child in p["param"]:
                yield from self._param_items(child, e, prefix=name + ".")
        else:
            yield name, self._param_value(p, "value", e.file)

    def _param_value(self, body: Mapping, key: str, f: _File):
        """A parameter value as launch_ros reads it: YAML scalars/lists as they are; a string is expanded
        and then read as YAML, so "10" is an integer and "'10'" the string '10'."""
        raw, where = body[key], _where(body, key)

        def one(value):
            if not isinstance(value, str):
                return value
            text = self._expand(value, f, where)
            try:
                loaded = yaml.safe_load(text) if text.strip() else text
            except yaml.YAMLError:
                return text
            return loaded if isinstance(loaded, (bool, int, float, str, list)) else text

        return [one(v) for v in raw] if isinstance(raw, list) else one(raw)


# --- namespaces (as launch_ros.utilities) ----------------------------------------------------------------
def prefix_namespace(base: str | None, namespace: str | None) -> str | None:
    if base is None or base == "":
        return namespace
    if namespace is None or namespace == "":
        return base
    if namespace.startswith("/"):
        return namespace
    return base.rstrip("/") + "/" + namespace


def make_absolute(namespace: str | None) -> str | None:
    if namespace is None:
        return None
    return namespace if namespace.startswith("/") else "/" + namespace


def _check_namespace(namespace: str, where: Location):
    tokens = namespace.strip("/").split("/") if namespace.strip("/") else []
    if "//" in namespace or any(not _NAME.match(t) for t in tokens):
        raise LaunchError(f"invalid ROS namespace {namespace!r}", where)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _conditional(e: _Entity) -> bool:
    return "if" in e.body or "unless" in e.body


# --- loading and static checks -------------------------------------------------------------------------------
def load_children(path: Path, display: str) -> MarkedList:
    """The entity list of a launch file's root ``launch`` tag."""
    root = yaml_loader.load(path, display)
    if not isinstance(root, MarkedDict) or list(root) != ["launch"]:
        where = _where(root) if isinstance(root, (MarkedDict, MarkedList)) else Location(display, 1)
        raise LaunchError("a launch file must have exactly one root key, 'launch'", where)
    body = root["launch"]
    if isinstance(body, MarkedDict):  # launch: {children: [...]} is accepted by launch_yaml too
        extra = set(body) - {"children", "deprecated"}
        if extra:
            key = sorted(extra)[0]
            raise LaunchError(f"unknown attribute '{key}' of 'launch'", body.where(key))
        body = body.get("children")
    if body is None:
        return MarkedList()
    if not isinstance(body, MarkedList):
        raise LaunchError("'launch' must hold a list of entities ('- node: ...')", root.where("launch"))
    return body


def iter_entities(children: MarkedList, f: _File):
    for i, item in enumerate(children):
        if not isinstance(item, MarkedDict) or len(item) != 1:
            raise LaunchError("each entry must be a mapping with exactly one key, its tag (e.g. '- node: {...}')",
                              _where(children, i))
        tag = next(iter(item))
        body = item[tag]
        where = item.where(tag)
        kids = None
        if tag == "group":
            if isinstance(body, MarkedList):
                body, kids = MarkedDict(), body
            elif isinstance(body, MarkedDict):
                kids = body.get("children")
        yield _Entity(tag, body if body is not None else {}, where, f, kids)


def validate(children: MarkedList, f: _File):
    """Check every entity of a file (recursing into groups) before anything runs."""
    for e in iter_entities(children, f):
        if e.tag in ROS_ONLY_TAGS:
            raise LaunchError(f"tag '{e.tag}' is valid ROS 2 but not supported by meldbot launch", e.where)
        if e.tag not in SCHEMAS:
            raise LaunchError(f"unsupported tag '{e.tag}' at {e.where} (supported: {', '.join(sorted(SCHEMAS))})")
        if not isinstance(e.body, Mapping):
            raise LaunchError(f"'{e.tag}' must be a mapping of attributes", e.where)
        _check_attrs(e.tag, e.body, {**SCHEMAS[e.tag], **CONDITION}, REQUIRED.get(e.tag, ()), e.where)
        if "if" in e.body and "unless" in e.body:
            raise LaunchError(f"'{e.tag}' cannot have both 'if' and 'unless'", e.at("unless"))
        if e.tag == "group":
            if not isinstance(e.children, MarkedList):
                raise LaunchError("'group' needs 'children': a list of entities", e.where)
            validate(e.children, f)
        if e.tag == "executable" and not str(e.body.get("cmd", "")).strip():
            raise LaunchError("'cmd' of 'executable' is empty", e.at("cmd"))


def _check_attrs(tag: str, body: Mapping, schema: dict[str, str], required, where: Location):
    for key, value in body.items():
        at = _where(body, key)
        if key in ROS_ONLY_ATTRS:
            raise LaunchError(f"attribute '{key}' of '{tag}' is valid ROS 2 but not supported by meldbot launch", at)
        kind = schema.get(key)
        if kind is None:
            hint = " (ROS 2 YAML has no 'required': use 'on_exit: shutdown')" if key == "required" else ""
            raise LaunchError(f"unknown attribute '{key}' of '{tag}'{hint} (valid: {', '.join(sorted(schema))})", at)
        _check_value(tag, key, kind, value, at)
    for key in required:
        if key not in body:
            raise LaunchError(f"'{tag}' needs attribute '{key}'", where)


def _check_value(tag: str, key: str, kind: str, value, at: Location):
    if kind in ("subst", "plain"):
        if not isinstance(value, str):  # launch_yaml does no coercion: ros2 launch rejects unquoted numbers/bools
            raise LaunchError(f"attribute '{key}' of '{tag}' must be a YAML string, got {type(value).__name__} "
                              f"{value!r}: quote it ('{_yaml_text(value)}') so ros2 launch accepts it too", at)
        if kind == "subst":
            _check_syntax(value, at)
    elif kind in ("bool", "float"):
        if isinstance(value, str):
            _check_syntax(value, at)
        elif type(value) is not (bool if kind == "bool" else float):  # an int is no float to launch_yaml
            example = "true" if kind == "bool" else f"{float(value) if isinstance(value, int) else 1.0}"
            raise LaunchError(f"attribute '{key}' of '{tag}' must be a YAML {kind} or string, got "
                              f"{type(value).__name__} {value!r} (write {example})", at)
    elif kind == "value":
        items = value if isinstance(value, list) else [value]
        if not items and isinstance(value, list):
            return
        if any(isinstance(v, (dict, list)) or v is None for v in items):
            raise LaunchError(f"attribute '{key}' of '{tag}' must be a scalar or a list of scalars, got {value!r}", at)
        kinds = {type(v) for v in items}
        if len(kinds) > 2 or (len(kinds) == 2 and str not in kinds):  # as launch's is_instance_of_valid_type
            raise LaunchError(f"attribute '{key}' of '{tag}' mixes types in a list: {value!r}", at)
        for v in items:
            if isinstance(v, str):
                _check_syntax(v, at)
    elif kind.startswith("list:"):
        sub = kind[5:]
        if not isinstance(value, MarkedList) or not value or not all(isinstance(v, MarkedDict) for v in value):
            raise LaunchError(f"attribute '{key}' of '{tag}' must be a non-empty list of mappings", at)
        schema, required = SUB_SCHEMAS[sub]
        for i, item in enumerate(value):
            _check_attrs(key, item, schema, required, value.where(i))
            if sub == "param":
                _check_param(item, value.where(i))
    elif kind == "children":
        if not isinstance(value, MarkedList):
            raise LaunchError(f"'children' of '{tag}' must be a list of entities", at)


def _check_param(p: Mapping, at: Location):
    if "from" in p:
        if set(p) != {"from"}:
            raise LaunchError("a parameter with 'from' (a parameter file) takes no other attribute", at)
        return
    if "name" not in p:
        raise LaunchError("a parameter needs 'name' (with 'value' or nested 'param') or 'from' (a file)", at)
    if ("value" in p) == ("param" in p):
        raise LaunchError(f"parameter '{p['name']}' needs exactly one of 'value' or nested 'param'", at)


def _check_syntax(text: str, at: Location):
    try:
        subs.parse(text)
    except subs.SubstitutionError as exc:
        raise LaunchError(str(exc), at) from None


def _yaml_text(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


# --- public helpers --------------------------------------------------------------------------------------------
def load_plan(path: str | Path, cli_args: Mapping[str, str] | None = None,
              environ: Mapping[str, str] | None = None) -> LaunchPlan:
    """Resolve `path` with `name:=value` arguments into the processes to start (starts nothing)."""
    return Visitor(cli_args, environ).run(path)


def declared_args(path: str | Path, cli_args: Mapping[str, str] | None = None) -> list[ArgDecl]:
    """Every ``arg`` a file declares, in groups too, and in includes whose path resolves (ros2 launch -s)."""
    found: list[ArgDecl] = []
    visitor = Visitor(cli_args)
    seen: set[Path] = set()

    def walk(children: MarkedList, f: _File, conditional: bool):
        for e in iter_entities(children, f):
            cond = conditional or _conditional(e)
            if e.tag == "arg":
                found.append(ArgDecl(_unescape(e.body["name"]), e.body.get("default"),
                                     _unescape(e.body.get("description", "")),
                                     tuple(_unescape(c["value"]) for c in e.body.get("choice") or ()), e.where, cond))
                if e.body["name"] not in visitor.state.configs and "default" in e.body:
                    try:
                        visitor.state.configs[e.body["name"]] = visitor._text(e, "default")
                    except LaunchError:
                        pass
            elif e.tag == "group" and e.children is not None:
                walk(e.children, f, cond)
            elif e.tag == "include":
                try:
                    target = Path(visitor._text(e, "file"))
                    walk_file(target, str(target), cond)
                except LaunchError:
                    continue  # path depends on something only known at run time

    def walk_file(p: Path, display: str, conditional: bool):
        if p.resolve() in seen or not p.is_file():
            return
        seen.add(p.resolve())
        children = load_children(p, display)
        f = _File(p.resolve(), display)
        validate(children, f)
        walk(children, f, conditional)

    walk_file(Path(path), str(path), False)
    return found
