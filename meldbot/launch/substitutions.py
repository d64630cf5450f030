"""ROS 2 launch substitutions: parse ``$(name arg ...)`` templates and evaluate them.

The syntax follows ros2/launch's frontend grammar (``launch/frontend/grammar.lark``): outside a
substitution everything is literal except ``\\x`` escapes; inside, arguments are separated by one
space and may be single- or double-quoted to contain spaces, parentheses or nested substitutions.
Evaluation follows the behaviour of the matching ``launch``/``launch_ros`` Substitution classes.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class SubstitutionError(ValueError):
    """A substitution is malformed or cannot be evaluated (the caller adds FILE:LINE)."""


@dataclass(frozen=True)
class Subst:
    """One ``$(name args...)``; each argument is itself a list of text and nested substitutions."""

    name: str
    args: tuple[tuple, ...]

    def __str__(self) -> str:
        return f"$({' '.join([self.name, *(to_text(a) for a in self.args)])})"


Part = str | Subst


def to_text(parts) -> str:
    """Source-like text of parsed parts (for messages)."""
    return "".join(p if isinstance(p, str) else str(p) for p in parts)


@dataclass
class EvalContext:
    """What substitutions can see while a launch file is being visited."""

    configs: dict[str, str]
    env: dict[str, str]
    launch_file: Path
    package_share: Callable[[str], Path]
    anon_names: dict[str, str] = field(default_factory=dict)


# name -> (min args, max args or None); real ROS 2 substitutions this runner evaluates
ARITY: dict[str, tuple[int, int | None]] = {
    "var": (1, 2), "env": (1, 2), "optenv": (1, 2), "find-pkg-share": (1, 1), "eval": (1, 2),
    "equals": (2, 2), "not-equals": (2, 2), "not": (1, 1), "and": (2, 2), "or": (2, 2),
    "any": (1, None), "all": (1, None), "dirname": (0, 0), "filename": (0, 0), "anon": (1, 1),
}
# real ROS 2 substitutions that need a ROS install (or are not worth emulating)
ROS_ONLY = {"command", "find-exec", "find-pkg-prefix", "exec-in-pkg", "log_dir", "launch_log_dir",
            "for-var", "for-index", "if", "is-empty", "not-empty", "file-content", "path-join",
            "string-join", "string-strip", "find-launchfile", "parameter"}

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class _Parser:
    def __init__(self, text: str):
        self.text, self.i = text, 0

    def error(self, message: str) -> SubstitutionError:
        return SubstitutionError(f"bad substitution in {self.text!r}: {message}")

    def template(self) -> list[Part]:
        return self._scan(stop="")

    def _scan(self, stop: str, unexpected: str = "", name: str = "") -> list[Part]:
        """Literal text (backslash escapes) and nested substitutions up to a character in `stop`."""
        parts, buf = [], []
        text, n = self.text, len(self.text)
        while self.i < n:
            c = text[self.i]
            if c in stop:
                break
            if c == "\\" and self.i + 1 < n:
                buf.append(text[self.i + 1])
                self.i += 2
            elif text.startswith("$(", self.i):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(self.substitution())
            elif c in unexpected:
                raise self.error(f"unexpected {c!r} in an argument of '$({name} ...)' (quote the whole argument)")
            else:
                buf.append(c)
                self.i += 1
        if buf:
            parts.append("".join(buf))
        return parts

    def substitution(self) -> Subst:
        self.i += 2
        match = _IDENT.match(self.text, self.i)
        if not match:
            raise self.error(f"expected a substitution name after '$(' at column {self.i + 1}")
        name = match.group()
        self.i = match.end()
        args = []
        while True:
            if self.i >= len(self.text):
                raise self.error(f"unterminated '$({name}' (missing ')')")
            c = self.text[self.i]
            if c == ")":
                self.i += 1
                break
            if c != " ":
                raise self.error(f"unexpected {c!r} at column {self.i + 1} in '$({name} ...)'")
            self.i += 1
            args.append(tuple(self.value(name)))
        sub = Subst(name, tuple(args))
        check_arity(sub, self.error)
        return sub

    def value(self, name: str) -> list[Part]:
        if self.i >= len(self.text):
            raise self.error(f"unterminated '$({name}' (missing ')')")
        quote = self.text[self.i]
        if quote in "'\"":
            self.i += 1
            return self.quoted(quote, name)
        parts = self._scan(stop=" )", unexpected="'\"(", name=name)
        if not parts:
            raise self.error(f"empty argument in '$({name} ...)' (arguments are separated by one space)")
        return parts

    def quoted(self, quote: str, name: str) -> list[Part]:
        parts = self._scan(stop=quote)
        if self.i >= len(self.text):
            raise self.error(f"unterminated {quote} quote in '$({name} ...)'")
        self.i += 1
        if self.i < len(self.text) and self.text[self.i] not in " )":
            raise self.error(f"a quoted argument of '$({name} ...)' must end at a space or ')'")
        return parts or [""]


def check_arity(sub: Subst, error) -> None:
    if sub.name in ROS_ONLY:
        raise error(f"'$({sub.name} ...)' is a ROS 2 substitution this runner does not support without a ROS "
                    f"install (supported: {', '.join(sorted(ARITY))})")
    if sub.name not in ARITY:
        raise error(f"unknown substitution '$({sub.name} ...)' (supported: {', '.join(sorted(ARITY))})")
    low, high = ARITY[sub.name]
    n = len(sub.args)
    if n < low or (high is not None and n > high):
        want = f"{low}" if low == high else f"{low} or more" if high is None else f"{low} to {high}"
        raise error(f"'$({sub.name} ...)' takes {want} argument(s), got {n}")


def parse(text: str) -> list[Part]:
    """Parse a template into literal text and `Subst` parts; SubstitutionError if malformed."""
    return _Parser(text).template() if text else [""]


def has_substitutions(parts) -> bool:
    return any(isinstance(p, Subst) for p in parts)


def evaluate(parts, ctx: EvalContext) -> str:
    """Expand parsed parts to a string."""
    return "".join(p if isinstance(p, str) else _perform(p, ctx) for p in parts)


def expand(text: str, ctx: EvalContext) -> str:
    """parse + evaluate."""
    return evaluate(parse(text), ctx)


_TRUE, _FALSE = ("true", "1", "on"), ("false", "0", "off")


def to_bool(value: str, what: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise SubstitutionError(f"{what}: {value!r} is not a boolean (true/false/1/0)")


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _equals(left: str, right: str) -> bool:
    # as launch's EqualsSubstitution: booleans by truth value, numbers with float tolerance
    if left.lower() in ("true", "false", "1", "0") and right.lower() in ("true", "false", "1", "0"):
        return (left.lower() in ("true", "1")) == (right.lower() in ("true", "1"))
    if _is_float(left) and _is_float(right):
        return math.isclose(float(left), float(right))
    return left == right


def _python_eval(expression: str, modules: str, sub: Subst) -> str:
    import importlib

    namespace: dict = {}
    for name in (modules.replace(",", " ").split() if modules else ["math"]):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise SubstitutionError(f"{sub}: cannot import module '{name}'") from exc
        if module.__name__ == "math":  # launch's PythonExpression exposes math's names unqualified
            namespace.update(vars(module))
        namespace[name] = module
    try:
        return str(eval(expression, {}, namespace))  # noqa: S307 - launch files are code, as in ROS
    except Exception as exc:
        raise SubstitutionError(f"$(eval {expression!r}) failed: {type(exc).__name__}: {exc}") from None


def _perform(sub: Subst, ctx: EvalContext) -> str:
    args = [evaluate(a, ctx) for a in sub.args]
    name = sub.name
    if name == "var":
        if args[0] in ctx.configs:
            return ctx.configs[args[0]]
        if len(args) == 2:
            return args[1]
        raise SubstitutionError(f"launch configuration '{args[0]}' does not exist (declare it with 'arg' or 'let')")
    if name in ("env", "optenv"):
        if args[0] in ctx.env:
            return ctx.env[args[0]]
        if len(args) == 2 or name == "optenv":
            return args[1] if len(args) == 2 else ""
        raise SubstitutionError(f"environment variable '{args[0]}' is not set (use $(env {args[0]} DEFAULT) or "
                                f"$(optenv {args[0]}))")
    if name == "find-pkg-share":
        try:
            return str(ctx.package_share(args[0]))
        except LookupError as exc:
            raise SubstitutionError(str(exc)) from None
    if name == "eval":
        return _python_eval(args[0], args[1] if len(args) == 2 else "", sub)
    if name == "equals":
        return str(_equals(args[0], args[1])).lower()
    if name == "not-equals":
        return str(not _equals(args[0], args[1])).lower()
    if name == "not":
        return str(not to_bool(args[0], str(sub))).lower()
    if name == "and":
        return str(to_bool(args[0], str(sub)) and to_bool(args[1], str(sub))).lower()
    if name == "or":
        return str(to_bool(args[0], str(sub)) or to_bool(args[1], str(sub))).lower()
    if name == "any":
        return str(any([to_bool(a, str(sub)) for a in args])).lower()
    if name == "all":
        return str(all([to_bool(a, str(sub)) for a in args])).lower()
    if name == "dirname":
        return str(ctx.launch_file.parent)
    if name == "filename":
        return str(ctx.launch_file)
    if name == "anon":
        return ctx.anon_names.setdefault(args[0], f"{args[0]}_{uuid.uuid4().hex[:12]}")
    raise SubstitutionError(f"unknown substitution '$({name} ...)'")  # unreachable: checked at parse
