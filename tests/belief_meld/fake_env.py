"""A tiny image environment following /tmp/env_api.md, for MELD's unit tests (no MuJoCo needed).

A point on a line must reach a hidden goal (the task: left or right). The image shows the point only,
never the goal, so the task is identifiable from rewards alone, like the cable twin's correct port.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from sim.tasks import Task, TaskSet, check_action


def make_task_set(seed: int = 0, n_train: int = 2, n_test: int = 2) -> TaskSet:
    goals = np.linspace(-0.8, 0.8, n_train + n_test)
    rng = np.random.default_rng(seed)
    rng.shuffle(goals)
    tasks = [Task("fake", f"goal{i}", np.array([g]), {"goal": float(g)}) for i, g in enumerate(goals)]
    return TaskSet("fake", seed, tuple(tasks[:n_train]), tuple(tasks[n_train:]))


class FakeImageEnv(gym.Env):
    def __init__(self, height: int = 16, width: int = 32, episode_steps: int = 4, seed: int = 0,
                 step_size: float = 0.5):
        self.step_size = step_size
        self.height, self.width, self.episode_steps = height, width, episode_steps
        self.observation_space = gym.spaces.Box(0, 255, (height, width, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.tasks = make_task_set(seed)
        self._rng = np.random.default_rng(seed)
        self.task = self.tasks.train[0]

    def _obs(self) -> np.ndarray:
        img = np.zeros((self.height, self.width, 3), np.uint8)
        col = int(np.clip((self.x + 1) / 2 * (self.width - 1), 0, self.width - 1))
        img[:, col] = 255
        return img

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        if options and "task" in options:
            self.task = options["task"]
        else:
            self.task = self.tasks.train[self._rng.integers(len(self.tasks.train))]
        self.x, self.t = 0.0, 0
        return self._obs(), {}

    def step(self, action):
        a = check_action(action, self.action_space.shape, "FakeImageEnv")
        self.x = float(np.clip(self.x + self.step_size * a[0], -1, 1))
        self.t += 1
        dist = abs(self.x - self.task.params["goal"])
        sparse = float(dist < 0.2)
        info = {"dense_reward": -dist, "sparse_reward": sparse, "success": bool(sparse),
                "task": self.task.descriptor}
        return self._obs(), -dist, False, self.t >= self.episode_steps, info
