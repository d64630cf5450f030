"""Task probe: how much of the hidden task does a MELD belief hold, frame by frame?

The replay trials of a checkpoint are filtered through its latent model; a small classifier then
predicts a discrete task parameter (the cable twin's correct port) from the belief at a given frame of
the trial. As a reference the same classifier reads the rewards the model was given up to that frame:
if the rewards already tell the port and the belief does not, the model drops task information; if
neither does, the collected behaviour never visits what would reveal it. Folds hold out whole tasks
(stratified by label), so a probe cannot memorise a task's look: what is measured is what carries over
to a task never seen, as on the held-out tasks.

Replay trials are mostly old, near-random behaviour; `--fresh N` probes N new deterministic trials per
training task instead, run with the checkpoint's own policy: what its belief holds when it acts as it
is evaluated.

For a run with a privileged (task-aware) critic the probe also reports how much that critic's value of
the actor's action depends on the task (`critic_task_sensitivity`); for a run whose belief holds the task
head's probabilities (`task_probs_in_belief`), how much the actor's action does (`actor_task_sensitivity`);
and for a run whose belief has a task part (those probabilities, the task latent's mean and std), how far
the action moves when that whole part comes from a trial of another task class (`actor_task_part_swap`).

`python -m belief.meld.probe RUN_DIR/checkpoint.pt [--label port] [--fresh 2]` writes task_probe.json
and task_probe.png next to the checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from belief.meld.buffers import stored_trials
from belief.meld.model import LatentModel, belief_columns


def filter_trials(model: LatentModel, buffers: dict[str, dict], reward_input: str = "dense",
                  batch: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic beliefs (N, T, belief_dim), the model's reward inputs (N, T) and task ids (N,)."""
    key = "reward_dense" if reward_input == "dense" else "reward_sparse"
    beliefs, rewards, ids = [], [], []
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        for task_id, data in buffers.items():
            for i in range(0, len(data["images"]), batch):
                sl = slice(i, i + batch)
                post = model.posterior(*(torch.as_tensor(data[k][sl], device=device) for k in ("images", "actions", key)),
                                       sample=False)
                beliefs.append(model.belief(post).cpu().numpy())
                rewards.append(np.asarray(data[key][sl], np.float32))
                ids += [task_id] * len(beliefs[-1])
    if not ids:
        raise ValueError("task probe: the checkpoint holds no replay trials")
    return np.concatenate(beliefs), np.concatenate(rewards), np.asarray(ids)


def fresh_trials(env, policy, tasks, episodes: int, per_task: int, reward_input: str = "dense",
                 seed: int = 30_000) -> dict[str, dict]:
    """`per_task` deterministic trials of `policy` on each task, laid out like a checkpoint's buffers."""
    from belief.meld.trials import run_trial

    out = {}
    for i, task in enumerate(tasks):
        runs = [run_trial(env, task, policy, episodes, "mean", reward_input, seed=seed + 1000 * i + 10 * j).trial
                for j in range(per_task)]
        out[task.task_id] = {k: np.stack([getattr(r, k) for r in runs])
                             for k in ("images", "actions", "reward_dense", "reward_sparse")}
    return out


def reward_sensitivity(model: LatentModel, buffers: dict[str, dict], reward_input: str = "dense") -> dict:
    """How much the belief listens to rewards: the newest trial of each task filtered once with its own
    rewards and once with another task's (same images and actions). Returns the mean change of mu2 and
    its spread across the trials; a ratio near 0 means the images alone set the belief."""
    key = "reward_dense" if reward_input == "dense" else "reward_sparse"
    ids = [t for t in sorted(buffers) if len(buffers[t]["images"])]
    if len(ids) < 2:
        raise ValueError("reward sensitivity: needs replay trials of at least two tasks")
    images, actions, rewards = (torch.as_tensor(np.stack([buffers[t][k][-1] for t in ids]))
                                for k in ("images", "actions", key))
    model.eval()
    with torch.no_grad():
        own = model.posterior(images, actions, rewards, sample=False)["mu2"]
        swapped = model.posterior(images, actions, rewards.roll(1, 0), sample=False)["mu2"]
    change, spread = (own - swapped).abs().mean().item(), own.std(0).mean().item()
    return {"mu2_change": change, "mu2_spread": spread, "ratio": change / max(spread, 1e-12), "n_tasks": len(ids)}


