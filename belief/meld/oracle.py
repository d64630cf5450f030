"""Privileged-state SAC on the cable twin: an upper bound for what any belief model can reach.

The agent sees the twin's true state (joint positions/velocities, plug-tip pose, rig pose) *and* the
task (correct port one-hot, rail, rotation), so there is nothing to infer: it measures whether the
insertion skill itself is learnable with the reduced run's action scale, horizon and env-step budget.
MELD, which must infer all of that from 64x128 images and rewards, cannot do better than this.

    python -m belief.meld.oracle --env-steps 30000 --out runs/meld/oracle   # oracle_eval.json, oracle.png
    python -m belief.meld.oracle --plot runs/meld/oracle runs/meld/oracle_b -o compare.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from belief.buffers import FIELDS, ReplayBuffer
from belief.checkpoint import atomic_save_figure, atomic_write_text
from belief.sac import SAC, SACConfig
from sim.mujoco.cable import N_PORTS


def oracle_features(state: np.ndarray, task) -> np.ndarray:
    """True state + task descriptor: [state, one-hot(port), rail / 1 cm, rotation / 8 deg]."""
    rail, rot, port = task.descriptor
    onehot = np.eye(N_PORTS, dtype=np.float32)[int(port)]
    return np.concatenate([state, onehot, [rail / 0.01, rot / np.radians(8.0)]]).astype(np.float32)


def run_episode(env, task, sac: SAC | None, action_scale: float, rng, seed: int, deterministic: bool,
                buffer: ReplayBuffer | None = None) -> dict:
    """One episode (uniform random actions when `sac` is None); its transitions go into `buffer`."""
    env.reset(seed=seed, options={"task": task})
    obs = oracle_features(env.state(), task)
    path: dict[str, list] = {k: [] for k in FIELDS}
    success, ret, info = False, 0.0, {}
    for _ in range(env.episode_steps):
        if sac is None:
            action = rng.uniform(-1.0, 1.0, env.action_space.shape).astype(np.float32)
        else:
            with torch.no_grad():
                a, _, mean = sac.actor(torch.as_tensor(obs)[None])
            action = (mean if deterministic else a)[0].numpy()
        _, reward, _, truncated, info = env.step(action * action_scale)
        next_obs = oracle_features(env.state(), task)
        # time-limit truncation is not terminal: the critic bootstraps through it
        for key, value in zip(FIELDS, (obs, action, reward, info["sparse_reward"], next_obs, 0.0), strict=True):
            path[key].append(value)
        obs, ret = next_obs, ret + reward
        success = success or info["success"]
        if truncated and info.get("unstable"):
            break
    if buffer is not None:
        buffer.add_path(path)
    return {"success": success, "return": ret, "final_distance": info.get("goal_distance", np.nan),
            "at_correct_port": bool(info.get("at_correct_port", False)), "steps": len(path["obs"])}


def evaluate(env, tasks, sac, action_scale, seed) -> dict:
    rng = np.random.default_rng(seed)
    eps = [run_episode(env, t, sac, action_scale, rng, seed + i, True) for i, t in enumerate(tasks)]
    return {k: float(np.mean([e[k] for e in eps])) for k in eps[0]}


def plot_runs(run_dirs, path) -> Path:
    """Held-out curves of one or more oracle runs: success, final distance to the seat, at correct port."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    for run in map(Path, run_dirs):
        log = json.loads((run / "oracle_eval.json").read_text())
        x = [row["env_steps"] for row in log]
        for ax, key, scale in zip(axes, ("success", "final_distance", "at_correct_port"), (1, 100, 1), strict=True):
            ax.plot(x, [row[key] * scale for row in log], "o-", ms=3, label=run.name)
    for ax, title in zip(axes, ("held-out success", "final distance to the seat (cm)", "ends over the correct port"),
                         strict=True):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("environment steps")
    axes[0].set_ylim(-0.05, 1.05)
    axes[2].set_ylim(-0.05, 1.05)
    axes[0].legend(fontsize=7)
    fig.suptitle("privileged-state SAC (true state + task) on the cable twin", fontsize=10)
    return atomic_save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m belief.meld.oracle", description=__doc__.splitlines()[0])
    p.add_argument("--env-steps", type=int, default=30_000)
    p.add_argument("--random-episodes", type=int, default=20)
    p.add_argument("--updates-per-step", type=int, default=1)
    p.add_argument("--action-scale", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=50, help="episodes between held-out evaluations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/meld/oracle")
    p.add_argument("--plot", nargs="+", metavar="RUN_DIR", help="only plot these runs' evaluations (to -o)")
    p.add_argument("-o", "--output", default="oracle_compare.png", help="with --plot: the PNG to write")
    args = p.parse_args(argv)
    if args.env_steps < 1:
        p.error(f"--env-steps must be >= 1, got {args.env_steps}")
    if args.eval_every < 1:
        p.error(f"--eval-every must be >= 1 episode, got {args.eval_every}")
    if args.updates_per_step < 0:
        p.error(f"--updates-per-step must be >= 0, got {args.updates_per_step}")
    if not 0.0 < args.action_scale <= 1.0:
        p.error(f"--action-scale must be in (0, 1] (a fraction of the joint velocity limit), got {args.action_scale}")
    if args.plot:
        missing = [d for d in args.plot if not (Path(d) / "oracle_eval.json").is_file()]
        if missing:
            p.error(f"no oracle_eval.json in {', '.join(missing)} (an oracle run writes it at its first evaluation)")
        print(plot_runs(args.plot, args.output))
        return 0
    from sim.mujoco.envs import WidowXCableEnv

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = WidowXCableEnv()
    tasks = env.task_set
    obs_dim = len(oracle_features(env.state(), tasks.train[0]))
    sac = SAC(obs_dim, env.action_space.shape[0], SACConfig(hidden=(256, 256), init_alpha=0.1))
    buffer = ReplayBuffer(obs_dim, env.action_space.shape[0], args.env_steps)
    log, steps, episode, stats = [], 0, 0, {}
    bar = tqdm(total=args.env_steps, desc="oracle sac")
    while steps < args.env_steps:
        task = tasks.train[rng.integers(len(tasks.train))]
        policy = None if episode < args.random_episodes else sac
        new = run_episode(env, task, policy, args.action_scale, rng, 1000 + episode, False, buffer)["steps"]
        steps += new
        episode += 1
        bar.update(new)
        if policy is not None:
            for _ in range(new * args.updates_per_step):
                batch = buffer.sample(256, rng)
                stats = sac.update(*(torch.as_tensor(batch[k]) for k in ("obs", "actions", "rewards", "next_obs", "dones")))
        if episode % args.eval_every == 0 and episode >= args.random_episodes:
            row = {"episode": episode, "env_steps": steps, **evaluate(env, tasks.test, sac, args.action_scale, 99),
                   "q_mean": stats.get("q_mean"), "alpha": stats.get("alpha")}
            log.append(row)
            bar.write(json.dumps(row))
            atomic_write_text(json.dumps(log, indent=1), out / "oracle_eval.json")
            plot_runs([out], out / "oracle.png")
    bar.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
