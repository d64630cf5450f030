"""Meta-test protocol on held-out tasks, tables and curves.

For each held-out task: start from the initial context (empty for PEARL, the K demonstrations for PERIL),
run `n_adapt` trajectories with posterior sampling (z ~ q(z | context so far) before each, deterministic
actions), record return and success of each. K-shot = the index of the first successful trajectory
(n_adapt + 1 when none succeeded), as in PERIL's table. A uniform random policy is the baseline.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from belief.checkpoint import atomic_save_figure, atomic_write_text
from belief.pearl import adapt, rollout


def meta_test(agent, env, tasks, n_adapt: int, seed: int = 0, demos=None, policy: str = "agent",
              z_mode: str = "sample") -> list[dict]:
    """Rows {task, k, return, success} for k = 1..n_adapt on each task; leaves global RNGs untouched."""
    rows = []
    with torch.random.fork_rng():
        torch.manual_seed(seed + 12345)
        for i, task in enumerate(tasks):
            seeds = np.random.default_rng([seed, 7, i]).integers(0, 2**31, size=n_adapt)
            if policy == "random":
                rng = np.random.default_rng([seed, 8, i])
                shape = env.action_space.shape
                paths = [rollout(env, task, lambda _o, rng=rng, shape=shape: rng.uniform(-1, 1, shape).astype(np.float32), int(s))
                         for s in seeds]
            else:
                start = agent.initial_context(demos[i] if (agent.uses_demos and demos is not None) else None)
                paths = [p for p, _ in adapt(env, agent, task, n_adapt, start, seeds, deterministic=True,
                                             z_mode=z_mode)]
            for k, p in enumerate(paths, start=1):
                rows.append({"task": task.task_id, "k": k, "return": float(p["return"]),
                             "success": bool(p["success"])})
    return rows


def summarize(rows: list[dict], n_adapt: int) -> dict:
    """Per-trajectory mean return / success rate, success within k, K-shot statistics."""
    tasks = sorted({r["task"] for r in rows})
    succ = np.array([[next(r["success"] for r in rows if r["task"] == t and r["k"] == k) for k in range(1, n_adapt + 1)]
                     for t in tasks], dtype=float)
    rets = np.array([[next(r["return"] for r in rows if r["task"] == t and r["k"] == k) for k in range(1, n_adapt + 1)]
                     for t in tasks], dtype=float)
    first = np.where(succ.any(1), succ.argmax(1) + 1, n_adapt + 1)
    flat = {}
    for k in range(n_adapt):
        flat[f"success_{k + 1}"] = float(succ[:, k].mean())
        flat[f"return_{k + 1}"] = float(rets[:, k].mean())
    within = {k: float((first <= k).mean()) for k in range(1, n_adapt + 1)}
    flat["success_within_3"] = within[min(3, n_adapt)]
    flat[f"success_within_{n_adapt}"] = within[n_adapt]
    flat["kshot_mean"] = float(first.mean())
    return {"n_tasks": len(tasks), "n_adapt": n_adapt, "success": succ.mean(0).tolist(),
            "return": rets.mean(0).tolist(), "within": within, "kshot": first.tolist(), "flat": flat}


def table(summaries: dict[str, dict]) -> tuple[str, str]:
    """(markdown, csv) with one row per method."""
    n = max(s["n_adapt"] for s in summaries.values())
    head = ["method", "tasks"] + [f"success@{k}" for k in range(1, n + 1)] + [f"return@{k}" for k in range(1, n + 1)] \
        + ["success within 3", "K-shot (mean)"]
    lines = []
    for name, s in summaries.items():
        lines.append([name, str(s["n_tasks"])] + [f"{v:.2f}" for v in s["success"]] + [f"{v:.2f}" for v in s["return"]]
                     + [f"{s['flat']['success_within_3']:.2f}", f"{s['flat']['kshot_mean']:.2f}"])
    md = "| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n" + "".join("| " + " | ".join(r) + " |\n"
                                                                           for r in lines)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(head)
    writer.writerows(lines)
    return md, buf.getvalue()


def plot_curves(summaries: dict[str, dict], histories: dict[str, list[dict]], path: Path, title: str = "") -> Path:
    """Left: held-out success within 3 trajectories vs env steps; right: success per adaptation trajectory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, hist in histories.items():
        if hist:
            ax1.plot([h["env_steps"] for h in hist], [h["success_within_3"] for h in hist], marker="o", label=name)
    ax1.set_xlabel("environment steps (meta-training)")
    ax1.set_ylabel("held-out success within 3 trajectories")
    ax1.set_title("during training (the run's held-out tasks)", fontsize=9)
    ax1.set_ylim(-0.05, 1.05)
    ax1.grid(alpha=0.3)
    ax1.legend()
    for name, s in summaries.items():
        ax2.plot(range(1, s["n_adapt"] + 1), s["success"], marker="o", label=name)
    ax2.set_xticks(range(1, max(s["n_adapt"] for s in summaries.values()) + 1))
    ax2.set_xlabel("adaptation trajectory")
    ax2.set_ylabel("held-out success rate")
    ax2.set_ylim(-0.05, 1.05)
    ax2.grid(alpha=0.3)
    ax2.legend()
    fig.suptitle(title)
    return atomic_save_figure(fig, path)


