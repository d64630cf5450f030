"""Plain-Python core of the ROS twin for the 2D families: the same env the learners use in process,
driven by joint-velocity commands (what the policy server publishes) instead of EE actions.

One `step` = one env control step (`control_dt`, the env's physics substeps inside), so for the same
seed and the same joint velocities the twin's trajectory is the in-process env's, bit for bit.
`state_observation` = the env's observation followed by the joint positions, so an exported policy
that thinks in EE velocities can run the env's IK (`sim.pymunk2d.kinematics`) itself.
"""

from __future__ import annotations

import cv2
import numpy as np

from sim.pymunk2d.env import Planar2DEnv
from sim.pymunk2d.render import PLANAR_VIEW
from sim.pymunk2d.robot import JOINT_NAMES
from sim.tasks import Task


class FamilyTwin:
    """A 2D family hosted for the ROS twin; episode k after start-up is reset with seed `seed + k`."""

    joint_names = JOINT_NAMES

    def __init__(self, family: str = "peg2d", task_seed: int = 0, seed: int = 0, initial_task: str = ""):
        self.env = Planar2DEnv(family, task_seed=task_seed)
        self.family = family
        self.task_set = self.env.task_set
        self.seed = int(seed)
        self.resets = 0
        self.info: dict = {}
        self.task: Task = self.resolve(initial_task) if initial_task else self.task_set.train[0]
        self.home()

    def resolve(self, task_id: str) -> Task:
        """The task with this id; a single family also accepts the id without its prefix (test-03),
        which is what the foundation's trial runner sends by default."""
        try:
            return self.task_set.by_id(task_id)
        except KeyError:
            if self.family != "multi2d":
                short = {t.task_id: t for t in self.task_set.train + self.task_set.test}
                if f"{self.family}-{task_id}" in short:
                    return short[f"{self.family}-{task_id}"]
            raise

    @property
    def control_dt(self) -> float:
        return self.env.config.control_dt

    @property
    def velocity_limit(self) -> float:
        return self.env.geom.joint_velocity_limit

    @property
    def task_id(self) -> str:
        return self.task.task_id

    def set_task(self, task_id: str) -> None:
        """Move to task `task_id` (KeyError naming the known ids if it is not in the task set)."""
        self.task = self.resolve(task_id)
        self.home()

    def home(self) -> None:
        """A new episode on the current task: the arm back at its (seeded) start pose."""
        _, self.info = self.env.reset(seed=self.seed + self.resets, options={"task": self.task})
        self.resets += 1

    def step(self, joint_velocities) -> None:
        _, _, _, _, self.info = self.env.step_joint_velocities(np.asarray(joint_velocities, dtype=np.float64))

    def joint_positions(self) -> np.ndarray:
        return self.env.arm.joint_positions()

    def joint_velocities(self) -> np.ndarray:
        return self.env.arm.joint_velocities()

    def state_observation(self) -> np.ndarray:
        return np.concatenate([self.env.state_observation().astype(np.float64), self.joint_positions()])

    def success(self) -> bool:
        return bool(self.info["success"])

    def sparse_reward(self) -> float:
        return float(self.info["sparse_reward"])

    def shaped_reward(self) -> float:
        return float(self.info["dense_reward"])

    def render_pair(self, size: int = 64, zoom: int = 4) -> np.ndarray:
        """size x 2*size x 3: the env's image observation | a wrist view zoomed `zoom`x on the tool tip."""
        scene = self.env.render_image(size)
        big = self.env.render_image(size * zoom)
        tip = PLANAR_VIEW.to_px(self.env.arm.ee_pose()[:2], size * zoom)[0]
        half = size // 2
        padded = cv2.copyMakeBorder(big, half, half, half, half, cv2.BORDER_CONSTANT, value=(40, 40, 40))
        cx = int(np.clip(round(tip[0]), 0, size * zoom - 1)) + half
        cy = int(np.clip(round(tip[1]), 0, size * zoom - 1)) + half
        return np.ascontiguousarray(np.hstack([scene, padded[cy - half:cy + half, cx - half:cx + half]]))
