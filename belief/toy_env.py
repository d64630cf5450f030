"""A tiny numpy point-goal task family implementing the twins' env API, for fast belief tests.

Point in the plane starting at the origin, goal on a half circle (the hidden task). obs = position (2),
action = velocity in [-1, 1]^2 scaled by 0.1 per step. Dense reward = -distance; sparse = 1 inside the
goal radius; success when inside. Not registered with Gymnasium: tests and `--env toy` build it directly.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from sim.tasks import Task, TaskSet, check_action


def make_task_set(seed: int = 0, n_train: int = 8, n_test: int = 4) -> TaskSet:
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0.0, math.pi, size=n_train + n_test)

    def task(kind, i, a):
        goal = np.array([math.cos(a), math.sin(a)], dtype=np.float32)
        return Task("toy", f"{kind}-{i:02d}", goal, {"goal": goal.tolist()})

    return TaskSet("toy", seed, tuple(task("train", i, a) for i, a in enumerate(angles[:n_train])),
                   tuple(task("test", i, a) for i, a in enumerate(angles[n_train:])))


class ToyPointGoal(gym.Env):
    def __init__(self, episode_steps: int = 20, goal_radius: float = 0.2, seed: int = 0, **_):
        self.episode_steps = episode_steps
        self.goal_radius = goal_radius
        self.observation_space = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._tasks = make_task_set(seed)
        self._rng = np.random.default_rng(seed)
        self.task = self._tasks.train[0]
        self.pos = np.zeros(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        task = (options or {}).get("task")
        self.task = task if task is not None else self._tasks.train[self._rng.integers(len(self._tasks.train))]
        self.pos = np.zeros(2)
        self.t = 0
        return self.pos.astype(np.float32), {"task": self.task.descriptor}

    def expert_action(self) -> np.ndarray:
        delta = (self.task.descriptor - self.pos) / 0.1
        return np.clip(delta, -1.0, 1.0).astype(np.float32)

    def step(self, action):
        a = check_action(action, (2,), "ToyPointGoal")
        self.pos = np.clip(self.pos + 0.1 * np.clip(a, -1, 1), -2, 2)
        self.t += 1
        dist = float(np.linalg.norm(self.pos - self.task.descriptor))
        success = dist < self.goal_radius
        info = {"sparse_reward": float(success), "dense_reward": -dist, "success": success,
                "task": self.task.descriptor}
        return self.pos.astype(np.float32), -dist, False, self.t >= self.episode_steps, info