def task_folds(groups: np.ndarray, labels: np.ndarray, folds: int) -> np.ndarray:
    """Fold index per sample: whole tasks go to one fold, dealt round-robin within each label."""
    fold_of = {}
    for label in np.unique(labels):
        for k, task in enumerate(sorted(set(groups[labels == label]))):
            fold_of[task] = k % folds
    return np.array([fold_of[g] for g in groups])


def probe_accuracy(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, folds: int = 4,
                   seed: int = 0, steps: int = 200) -> tuple[float, float]:
    """Held-out-task accuracy of a small MLP classifier, and the majority-label rate (chance)."""
    classes, y = np.unique(labels, return_inverse=True)
    fold = task_folds(groups, labels, folds)
    hits, chance_hits, n = 0, 0, 0
    gen = torch.Generator().manual_seed(seed)
    for k in range(folds):
        test, train = fold == k, fold != k
        if not test.any() or len(np.unique(y[train])) < 2:
            continue
        mu, sd = features[train].mean(0), features[train].std(0) + 1e-6
        x = torch.as_tensor((features - mu) / sd, dtype=torch.float32)
        t = torch.as_tensor(y)
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, len(classes)))
        for p in net.parameters():  # seeded init: the probe itself must not add run-to-run noise
            torch.nn.init.normal_(p, std=0.1, generator=gen)
        opt = torch.optim.Adam(net.parameters(), 1e-2, weight_decay=1e-3)
        tr = torch.as_tensor(train)
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[tr]), t[tr]).backward()
            opt.step()
        with torch.no_grad():
            hits += int((net(x[torch.as_tensor(test)]).argmax(1) == t[torch.as_tensor(test)]).sum())
        chance_hits += int(np.bincount(y[test], minlength=len(classes)).max())
        n += int(test.sum())
    if n == 0:
        raise ValueError("task probe: needs at least two tasks per label value to hold tasks out")
    return hits / n, chance_hits / n


def task_probe(beliefs: np.ndarray, rewards: np.ndarray, labels: np.ndarray, groups: np.ndarray,
               frames: list[int], folds: int = 4, memory: slice | None = None) -> dict:
    """Probe accuracy per frame from the belief and from the reward history up to that frame.

    memory: the belief's columns that carry memory (mu2); probed alone as well, since the rest (z1)
    is read off the current frame and its reward, and can name the port without remembering it."""
    rows = []
    for f in frames:
        if not 0 <= f < beliefs.shape[1]:
            raise ValueError(f"task probe: frame {f} outside the trial's 0..{beliefs.shape[1] - 1}")
        belief_acc, chance = probe_accuracy(beliefs[:, f], labels, groups, folds)
        reward_acc, _ = probe_accuracy(rewards[:, : f + 1], labels, groups, folds)
        row = {"frame": int(f), "belief": belief_acc, "reward_history": reward_acc, "chance": chance}
        if memory is not None:
            row["memory"] = probe_accuracy(beliefs[:, f, memory], labels, groups, folds)[0]
        rows.append(row)
    return {"frames": rows, "n_trials": int(len(labels)), "n_tasks": int(len(set(groups)))}


