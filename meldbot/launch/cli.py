"""`meldbot launch [PACKAGE] FILE [name:=value ...]`: run a ROS 2 YAML launch file without a ROS install."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meldbot.launch.errors import LaunchError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "launch", help="run a launch/*.launch.yaml file (ROS 2 YAML launch format) without ROS",
        description="Run a ROS 2 YAML launch file: `meldbot launch FILE [name:=value ...]` or "
                    "`meldbot launch meldbot FILE.launch.yaml [name:=value ...]`. The same file runs with "
                    "`ros2 launch meldbot FILE` on a robot.")
    # REMAINDER + _take_options: options may also come after FILE and the name:=value list
    p.add_argument("target", nargs=argparse.REMAINDER, metavar="[PACKAGE] FILE [name:=value ...]",
                   help="a launch file path, or a package name and a file in its share/launch folder, then "
                        "launch arguments as name:=value")
    p.add_argument("--print", "--dry-run", dest="dry_run", action="store_true",
                   help="print the resolved processes (argv, environment changes) and start nothing")
    p.add_argument("-s", "--show-args", "--show-arguments", dest="show_args", action="store_true",
                   help="list the launch arguments the file declares, with defaults and descriptions")
    p.add_argument("--log-dir", type=Path, default=None,
                   help="where output='log' processes write (default ~/.ros/log/meldbot-launch-<time>/)")
    p.set_defaults(func=run)


FLAGS = {"--print": "dry_run", "--dry-run": "dry_run", "-s": "show_args", "--show-args": "show_args",
         "--show-arguments": "show_args"}


def _take_options(args: argparse.Namespace) -> list[str]:
    """Move options found among the positional words onto `args`; return the remaining words."""
    rest, words = [], list(args.target)
    while words:
        word = words.pop(0)
        if word in FLAGS:
            setattr(args, FLAGS[word], True)
        elif word == "--log-dir" or word.startswith("--log-dir="):
            value = word.partition("=")[2] if "=" in word else (words.pop(0) if words else "")
            if not value:
                raise LaunchError("--log-dir needs a directory")
            args.log_dir = Path(value)
        elif word.startswith("-") and ":=" not in word:
            raise LaunchError(f"unknown option '{word}' (see meldbot launch -h)")
        else:
            rest.append(word)
    if not rest:
        raise LaunchError("missing launch file: meldbot launch [PACKAGE] FILE [name:=value ...]")
    return rest


def split_target(target: list[str]) -> tuple[Path, dict[str, str]]:
    """(launch file, {name: value}) from `[PACKAGE] FILE name:=value ...` (as ros2 launch reads them)."""
    from meldbot import executables

    # as ros2 launch: an existing file first means path form; otherwise PACKAGE FILE
    if not Path(target[0]).is_file() and len(target) >= 2 and ":=" not in target[0]:
        package, name, rest = target[0], target[1], target[2:]
        try:
            share = executables.package_share(package)
        except LookupError as exc:
            raise LaunchError(str(exc)) from None
        candidates = [share / "launch" / name, share / name]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            matches = sorted(share.glob(f"**/{name}"))
            if not matches:
                raise LaunchError(f"file '{name}' was not found in the share directory of package '{package}' "
                                  f"({share})")
            found = matches[0]
        path = found
    else:
        if ":=" in target[0]:
            raise LaunchError("the first argument must be a launch file (or a package name), not 'name:=value'")
        path, rest = Path(target[0]), target[1:]
    args: dict[str, str] = {}
    for item in rest:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise LaunchError(f"malformed launch argument '{item}', expected format '<name>:=<value>'")
        args[name] = value
    return path, args


def run(args: argparse.Namespace) -> int:
    from meldbot.launch import declared_args, launch_file, load_plan

    path, launch_args = split_target(_take_options(args))
    if not path.is_file():
        raise LaunchError(f"launch file '{path}' does not exist")
    if args.show_args:
        decls = declared_args(path, launch_args)
        if not decls:
            print("No arguments.")
            return 0
        print("Arguments (pass arguments as '<name>:=<value>'):\n")
        seen = set()
        for decl in decls:
            if decl.name not in seen:
                seen.add(decl.name)
                print(decl.describe() + "\n")
        return 0
    if not args.dry_run:
        return launch_file(path, launch_args, args.log_dir)
    plan = load_plan(path, launch_args)
    for warning in plan.warnings:
        print(f"[WARN] [launch]: {warning}", file=sys.stderr)
    print("\n".join([*plan.messages, plan.describe()]))
    return 0
