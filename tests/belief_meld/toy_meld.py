"""Small-scale MELD sanity experiment on the fake hidden-goal line (minutes on a CPU, not a unit test).

Goals at +-(0.6..0.8), alternating sides; the image never shows the goal; 3 steps of at most 0.4 per
episode cannot visit both sides, so episode 1 can only guess (<= 50 % success by symmetry) while
episode 2 can go straight to the side that episode 1's rewards revealed -- if the belief carries over.

    PYTHONPATH=. python -m tests.belief_meld.toy_meld OUT_DIR [ITERATIONS] [--resume]
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from belief.meld.train import TrainConfig, Trainer
from sim.tasks import Task, TaskSet
from tests.belief_meld.fake_env import FakeImageEnv


def two_sided_tasks(seed: int = 0, n_train: int = 8, n_test: int = 4) -> TaskSet:
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    goals = rng.uniform(0.6, 0.8, n) * np.where(np.arange(n) % 2 == 0, 1, -1)
    tasks = [Task("fake", f"goal{i}", np.array([g]), {"goal": float(g)}) for i, g in enumerate(goals)]
    return TaskSet("fake", seed, tuple(tasks[:n_train]), tuple(tasks[n_train:]))


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    out, iterations = argv[0], int(argv[1]) if len(argv) > 1 and argv[1][0].isdigit() else 1500
    env = FakeImageEnv(episode_steps=3, step_size=0.4)
    env.tasks = two_sided_tasks()
    cfg = TrainConfig(env="fake", agent={"model": {"base_depth": 4, "z1_dim": 8, "z2_dim": 32, "hidden": 64},
                                         "sac": {"hidden": (64, 64), "init_alpha": 0.05}, "model_lr": 1e-3},
                      init_trials_per_task=4, pretrain_steps=200, iterations=iterations, train_steps_per_iter=4,
                      batch_trials=16, eval_every=25, eval_trials_per_task=4, checkpoint_every=50,
                      capacity_per_task=100)
    print(Trainer(cfg, out, env, env.tasks).run(resume="--resume" in argv))


if __name__ == "__main__":
    main(sys.argv[1:])
