"""Gymnasium envs over the MuJoCo families (see /docs/mujoco.md for shapes and rates).

Action: the arm's joint velocities normalised to [-1, 1] (x the joint's velocity limit, pi rad/s on
the WidowX), held for one control period (default 3.3 Hz WidowX, 4 Hz Sawyer) by the servo loop.
The gripper stays closed on the plug/peg. Observation: a float32 state vector, or with
``image_obs=True`` a uint8 (64, 128, 3) image: scene | wrist camera, rendered once per control step
(never when only state is observed). Episodes are truncated after `episode_steps` (40).
Reset options: `task` (a Task of the family), `continue_trial` (True for a later episode of the same
trial: a family may carry what the trial's earlier episodes did, e.g. widowx_cable's "untried" reward).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from sim.mujoco.cable import CableTask
from sim.mujoco.core import ArmSim
from sim.mujoco.sawyer import SawyerPegTask, SawyerReachTask
from sim.tasks import Task, check_action

REWARD_MODES = ("dense", "shaped", "sparse")


class MujocoTaskEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    family_cls = CableTask

    def __init__(self, control_hz: float | None = None, episode_steps: int = 40, image_obs: bool = False,
                 image_size: int = 64, reward_mode: str = "dense", domain_randomization: bool = False,
                 task_seed: int = 0, n_train: int = 20, n_test: int = 10, servo_hz: float = 250.0,
                 render_mode: str | None = None, render_size: tuple[int, int] = (240, 320),
                 family_options: dict | None = None):
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {REWARD_MODES}, got {reward_mode!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1, got {episode_steps}")
        try:
            self.family = self.family_cls(**(family_options or {}))  # e.g. widowx_cable's shaped_port
        except TypeError as exc:
            raise ValueError(f"{self.family_cls.name}: family_options {family_options!r} not accepted ({exc})") from None
        self.control_hz = float(control_hz or self.family.control_hz)
        if not 0.1 <= self.control_hz <= 100:
            raise ValueError(f"control_hz must be within 0.1..100 Hz, got {self.control_hz}")
        self.episode_steps = int(episode_steps)
        self.image_obs, self.image_size = bool(image_obs), int(image_size)
        self.reward_mode = reward_mode
        self.domain_randomization = bool(domain_randomization)
        self.render_mode, self.render_size = render_mode, tuple(render_size)
        self.task_set = self.family.make_task_set(seed=task_seed, n_train=n_train, n_test=n_test)
        self.sim = ArmSim(self.family.build_xml(), self.family.arm, servo_hz=servo_hz, rig=self.family.rig)
        self.ticks_per_step = self.sim.ticks_for(1.0 / self.control_hz)
        self.period = self.ticks_per_step * self.sim.servo_dt  # actual held duration of one command
        self.vmax = np.asarray(self.family.arm.velocity_limit)
        n = self.family.arm.n
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n,), np.float32)
        if self.image_obs:
            self.observation_space = gym.spaces.Box(0, 255, (self.image_size, 2 * self.image_size, 3), np.uint8)
        else:
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.family.state_dim,), np.float32)
        self.settle_s = 0.3
        self.task: Task = self.task_set.train[0]
        self.steps = 0

    # --- gymnasium ----------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        task = options.get("task")
        if task is None:
            task = self.task_set.train[int(self.np_random.integers(len(self.task_set.train)))]
        elif not isinstance(task, Task) or task.family != self.family.name:
            raise ValueError(f"{self.family.name}: options['task'] must be a {self.family.name} Task, got {task!r}")
        self.task = task
        rig = self.family.rig_pose(task)
        if rig is not None:
            self.sim.rig.set(rig, instant=True)
        self.sim.randomize_appearance(self.np_random if self.domain_randomization else None)
        self.sim.reset(self.family.start_pose(self.sim, self.np_random))
        self.sim.run(np.zeros(self.family.arm.n), self.sim.ticks_for(self.settle_s))  # let the cable drape
        continue_trial = options.get("continue_trial", False)
        if not isinstance(continue_trial, bool):
            raise ValueError(f"{self.family.name}: options['continue_trial'] must be True or False, got {continue_trial!r}")
        self.family.reset_episode(new_trial=not continue_trial)
        self.steps = 0
        result = self.family.evaluate(self.sim, self.task)
        return self._observe(), self._info(result)

    def step(self, action):
        action = check_action(action, self.action_space.shape, self.family.name)
        self.sim.run(np.clip(action, -1.0, 1.0) * self.vmax, self.ticks_per_step)
        self.steps += 1
        result = self.family.evaluate(self.sim, self.task)
        reward = result["sparse_reward"] if self.reward_mode == "sparse" else result["dense_reward"]
        truncated = self.steps >= self.episode_steps or self.sim.unstable
        info = self._info(result)
        info["unstable"] = self.sim.unstable  # physics blew up and MuJoCo reset it: episode cut here
        return self._observe(), float(reward), False, truncated, info

    def render(self):
        if self.render_mode == "rgb_array":
            return self.sim.render_pair(*self.render_size)
        return None

    def render_cameras(self) -> np.ndarray:
        """The scene | wrist pair at the observation size (what an image policy sees)."""
        return self.sim.render_pair(self.image_size, self.image_size)

    def close(self):
        self.sim.close()

    # --- privileged ---------------------------------------------------------------------------------
    def expert_action(self) -> np.ndarray:
        """Scripted expert using privileged state (task, port/box poses): normalised action."""
        velocity = self.family.expert_velocity(self.sim, self.task, self.period)
        return np.clip(velocity / self.vmax, -1.0, 1.0).astype(np.float32)

    def state(self) -> np.ndarray:
        return self.family.state(self.sim)

    def _observe(self):
        if self.image_obs:
            return self.sim.render_pair(self.image_size, self.image_size)
        return self.family.state(self.sim)

    def _info(self, result: dict) -> dict:
        info = dict(result)
        info["task"] = self.task.descriptor.copy()  # new data every call (gymnasium contract)
        info["task_id"] = self.task.task_id
        if self.image_obs:
            info["state"] = self.family.state(self.sim)
        return info


class WidowXCableEnv(MujocoTaskEnv):
    family_cls = CableTask


class SawyerReachEnv(MujocoTaskEnv):
    family_cls = SawyerReachTask


class SawyerPegEnv(MujocoTaskEnv):
    family_cls = SawyerPegTask
