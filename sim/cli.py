"""`meldbot sim ...`: look at the simulated environments."""

from __future__ import annotations


def register(subparsers) -> None:
    sim = subparsers.add_parser("sim", help="simulated environments (view an episode)")
    sub = sim.add_subparsers(dest="sim_command", metavar="SIM_COMMAND")
    view = sub.add_parser("view", help="render one episode of ENV to a video (MP4, else GIF) and a PNG strip")
    view.add_argument("env", metavar="ENV", help="short name (peg2d, key2d, point_robot, widowx_cable...) or id")
    view.add_argument("--task", default=None, help="task id (default: the first held-out task)")
    view.add_argument("--seed", type=int, default=0)
    view.add_argument("-o", "--out", default=".", help="output directory (default: .)")
    view.add_argument("--policy", choices=("expert", "random"), default="expert")
    view.add_argument("--frames", type=int, default=8, help="frames in the PNG strip")
    view.set_defaults(func=_view)
    sim.set_defaults(func=lambda args: (sim.print_help(), 2)[1])


def _view(args) -> int:
    from sim.viewer import view

    result = view(args.env, task_id=args.task, seed=args.seed, out_dir=args.out, policy=args.policy,
                  strip_frames=args.frames)
    print(f"{args.env} task {result['task_id']} ({args.policy}): success={result['success']} "
          f"return={result['return']:.3f}")
    print(f"video: {result['video']}\nstrip: {result['strip']}")
    return 0
