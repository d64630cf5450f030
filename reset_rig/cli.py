"""`meldbot rig ...`: check the reset rig and the success sensor by hand, straight on the serial port.

Stop the reset_rig node first: the port can only be open once. Opening it resets the Arduino, so
every command but `status` and `settings` homes the rig before it moves.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from contextlib import contextmanager
from pathlib import Path

import yaml


def _share_config(name: str) -> str:
    """config/<name> of the package share (colcon install) or the source tree, "" if absent."""
    from meldbot.executables import package_share

    path = package_share() / "config" / name
    return str(path) if path.is_file() else ""


def _ros_params(path: Path) -> dict:
    data = yaml.safe_load(path.read_text()) or {}
    for value in data.values():  # {node name: {ros__parameters: {...}}}
        if isinstance(value, dict) and "ros__parameters" in value:
            return dict(value["ros__parameters"])
    raise ValueError(f"{path}: no '<node>: ros__parameters:' block")


def _rig_config(args):
    from reset_rig.rig import RigConfig

    params = _ros_params(Path(args.config)) if args.config else {}
    known = {f.name for f in dataclasses.fields(RigConfig)}
    params = {k: v for k, v in params.items() if k in known}  # node-only keys (publish rate...) dropped
    if args.port:
        params["port"] = args.port
    params["home_on_connect"] = False
    return RigConfig(**params)


def _print_snapshot(snap):
    pos = ("unknown (not homed)" if snap.rail_mm is None
           else f"rail {snap.rail_mm:.3f} mm, rotation {snap.rotation_deg:.3f} deg")
    print(f"state:    {snap.state} (GRBL {snap.grbl_state or '?'}){'' if snap.homed else ', not homed'}")
    print(f"position: {pos}")
    print(f"probe:    {'closed' if snap.probe else 'open'}")
    if snap.task_id:
        print(f"task:     {snap.task_id}")
    print(f"message:  {snap.message}")


@contextmanager
def _open(args):
    """The rig, connected (the open resets the board) but not homed; closed afterwards."""
    from reset_rig.rig import Rig

    rig = Rig(_rig_config(args))
    try:
        rig.connect()
        print(f"GRBL {rig.driver.version} on {rig.config.port}; settings "
              f"{'match' if not rig.settings_diffs else 'DIFFER FROM'} {rig.settings_label()}")
        yield rig
    finally:
        rig.close()


def cmd_status(args) -> int:
    with _open(args) as rig:
        _print_snapshot(rig.poll())
        return 0 if rig.settings_ok else 1


def cmd_home(args) -> int:
    with _open(args) as rig:
        _print_snapshot(rig.home())
        return 0


def cmd_goto(args) -> int:
    with _open(args) as rig:
        if args.task not in rig.tasks:
            raise LookupError(f"unknown task '{args.task}' (known: {', '.join(sorted(rig.tasks))})")
        task = rig.tasks[args.task]
        rig.home()
        print(f"moving to {task.task_id}: rail {task.rail_mm:g} mm, rotation {task.rotation_deg:g} deg, "
              f"correct port {task.port}")
        _print_snapshot(rig.goto_task(args.task))
        return 0


def cmd_settings(args) -> int:
    from reset_rig.settings import compare_settings, format_setting

    with _open(args) as rig:
        diffs = rig.settings_diffs
        for d in diffs:
            print(f"  {d}")
        if not diffs:
            print(f"board matches {rig.settings_file.path} (version {rig.settings_file.version})")
            return 0
        if not args.apply:
            print(f"{len(diffs)} setting(s) differ; `meldbot rig settings --apply` writes the file's values")
            return 1
        for d in diffs:
            line = format_setting(d.number, d.expected)
            rig.driver.command(line)
            print(f"  wrote {line}")
        left = compare_settings(rig.driver.read_settings(), rig.settings_file)
        print("settings now match" if not left else f"still different: {'; '.join(map(str, left))}")
        return 0 if not left else 1


def cmd_sensor(args) -> int:
    from reset_rig.success_sensor import SuccessSensor, SuccessSensorConfig, task_ports_from_table

    params = _ros_params(Path(args.config)) if args.config else {}
    known = {f.name for f in dataclasses.fields(SuccessSensorConfig)}
    params = {k: v for k, v in params.items() if k in known}
    if args.interface:
        params["interface"], params["port_interfaces"] = args.interface, ""
    if args.sysfs:
        params["sysfs_net"] = args.sysfs
    cfg = SuccessSensorConfig(**params)
    sensor = SuccessSensor(cfg, task_ports_from_table(cfg.tasks_file) if cfg.port_interfaces else {})
    if args.task:
        sensor.set_task(args.task)
    print(f"watching {cfg.interface or cfg.port_interfaces} for {args.duration:g}s "
          f"(debounce on {cfg.debounce_on_s:g}s / off {cfg.debounce_off_s:g}s); plug and unplug the cable")
    last = None
    end = time.monotonic() + args.duration
    while time.monotonic() < end:
        r = sensor.sample(time.monotonic())
        key = (r.success, r.raw)
        if key != last:
            print(f"{time.strftime('%H:%M:%S')}  raw {'UP  ' if r.raw else 'down'}  success "
                  f"{'YES' if r.success else 'no '}  {r.sources} {r.note}", flush=True)
            last = key
        time.sleep(cfg.poll_period_s)
    return 0


def _guard(fn):
    """Rig and sensor failures are ordinary outcomes of a check: one clear line, exit code 1."""
    def run(args) -> int:
        from reset_rig.rig import RigError
        from reset_rig.success_sensor import SensorError

        try:
            return fn(args)
        except (RigError, SensorError) as exc:
            print(f"meldbot rig {args.rig_command}: error: {exc}")
            return 1
    return run


def register(subparsers):
    rig = subparsers.add_parser("rig", help="reset rig (GRBL) and success sensor checks")
    sub = rig.add_subparsers(dest="rig_command", metavar="RIG_COMMAND", required=True)

    def common(p):
        p.add_argument("--port", help="serial port (default: from the config file)")
        p.add_argument("--config", default=_share_config("reset_rig.yaml"),
                       help="reset_rig parameters YAML (default: config/reset_rig.yaml)")
        return p

    common(sub.add_parser("status", help="connect (resets the board), show state, position and settings check")
           ).set_defaults(func=_guard(cmd_status))
    common(sub.add_parser("home", help="connect and home ($H)")).set_defaults(func=_guard(cmd_home))
    p = common(sub.add_parser("goto", help="connect, home, move to a task of calibration/rig_tasks.yaml"))
    p.add_argument("task", help="task id, e.g. train-03")
    p.set_defaults(func=_guard(cmd_goto))
    p = common(sub.add_parser("settings", help="compare `$$` with reset_rig/firmware/grbl_settings.yaml"))
    p.add_argument("--apply", action="store_true", help="write the file's values to the board")
    p.set_defaults(func=_guard(cmd_settings))
    p = sub.add_parser("sensor", help="watch the success sensor (carrier) with debouncing")
    p.add_argument("--interface", help="network interface (default: from the config file)")
    p.add_argument("--task", help="current task id (for port_interfaces mode)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds to watch (default 30)")
    p.add_argument("--sysfs", help=argparse.SUPPRESS)  # a fake /sys/class/net, for tests
    p.add_argument("--config", default=_share_config("success_sensor.yaml"),
                   help="success_sensor parameters YAML")
    p.set_defaults(func=_guard(cmd_sensor))
