"""`meldbot rehearse`: the whole graph in simulation with one command (what `make rehearse` runs).

Exports a seeded untrained policy unless one is given, runs launch/rehearsal.launch.yaml through the
launch runner, then reports the per-episode success table and what the MCAP recording holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from meldbot.executables import package_share

REQUIRED_RECORDED = ("joint_states", "camera_pair/image_raw", "velocity_controller/commands", "success")


def register(subparsers):
    parser = subparsers.add_parser("rehearse", help="run the simulated graph end to end and print the success table")
    parser.add_argument("--policy", help="exported policy (.ts/.pt2); default: a seeded untrained policy")
    parser.add_argument("--out-dir", help="where journal, summary and MCAP go (default runs/rehearsal/<time>)")
    parser.add_argument("--tasks", default="train-00,test-00,test-01", help="comma-separated task ids")
    parser.add_argument("--episodes", type=int, default=2, help="episodes per trial")
    parser.add_argument("--episode-steps", type=int, default=30, help="policy steps per episode")
    parser.add_argument("--sim", choices=["pymunk", "mujoco"], default="pymunk", help="which twin runs the arm")
    parser.add_argument("--robot", choices=["widowx", "sawyer"], default="widowx", help="MuJoCo twin's robot")
    parser.add_argument("--family", default="planar_peg",
                        help="Pymunk twin's task family: planar_peg, reach2d, stick2d, peg2d, key2d, multi2d")
    parser.add_argument("launch_args", nargs="*", metavar="name:=value", help="more launch arguments")
    parser.set_defaults(func=run)


def run(args) -> int:
    out_dir = Path(args.out_dir or Path("runs/rehearsal") / time.strftime("%Y%m%d-%H%M%S")).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    joints, limits, rate, env_name = _arm_of(args.sim, args.robot, args.family)
    policy = Path(args.policy).resolve() if args.policy else _export_untrained(out_dir, joints, limits, rate, env_name)
    if not policy.is_file():
        raise FileNotFoundError(f"policy file not found: {policy}")
    for extra in args.launch_args:
        if ":=" not in extra:
            raise ValueError(f"launch argument '{extra}' is not of the form name:=value")
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    launch_file = package_share() / "launch" / "rehearsal.launch.yaml"
    argv = [sys.executable, "-m", "meldbot.cli", "launch", str(launch_file), "--log-dir", str(out_dir / "logs"),
            f"policy:={policy}",
            f"out_dir:={out_dir}", f"tasks:={args.tasks}", f"episodes:={args.episodes}",
            f"episode_steps:={args.episode_steps}", f"sim:={args.sim}", f"robot:={args.robot}", f"family:={args.family}",
            f"joints:=[{', '.join(joints)}]", *args.launch_args]
    print(f"rehearsal: policy {policy}\nrehearsal: output {out_dir}", flush=True)
    proc = subprocess.Popen(argv, env=env)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        code = proc.wait()  # the launch runner got the same Ctrl-C and is stopping the graph
    _report_recording(out_dir / "rehearsal.mcap")
    summary = out_dir / "summary.txt"
    if code == 0 and summary.is_file():
        print(f"rehearsal: done; journal {out_dir / 'journal.json'}, summary {summary}, logs {out_dir / 'logs'}")
    return code


def _arm_of(sim: str, robot: str, family: str):
    """(joint names, velocity limits, control rate Hz, task family) of the twin the rehearsal runs."""
    if sim == "pymunk" and family == "planar_peg":
        from sim.planar_arm import JOINT_NAMES, PlanarArmConfig

        return list(JOINT_NAMES), PlanarArmConfig().velocity_limit, 5.0, "planar_peg"
    if sim == "pymunk":
        from sim.pymunk2d.env import Planar2DConfig
        from sim.pymunk2d.kinematics import ArmGeometry
        from sim.pymunk2d.registration import SHORT_NAMES
        from sim.pymunk2d.robot import JOINT_NAMES

        if family not in SHORT_NAMES or family == "point_robot":
            raise ValueError(f"--family {family!r} cannot be hosted by the Pymunk twin "
                             f"(planar_peg, {', '.join(n for n in SHORT_NAMES if n != 'point_robot')})")
        return list(JOINT_NAMES), ArmGeometry().joint_velocity_limit, 1.0 / Planar2DConfig().control_dt, family
    from sim.mujoco.robots import SAWYER, WIDOWX

    arm, rate, name = (WIDOWX, 3.3, "widowx_cable") if robot == "widowx" else (SAWYER, 4.0, "sawyer_peg")
    return list(arm.joint_names), list(arm.velocity_limit), rate, name


def _export_untrained(out_dir: Path, joints, limits, rate: float, env_name: str) -> Path:
    from belief.policy_file import save_policy
    from belief.untrained import untrained_policy

    path = out_dir / "untrained_policy.ts"
    module, meta = untrained_policy(joints, limits, control_rate_hz=rate, env=env_name)
    save_policy(module, meta, path)
    print(f"rehearsal: exported an untrained {env_name} policy to {path}", flush=True)
    return path


def _report_recording(path: Path):
    from meldbot.mcap_schema import recorded_topic_counts

    if not path.is_file():
        partial = path.with_name(path.name + ".part")
        print(f"rehearsal: no finished recording at {path}" + (f" (partial: {partial})" if partial.exists() else ""))
        return
    counts = recorded_topic_counts(path)
    print(f"rehearsal: recorded {path}:")
    for topic, n in sorted(counts.items()):
        print(f"  {topic:<40} {n:>6} messages")
    missing = [t for t in REQUIRED_RECORDED if not any(k.endswith("/" + t) and counts[k] for k in counts)]
    if missing:
        print(f"rehearsal: WARNING: nothing recorded on {missing}")
