"""`meldbot` command line. Each area registers its own subcommands in a module listed here.

A command module defines ``register(subparsers)`` adding parsers whose ``func(args) -> int`` runs the
command; heavy imports (torch, mujoco) happen inside ``func`` so `meldbot --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

COMMAND_MODULES = [
    "meldbot.launch.cli",  # launch FILE [name:=value ...]
    "meldbot.rehearse_cli",  # rehearse
    "meldbot.contract_cli",  # topics
    "sim.cli",  # sim view ENV
    "reset_rig.cli",  # rig status|home|goto TASK
    "drivers.cli",  # arm/camera bring-up checks
    "belief.cli",  # train, eval, export
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meldbot", description="meldbot: few-trial robot learning on ROS 2")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name.rsplit(".", 1)[0]) is None or importlib.util.find_spec(name) is None:
            continue  # that area is not part of this checkout
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError, LookupError) as exc:
        print(f"meldbot {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
