"""PEARL's sparse point robot (rlkit `SparsePointEnv`): a 2D point from the origin, goals on the unit
upper half circle, actions (displacements) in [-0.1, 0.1]^2, 20-step episodes.

Rewards follow PEARL: dense = -|goal - position|; sparse = dense + 1 inside the goal radius (0.2), else
0 (so 1 - distance near the goal). Success = inside the radius. Out-of-range actions are clipped to the
box (PEARL's policies are squashed to it); NaN or a wrong shape raises ValueError.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from sim.pymunk2d.render import POINT_VIEW, TOOL_COLOR, draw_scene
from sim.pymunk2d.task_sets import point_robot_task_set
from sim.tasks import Task, check_action

GOAL_RADIUS = 0.2
MAX_STEP = 0.1


class SparsePointEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, image_obs: bool = False, reward_mode: str = "dense",
                 task_seed: int = 0, goal_radius: float = GOAL_RADIUS, episode_steps: int = 20,
                 image_size: int = 64, render_size: int = 256):
        if reward_mode not in ("dense", "sparse"):
            raise ValueError(f"reward_mode must be 'dense' or 'sparse', not {reward_mode!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', not {render_mode!r}")
        self.render_mode, self.image_obs, self.reward_mode = render_mode, bool(image_obs), reward_mode
        self.goal_radius = float(goal_radius)
        self.episode_steps = int(episode_steps)
        self.image_size, self.render_size = image_size, render_size
        self.task_set = point_robot_task_set(seed=task_seed)
        limit = MAX_STEP * self.episode_steps  # farthest the point can get from the origin, per axis
        self.action_space = gym.spaces.Box(-MAX_STEP, MAX_STEP, shape=(2,), dtype=np.float32)
        self.observation_space = (gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8) if self.image_obs
                                  else gym.spaces.Box(-limit, limit, (2,), np.float32))
        self.task: Task | None = None
        self.position = np.zeros(2)
        self.goal = np.zeros(2)
        self.steps = 0
        self.name = "meldbot/PointRobot-v0"

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        task = (options or {}).get("task")
        if task is None:
            task = self.task_set.train[int(self.np_random.integers(len(self.task_set.train)))]
        if not isinstance(task, Task) or task.family != "point_robot":
            raise ValueError(f"{self.name}: options['task'] must be a point_robot Task, got {task!r}")
        self.task = task
        self.goal = np.asarray(task.params["goal"], dtype=np.float64)
        self.position = np.zeros(2)  # PEARL's sparse variant always starts at the origin
        self.steps = 0
        return self._observation(), self._info()

    def step(self, action):
        if self.task is None:
            raise RuntimeError(f"{self.name}: call reset() before step()")
        a = np.clip(check_action(action, (2,), self.name), -MAX_STEP, MAX_STEP)
        self.position = self.position + a
        self.steps += 1
        info = self._info()
        reward = info["sparse_reward"] if self.reward_mode == "sparse" else info["dense_reward"]
        return self._observation(), reward, False, self.steps >= self.episode_steps, info

    def _info(self) -> dict:
        dense = -float(np.linalg.norm(self.goal - self.position))
        success = dense >= -self.goal_radius
        return {"dense_reward": dense, "sparse_reward": dense + 1.0 if success else 0.0, "success": bool(success),
                "task": self.task.descriptor.copy(), "task_id": self.task.task_id, "family": "point_robot"}

    def _observation(self):
        if self.image_obs:
            return self.render_image(self.image_size, show_goal=False)
        return self.position.astype(np.float32)

    def state_observation(self) -> np.ndarray:
        return self.position.astype(np.float32)

    def expert_action(self) -> np.ndarray:
        """Privileged: straight at the goal, as fast as the action box allows."""
        return np.clip(self.goal - self.position, -MAX_STEP, MAX_STEP).astype(np.float32)

    def render_image(self, size: int | None = None, show_goal: bool = False) -> np.ndarray:
        arc = np.stack([np.cos(np.linspace(0, np.pi, 33)), np.sin(np.linspace(0, np.pi, 33))], 1)
        band = np.concatenate([arc * 1.01, arc[::-1] * 0.99])  # the task distribution, always visible
        polys = [(band[i:i + 2].tolist() + band[len(band) - i - 2:len(band) - i].tolist(), (200, 200, 190))
                 for i in range(32)]
        return draw_scene(size or self.image_size, polys, POINT_VIEW,
                          dots=[(self.position, 0.04, TOOL_COLOR)], goal=self.goal if show_goal else None,
                          goal_radius=self.goal_radius)

    def render(self):
        if self.render_mode == "rgb_array":
            return self.render_image(self.render_size, show_goal=True)
        return None
