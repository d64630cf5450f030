"""Refit a MELD checkpoint's actor-critic on i.i.d. minibatches of its replay transitions (model frozen).

A diagnostic of the actor-critic's data regime: during training every SAC update sees the transitions of
a few whole trials (strongly correlated, a few tasks); the privileged oracle learned to follow the port
from i.i.d. batches. Here the checkpoint's latent model filters all its replay trials once (deterministic
beliefs), and SAC continues from the checkpoint's weights on minibatches drawn uniformly from all their
transitions, across tasks. The result is a checkpoint like any other, for `belief.meld.evaluate` and
`belief.meld.probe`. Offline SAC can only value what the replay data shows, so read it as a diagnostic.

`python -m belief.meld.refit RUN/checkpoint.pt --out RUN_refit --updates 40000 --batch 256`
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from belief.meld.agent import MeldAgent
from belief.meld.buffers import stored_trials
from belief.meld.probe import filter_trials


def replay_transitions(agent: MeldAgent, buffers: dict[str, dict], task_features: dict[str, np.ndarray],
                       task_labels: dict[str, int] | None = None):
    """All transitions of the replay trials, filtered by the agent's model (`MeldAgent.transitions` layout);
    `task_labels` (task id -> true port class) is needed with AgentConfig.ac_true_port."""
    beliefs, _, ids = filter_trials(agent.model, buffers, agent.cfg.reward_input)
    dev = agent.device
    keys = ("actions", "reward_dense", "reward_sparse")
    if agent.cfg.teacher_bc_weight and all("labels" in d for d in buffers.values()):
        keys += ("labels",)  # a teacher's actions, cloned by the i.i.d. updates (AgentConfig.teacher_bc_weight)
    batch = {k: torch.as_tensor(np.concatenate([buffers[t][k] for t in buffers]), device=dev) for k in keys}
    if agent.cfg.privileged_critic:
        batch["task_features"] = torch.as_tensor(np.stack([task_features[t] for t in ids]), device=dev)
    if agent.cfg.ac_true_port:
        if task_labels is None:
            raise ValueError("replay_transitions: ac_true_port needs the task labels (task id -> true port class)")
        batch["task_label"] = torch.as_tensor(np.array([task_labels[t] for t in ids]), device=dev)
    return agent.transitions(torch.as_tensor(beliefs, device=dev), batch)


def refit_checkpoint(checkpoint: str | Path, out_dir: str | Path, updates: int, batch: int = 256,
                     seed: int = 0, task_set=None) -> Path:
    """Refit the actor-critic (see module doc); writes out_dir/checkpoint.pt and returns its path."""
    from belief.checkpoint import atomic_save
    from belief.meld.checkpoints import load_meld_checkpoint
    from belief.meld.train import TrainConfig, task_descriptors, task_label_classes, task_set_of

    if updates < 1 or batch < 1:
        raise ValueError(f"refit: updates and batch must be >= 1, got {updates} and {batch}")
    if (Path(out_dir) / "checkpoint.pt").resolve() == Path(checkpoint).resolve():
        raise ValueError(f"refit: --out {out_dir} would overwrite the checkpoint it refits; pick another folder")
    state = load_meld_checkpoint(checkpoint)
    if not state.get("buffers"):
        raise ValueError(f"{checkpoint}: holds no replay trials to refit on")
    torch.manual_seed(seed)
    cfg = TrainConfig(**{**state["config"], "device": "cpu"})
    trials = stored_trials(state["buffers"])
    T = next(iter(trials.values()))["actions"].shape[1]
    agent = MeldAgent(cfg.agent, cfg.episodes, T // cfg.episodes - 1)
    agent.load_state_dict(state["agent"], weights_only=True)  # fresh optimisers, as for a new regime
    tasks = task_set if task_set is not None else task_set_of(cfg)
    features = (task_descriptors([*tasks.train, *tasks.test], cfg.task_label) if cfg.agent.privileged_critic
                else {})
    labels = task_label_classes([*tasks.train, *tasks.test], cfg.task_label) if cfg.agent.ac_true_port else None
    data = replay_transitions(agent, trials, features, labels)
    n = len(data["obs"])
    for _ in tqdm(range(updates), desc="refit actor-critic", mininterval=5):
        idx = torch.randint(n, (batch,))
        agent.sac_update({k: v[idx] for k, v in data.items()})
    state["agent"] = agent.state_dict()
    state.pop("replay", None)  # its trials go inline: the index names files in the source run's folder
    state["refit"] = {"from": str(checkpoint), "updates": updates, "batch": batch, "transitions": n}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return atomic_save(state, out / "checkpoint.pt")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m belief.meld.refit", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True, help="folder for the refitted checkpoint.pt")
    p.add_argument("--updates", type=int, default=40000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(refit_checkpoint(args.checkpoint, args.out, args.updates, args.batch, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
