"""Typed results of visiting a launch file: declared arguments and the processes to run."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from meldbot.launch.errors import Location

OUTPUT_MODES = ("screen", "log", "both")


@dataclass(frozen=True)
class ArgDecl:
    """An ``arg`` tag: a launch argument the caller may set with ``name:=value``."""

    name: str
    default: str | None  # source text (substitutions unexpanded); None = required
    description: str
    choices: tuple[str, ...]
    where: Location
    conditional: bool = False  # declared under if/unless or inside a conditional group

    def describe(self) -> str:
        lines = [f"    '{self.name}':", f"        {self.description or 'no description given'}"]
        if self.choices:
            lines.append(f"        (choices: {', '.join(repr(c) for c in self.choices)})")
        lines.append(f"        (default: {self.default!r})" if self.default is not None else "        (required)")
        if self.conditional:
            lines.append("        (declared conditionally)")
        return "\n".join(lines)


@dataclass
class ProcessSpec:
    """A resolved ``node`` or ``executable``: everything needed to start it."""

    label: str  # output prefix, e.g. "pymunk_twin-1"
    argv: list[str]
    env: dict[str, str]  # full child environment
    env_additions: dict[str, str | None]  # differences from the runner's environment (None = removed)
    output: str  # one of OUTPUT_MODES
    where: Location
    kind: str = "executable"  # "node" | "executable"
    shutdown_on_exit: bool = False  # on_exit: shutdown
    sigterm_timeout: float = 5.0  # after SIGINT, wait this long before SIGTERM
    sigkill_timeout: float = 5.0  # after SIGTERM, wait this long before SIGKILL
    cwd: str | None = None
    node_name: str | None = None
    namespace: str | None = None

    def describe(self) -> str:
        lines = [f"[{self.label}] ({self.kind} at {self.where}, output={self.output}"
                 + (", on_exit=shutdown" if self.shutdown_on_exit else "") + ")",
                 f"    cmd: {shlex.join(self.argv)}"]
        if self.cwd:
            lines.append(f"    cwd: {self.cwd}")
        for key, value in sorted(self.env_additions.items()):
            lines.append(f"    env: {key}={value}" if value is not None else f"    env: unset {key}")
        return "\n".join(lines)


@dataclass
class LaunchPlan:
    """Everything a launch file resolved to, in start order."""

    file: str
    processes: list[ProcessSpec] = field(default_factory=list)
    args: list[ArgDecl] = field(default_factory=list)  # every arg tag visited, all files
    configurations: dict[str, str] = field(default_factory=dict)  # top-level values after the visit
    warnings: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # output of `log` tags, in order

    def describe(self) -> str:
        out = [f"launch file: {self.file}", "arguments:"]
        seen = set()
        for arg in self.args:
            if arg.name not in seen:
                seen.add(arg.name)
                out.append(f"    {arg.name} = {self.configurations.get(arg.name, '<scoped>')!r}")
        out.append(f"processes ({len(self.processes)}):")
        out += [p.describe() for p in self.processes]
        return "\n".join(out)
