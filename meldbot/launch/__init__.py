"""Run ROS 2 YAML launch files (``launch/*.launch.yaml``) without a ROS install.

The same files stay valid for ``ros2 launch meldbot FILE`` on a robot: only real ROS 2 YAML-frontend
tags, attributes and substitutions are accepted, and attribute types are checked the way
``launch_yaml`` checks them. See docs/launch.md.
"""

from __future__ import annotations

from pathlib import Path

from meldbot.launch.errors import LaunchError
from meldbot.launch.model import ArgDecl, LaunchPlan, ProcessSpec
from meldbot.launch.parser import declared_args, load_plan

__all__ = ["ArgDecl", "LaunchError", "LaunchPlan", "ProcessSpec", "declared_args", "launch_file", "load_plan"]


def launch_file(path: str | Path, args: dict[str, str] | None = None, log_dir: str | Path | None = None) -> int:
    """Resolve and run `path` with `name:=value` args until it ends; returns the runner's exit status
    (an ``on_exit: shutdown`` process's own code when that process ended the launch)."""
    import sys

    from meldbot.launch.supervisor import run_plan

    plan = load_plan(path, args)
    for warning in plan.warnings:
        print(f"[WARN] [launch]: {warning}", file=sys.stderr)
    for message in plan.messages:
        print(message, flush=True)
    return run_plan(plan.processes, Path(log_dir) if log_dir else None)
