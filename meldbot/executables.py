"""Find and start the package's executables the way `ros2 run meldbot EXEC` would, without ROS tooling.

The executables are the console scripts declared in pyproject.toml. On a robot colcon installs them to
``lib/meldbot``; here they are resolved from the package's entry points and started with the current
interpreter, so nothing depends on PATH.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path

PACKAGE = "meldbot"
SOURCE_ROOT = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def executables() -> dict[str, str]:
    """{exec name: "module:function"} for every console script of the meldbot distribution."""
    found = {}
    for ep in entry_points(group="console_scripts"):
        dist = getattr(ep, "dist", None)
        if dist is not None and dist.metadata["Name"] == PACKAGE:
            found[ep.name] = ep.value
    if not found:  # running from a source tree that is not pip-installed: read pyproject directly
        import tomllib

        data = tomllib.loads((SOURCE_ROOT / "pyproject.toml").read_text())
        found = dict(data["project"]["scripts"])
    return found


def command_for(exec_name: str, pkg: str = PACKAGE) -> list[str]:
    """argv that runs `exec_name` of package `pkg` (only meldbot's own executables are known here)."""
    if pkg != PACKAGE:
        raise LookupError(f"package '{pkg}' is not available without a ROS install (only '{PACKAGE}' is)")
    table = executables()
    if exec_name not in table:
        raise LookupError(f"package '{pkg}' has no executable '{exec_name}' (has: {', '.join(sorted(table))})")
    module, _, func = table[exec_name].partition(":")
    code = f"import sys; from {module} import {func} as main; sys.exit(main())"
    return [sys.executable, "-c", code]


def package_share(pkg: str = PACKAGE) -> Path:
    """$(find-pkg-share pkg): the colcon install's share dir if on AMENT_PREFIX_PATH, else the source tree."""
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        share = Path(prefix) / "share" / pkg
        if (share / "package.xml").is_file():
            return share
    if pkg == PACKAGE:
        return SOURCE_ROOT
    raise LookupError(f"package '{pkg}' not found (AMENT_PREFIX_PATH={os.environ.get('AMENT_PREFIX_PATH', '')!r})")


def ros_args(name: str | None = None, namespace: str | None = None, params_files=(), params: dict | None = None,
             remaps=()) -> list[str]:
    """--ros-args for node name, namespace, parameter files, inline parameters and remappings."""
    import yaml

    args = ["--ros-args"]
    if name:
        args += ["-r", f"__node:={name}"]
    if namespace:
        args += ["-r", f"__ns:={'/' + namespace.strip('/') if namespace.strip('/') else '/'}"]
    for f in params_files:
        args += ["--params-file", str(f)]
    for key, value in (params or {}).items():
        text = yaml.safe_dump(value, default_flow_style=True).strip()
        if text.endswith("\n..."):
            text = text[: -len("\n...")]
        args += ["-p", f"{key}:={text}"]
    for src, dst in remaps:
        args += ["-r", f"{src}:={dst}"]
    return args


def isolated_ros_env(domain_id: int, base: dict | None = None) -> dict[str, str]:
    """Environment for a child process: its own DDS domain, discovery kept on loopback."""
    env = dict(os.environ if base is None else base)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE_ROOT), env.get("PYTHONPATH", "")]))
    return env