def write_reports(trainer, out: Path, with_random: bool = True) -> dict:
    """Final held-out evaluation of a trainer: eval_table.md/.csv and curves.png in `out`."""
    name = trainer.cfg.algo
    summaries = {name: trainer.evaluate()}
    if with_random:
        rows = meta_test(None, trainer.env, trainer.tasks.test, trainer.cfg.adapt_trajs, trainer.cfg.seed, policy="random")
        summaries["random"] = summarize(rows, trainer.cfg.adapt_trajs)
    md, text = table(summaries)
    atomic_write_text(md, out / "eval_table.md")
    atomic_write_text(text, out / "eval_table.csv")
    plot_curves(summaries, {name: trainer.eval_history}, out / "curves.png", f"{name} on {trainer.cfg.env}")
    return summaries


def eval_command(args) -> int:
    """`meldbot eval CHECKPOINT [CHECKPOINT...]`: one table/plot comparing them (+ random)."""
    from belief import checkpoint as ckpt_io
    from belief.registry import make_env, make_task_set
    from belief.training import agent_from_checkpoint, test_demos

    summaries, histories = {}, {}
    env = cfg = tasks = None
    for path in args.checkpoints:
        state = ckpt_io.load(path)
        agent, cfg = agent_from_checkpoint(state)
        n_adapt = args.adapt or cfg.adapt_trajs
        env = make_env(cfg.env, seed=cfg.seed, **cfg.env_kwargs)
        sizes = {k: v for k, v in (("n_train", cfg.n_train_tasks), ("n_test", args.n_test or cfg.n_test_tasks)) if v}
        tasks = make_task_set(cfg.env, seed=cfg.seed, **sizes).test
        demos = test_demos(env, tasks, agent.config.n_demos, cfg.demo_noise, cfg.seed) if agent.uses_demos else None
        label = f"{cfg.algo}" if cfg.algo not in summaries else f"{cfg.algo} ({Path(path).parent.name})"
        summaries[label] = summarize(meta_test(agent, env, tasks, n_adapt, cfg.seed, demos,
                                               z_mode=getattr(args, "z_mode", "sample")), n_adapt)
        histories[label] = state.get("eval_history", [])
        print(f"{label}: {path} (iteration {state['iteration']}, {state['env_steps']} env steps)")
    if not args.no_random and env is not None:
        summaries["random"] = summarize(meta_test(None, env, tasks, n_adapt, cfg.seed, policy="random"), n_adapt)
    out = Path(args.out) if args.out else Path(args.checkpoints[0]).parent
    md, text = table(summaries)
    atomic_write_text(md, out / "eval_table.md")
    atomic_write_text(text, out / "eval_table.csv")
    plot_curves(summaries, histories, out / "curves.png", f"held-out tasks of {cfg.env}")
    print(md)
    print(f"wrote {out / 'eval_table.md'}, {out / 'eval_table.csv'}, {out / 'curves.png'}")
    return 0