def plot_task_probe(result: dict, horizon: int, path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from belief.meld.evaluate import _save_figure

    rows = result["frames"]
    f = [r["frame"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(f, [r["belief"] for r in rows], "bo-", label="from the belief")
    if all("memory" in r for r in rows):
        ax.plot(f, [r["memory"] for r in rows], "c^-",
                label=f"from its memory part ({result.get('memory_part', 'mu2')}) alone")
    ax.plot(f, [r["reward_history"] for r in rows], "ks--", label="from the rewards so far")
    ax.plot(f, [r["chance"] for r in rows], "r:", label="chance (majority label)")
    for e in range(1, max(f) // (horizon + 1) + 1):
        ax.axvline(e * (horizon + 1) - 0.5, color="gray", ls="--")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("frame in trial")
    ax.set_ylabel("held-out-task accuracy")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _save_figure(fig, path)


def critic_task_sensitivity(sac, beliefs: np.ndarray, ids: np.ndarray, task_features: dict[str, np.ndarray],
                            n_classes: int, frames: list[int], actor=None) -> list[dict]:
    """For a privileged (task-aware) critic: at each frame, the actor's deterministic action is valued
    with each trial's own task descriptor and with each of the `n_classes` label one-hots (the leading
    columns of the descriptor) in its place. Reports, per frame, the spread of Q across trials, the mean
    range of Q over the classes at the same belief and action (0: the critic ignores the task), how often
    each class values the action best, and how often that is the trial's own class. `actor` (anything
    with `act_mean(beliefs)`) defaults to `sac.actor`."""
    actor = sac.actor if actor is None else actor
    own = torch.as_tensor(np.stack([task_features[t] for t in ids]))
    labels = own[:, :n_classes].argmax(-1)
    rows = []
    with torch.no_grad():
        for frame in frames:
            b = torch.as_tensor(beliefs[:, frame])
            action = actor.act_mean(b)
            q_own = torch.min(*sac.critic(torch.cat([b, own], -1), action)).squeeze(-1)
            per_class = []
            for k in range(n_classes):
                desc = own.clone()
                desc[:, :n_classes] = 0.0
                desc[:, k] = 1.0
                per_class.append(torch.min(*sac.critic(torch.cat([b, desc], -1), action)).squeeze(-1))
            q = torch.stack(per_class, -1)
            best = q.argmax(-1)
            rows.append({"frame": int(frame), "q_spread": float(q_own.std()),
                         "q_range_over_classes": float((q.max(-1).values - q.min(-1).values).mean()),
                         "best_class_counts": np.bincount(best.numpy(), minlength=n_classes).tolist(),
                         "best_is_own_class": float((best == labels).float().mean())})
    return rows


def actor_task_sensitivity(actor, beliefs: np.ndarray, n_classes: int, frames: list[int]) -> list[dict]:
    """For a belief that ends in the task head's `n_classes` probabilities (task_probs_in_belief): at each
    frame, how far the actor's deterministic action moves when those probabilities are replaced by each
    class's one-hot (mean distance from the mean over classes; 0: the actor ignores them), against the
    spread of its action across trials, and how sure the head is (mean max probability)."""
    rows = []
    with torch.no_grad():
        for frame in frames:
            b = torch.as_tensor(beliefs[:, frame])
            own = actor.act_mean(b)
            per_class = []
            for k in range(n_classes):
                swapped = b.clone()
                swapped[:, -n_classes:] = 0.0
                swapped[:, swapped.shape[-1] - n_classes + k] = 1.0
                per_class.append(actor.act_mean(swapped))
            acts = torch.stack(per_class, 1)  # (N, classes, action)
            rows.append({"frame": int(frame),
                         "action_move_over_classes": float((acts - acts.mean(1, keepdim=True)).norm(dim=-1).mean()),
                         "action_spread": float((own - own.mean(0)).norm(dim=-1).mean()),
                         "head_confidence": float(b[:, -n_classes:].max(-1).values.mean())})
    return rows


def task_part_columns(model_cfg) -> np.ndarray:
    """Belief columns that carry the task as such: the task latent's (mu_c, std_c) and the task head's
    class probabilities, whichever the belief has (empty for plain MELD)."""
    cols = belief_columns(model_cfg.z1_dim, model_cfg.z2_dim, model_cfg.task_latent_dim)
    parts = [np.arange(cols[k].start, cols[k].stop) for k in ("mu_c", "std_c") if k in cols]
    if model_cfg.task_probs_in_belief:
        parts.append(np.arange(model_cfg.belief_dim - model_cfg.task_classes, model_cfg.belief_dim))
    return np.concatenate(parts) if parts else np.zeros(0, int)


def actor_task_part_swap(actor, beliefs: np.ndarray, labels: np.ndarray, task_cols: np.ndarray,
                         frames: list[int], seed: int = 0) -> list[dict]:
    """At each frame, how far the actor's deterministic action moves when the belief's task part
    (`task_cols`) is taken from a random trial of another class, the rest kept (0: the action ignores
    what the belief says about the task), against the spread of its action across trials."""
    if len(task_cols) == 0:
        raise ValueError("actor_task_part_swap needs the belief's task columns (a task latent or task probabilities)")
    if len(np.unique(labels)) < 2:
        raise ValueError("actor_task_part_swap needs trials of at least two task classes")
    rng = np.random.default_rng(seed)
    donors = np.array([rng.choice(np.flatnonzero(labels != lab)) for lab in labels])
    cols = torch.as_tensor(task_cols)
    rows = []
    with torch.no_grad():
        for frame in frames:
            b = torch.as_tensor(beliefs[:, frame])
            own = actor.act_mean(b)
            swapped = b.clone()
            swapped[:, cols] = b[torch.as_tensor(donors)][:, cols]
            rows.append({"frame": int(frame),
                         "action_move_other_task": float((actor.act_mean(swapped) - own).norm(dim=-1).mean()),
                         "action_spread": float((own - own.mean(0)).norm(dim=-1).mean())})
    return rows


class ActorOnBelief:
    """An actor as it acts on whole beliefs: through the model's `actor_input` view of them."""

    def __init__(self, actor, model):
        self.actor, self.model = actor, model

    def act_mean(self, beliefs: torch.Tensor) -> torch.Tensor:
        return self.actor.act_mean(self.model.actor_input(beliefs))


def _checkpoint_sac(state: dict, cfg):
    """The checkpoint's SAC (actor and, with privileged_critic, the task-aware critic)."""
    from belief.meld.agent import build_sac

    sac = build_sac(cfg.agent)
    sac.load_state_dict(state["agent"]["sac"])
    return sac


def _task_descriptors(cfg, tasks):
    """The task descriptors a privileged critic was trained with and the number of label classes they one-hot."""
    from belief.meld.train import task_descriptors, task_label_classes

    all_tasks = [*tasks.train, *tasks.test]
    n_classes = len(set(task_label_classes(all_tasks, cfg.task_label).values()))
    return task_descriptors(all_tasks, cfg.task_label), n_classes


def probe_checkpoint(checkpoint: str | Path, label: str = "port", frames: list[int] | None = None,
                     out_dir: str | Path | None = None, task_set=None, fresh: int = 0, env=None) -> dict:
    """Filter a checkpoint's replay trials (or, with fresh > 0, that many new deterministic trials per
    training task) and probe for task parameter `label`; writes json + png."""
    from belief.checkpoint import atomic_write_text
    from belief.meld.checkpoints import load_meld_checkpoint
    from belief.meld.evaluate import load_trainer
    from belief.meld.train import TrainConfig, task_set_of

    if fresh < 0:
        raise ValueError(f"task probe: fresh trials per task must be >= 0, got {fresh}")
    if fresh:  # acting needs the policy and an env
        trainer, state = load_trainer(checkpoint, env=env, task_set=task_set)
        cfg, tasks, model = trainer.cfg, trainer.tasks, trainer.agent.model
    else:
        state = load_meld_checkpoint(checkpoint)
        cfg = TrainConfig(**{**state["config"], "device": "cpu"})
        tasks = task_set if task_set is not None else task_set_of(cfg)
        model = LatentModel(cfg.agent.model)
        model.load_state_dict(state["agent"]["model"])
    params = {t.task_id: t.params for t in (*tasks.train, *tasks.test)}
    task_ids = [t.task_id for t in tasks.train] if fresh else list(state["buffers"])
    missing = sorted(t for t in task_ids if label not in params.get(t, {}))
    if missing:
        raise ValueError(f"task probe: tasks {missing[:3]} have no parameter {label!r} "
                         f"(they have {sorted(next(iter(params.values())))})")
    buffers = (fresh_trials(trainer.env, trainer.policy, tasks.train, cfg.episodes, fresh, cfg.agent.reward_input)
               if fresh else stored_trials(state["buffers"]))
    beliefs, rewards, ids = filter_trials(model, buffers, cfg.agent.reward_input)
    labels = np.array([params[t][label] for t in ids])
    T = beliefs.shape[1]
    horizon = T // cfg.episodes - 1
    frames = frames or sorted({f for f in (0, 1, 5, horizon // 2, horizon, horizon + 1, horizon + 6, T - 1)
                               if f < T})  # short trials (tests, toy envs) drop the late picks
    # the part that should hold the task across frames: mu2, or the task latent's mean when there is one
    m = cfg.agent.model
    memory_name = "mu_c" if m.task_latent_dim else "mu2"
    memory = belief_columns(m.z1_dim, m.z2_dim, m.task_latent_dim)[memory_name]
    result = task_probe(beliefs, rewards, labels, ids, frames, memory=memory)
    result["memory_part"] = memory_name
    result.update(label=label, checkpoint=str(checkpoint), env_steps=state["counters"]["env_steps"],
                  trials="fresh" if fresh else "replay", fresh_per_task=fresh,
                  reward_sensitivity=reward_sensitivity(model, buffers, cfg.agent.reward_input))
    task_cols = task_part_columns(m)
    if cfg.agent.privileged_critic or len(task_cols):
        sac = _checkpoint_sac(state, cfg)
        actor = ActorOnBelief(sac.actor, model)
    if cfg.agent.privileged_critic:
        descriptors, n_classes = _task_descriptors(cfg, tasks)
        result["critic"] = critic_task_sensitivity(sac, beliefs, ids, descriptors, n_classes, frames, actor)
    if cfg.agent.model.task_probs_in_belief:
        result["actor"] = actor_task_sensitivity(actor, beliefs, cfg.agent.model.task_classes, frames)
    if len(task_cols) and len(np.unique(labels)) > 1:
        result["actor_task_part"] = actor_task_part_swap(actor, beliefs, labels, task_cols, frames)
    out = Path(out_dir or Path(checkpoint).parent)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(result, indent=2), out / "task_probe.json")
    plot_task_probe(result, horizon, out / "task_probe.png",
                    f"{label} probe on held-out tasks ({result['n_trials']} {result['trials']} trials, "
                    f"{result['n_tasks']} tasks, "
                    f"{result['env_steps']} env steps)")
    for r in result["frames"]:
        print(f"frame {r['frame']:3d}: belief {r['belief']:.2f}  its {result['memory_part']} alone {r['memory']:.2f}  "
              f"rewards so far {r['reward_history']:.2f}  chance {r['chance']:.2f}")
    sens = result["reward_sensitivity"]
    print(f"reward sensitivity: another task's rewards move mu2 by {sens['mu2_change']:.3f}, "
          f"{sens['ratio']:.2f}x its spread across trials ({sens['mu2_spread']:.3f})")
    for r in result.get("critic", []):
        print(f"critic, frame {r['frame']:3d}: Q ranges {r['q_range_over_classes']:.2f} over the {cfg.task_label} "
              f"one-hots (spread across trials {r['q_spread']:.2f}); the actor's action is valued best under "
              f"{r['best_class_counts']}, its trial's own class on {r['best_is_own_class']:.2f}")
    for r in result.get("actor", []):
        print(f"actor, frame {r['frame']:3d}: its action moves {r['action_move_over_classes']:.3f} when the task "
              f"probabilities are set to each {cfg.task_label} one-hot (spread across trials "
              f"{r['action_spread']:.3f}); head confidence {r['head_confidence']:.2f}")
    for r in result.get("actor_task_part", []):
        print(f"actor, frame {r['frame']:3d}: its action moves {r['action_move_other_task']:.3f} when the belief's "
              f"task part comes from a trial of another {cfg.task_label} (spread across trials "
              f"{r['action_spread']:.3f})")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m belief.meld.probe", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--label", default="port", help="discrete task parameter to predict (default: port)")
    p.add_argument("--frames", type=int, nargs="+", help="trial frames to probe at (default: a spread)")
    p.add_argument("--out", default=None, help="folder for task_probe.json/png (default: the checkpoint's)")
    p.add_argument("--fresh", type=int, default=0, metavar="N",
                   help="probe N new deterministic trials per training task instead of the replay trials")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    probe_checkpoint(args.checkpoint, args.label, args.frames, args.out, fresh=args.fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
