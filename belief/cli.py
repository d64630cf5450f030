"""`meldbot train | eval | export` for the belief models. Algorithms come from belief.registry.ALGORITHMS
(MELD adds its own line there); torch is imported only when a command runs."""

from __future__ import annotations

import argparse

from belief.meld.checkpoints import HOLD_EPISODE_PORT_HELP, RETAKE_PORT_AFTER_HELP


def _algorithms() -> list[str]:
    from belief.registry import ALGORITHMS

    return sorted(ALGORITHMS)


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="meta-train a belief model (pearl, peril, peril-a, ...)",
                              description="Meta-train on a twin's training tasks; checkpoints, logs, evaluation "
                                          "and curves go to --out. --resume continues bit-for-bit.")
    p.add_argument("--algo", choices=_algorithms(), required=False, help="algorithm (required unless --resume)")
    p.add_argument("--env", help="env short name: reach2d, stick2d, peg2d, key2d, point_robot, ... (or toy)")
    p.add_argument("--config", help="YAML training config (config/train_*.yaml)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--iterations", type=int, default=None, help="override the config's iteration count")
    p.add_argument("--out", help="output directory (default runs/ALGO_ENV_sSEED)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--device", default=None,
                   help="torch device (default: the config's; PEARL/PERIL run on cpu, MELD also on cuda)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="MELD: override a config key (YAML value), e.g. --set time_budget_min=60 "
                        "--set agent.model.predictive_reward_weight=8")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    p = subparsers.add_parser("eval", help="meta-test checkpoints on held-out tasks: table + curves",
                              description="Runs the adaptation protocol on held-out tasks for each checkpoint "
                                          "(and a random policy) and writes eval_table.md/.csv and curves.png.")
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT")
    p.add_argument("--adapt", type=int, default=None, help="adaptation trajectories per task (default: config's)")
    p.add_argument("--out", help="where to write the table and plot (default: the first checkpoint's folder)")
    p.add_argument("--n-test", type=int, default=None,
                   help="held-out tasks to use (default: the run's split; more draws further unseen tasks from "
                        "the same seeded generator, the run's own held-out tasks first)")
    p.add_argument("--z-mode", choices=["sample", "mean"], default="sample",
                   help="z before each trajectory: a posterior sample (PEARL's posterior sampling) or the mean")
    p.add_argument("--no-random", action="store_true", help="skip the random-policy baseline")
    p.add_argument("--trials", type=int, default=None, help="MELD: trials per held-out task (default 1)")
    p.add_argument("--reset-control", action="store_true",
                   help="MELD: also run the same trials with the belief reset at every episode")
    p.add_argument("--split", choices=["test", "train", "fresh"], default=None,
                   help="MELD: tasks to run, held-out (test, default), training tasks, or 40 fresh tasks "
                        "from the same distribution")
    p.add_argument("--hold-episode-port", action="store_true", help=HOLD_EPISODE_PORT_HELP)
    p.add_argument("--retake-port-after", type=int, default=None, metavar="N", help=RETAKE_PORT_AFTER_HELP)
    p.set_defaults(func=_eval)

    p = subparsers.add_parser("export", help="export a checkpoint to a policy file (.ts or .pt2)")
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument("-o", "--output", required=True, help="policy.ts (TorchScript) or policy.pt2 (torch.export)")
    p.add_argument("--task", help="task id whose demonstrations seed PERIL's belief (e.g. reach2d-test-00)")
    p.add_argument("--hold-episode-port", action="store_true", help=HOLD_EPISODE_PORT_HELP)
    p.add_argument("--retake-port-after", type=int, default=None, metavar="N", help=RETAKE_PORT_AFTER_HELP)
    p.set_defaults(func=_export)


def _checkpoint_algo(path: str) -> str:
    from belief import checkpoint as ckpt_io

    state = ckpt_io.load(path)
    algo = state.get("algo")
    if not algo:
        raise ValueError(f"{path}: checkpoint does not say which algorithm made it")
    return algo


def _train(args: argparse.Namespace) -> int:
    from belief.registry import entry

    if args.resume:
        from pathlib import Path

        if not args.out:
            raise ValueError("--resume needs --out DIR (the run to continue)")
        algo = _checkpoint_algo(str(Path(args.out) / "checkpoint.pt"))
    else:
        if not args.algo or not args.env:
            raise ValueError("train needs --algo and --env (or --resume --out DIR)")
        algo = args.algo
    return entry(algo, "train")(args)


def _eval(args: argparse.Namespace) -> int:
    from belief.registry import entry

    algos = {_checkpoint_algo(c) for c in args.checkpoints}
    from belief.registry import ALGORITHMS

    handlers = {ALGORITHMS[a]["eval"] for a in algos if a in ALGORITHMS}
    if len(handlers) > 1:
        raise ValueError(f"cannot compare checkpoints of {sorted(algos)} in one table: evaluate them separately")
    meld_only = [flag for flag, used in (("--trials", args.trials is not None), ("--reset-control", args.reset_control),
                                         ("--split", args.split is not None),
                                         ("--hold-episode-port", args.hold_episode_port),
                                         ("--retake-port-after", args.retake_port_after is not None)) if used]
    if meld_only and algos != {"meld"}:
        raise ValueError(f"{', '.join(meld_only)} apply to MELD checkpoints only, not {sorted(algos)}")
    return entry(sorted(algos)[0], "eval")(args)


def _export(args: argparse.Namespace) -> int:
    from belief.registry import entry

    algo = _checkpoint_algo(args.checkpoint)
    for flag, used in (("--hold-episode-port", args.hold_episode_port),
                       ("--retake-port-after", args.retake_port_after is not None)):
        if used and algo != "meld":
            raise ValueError(f"{flag} applies to MELD checkpoints only, not {algo!r}")
    return entry(algo, "export")(args)
