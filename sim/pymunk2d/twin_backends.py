"""What the Pymunk twin node can host, behind one small interface: the foundation's planar peg arm
(`sim.planar_arm`, family "planar_peg") or any 2D family of `sim.pymunk2d` (reach2d, stick2d, peg2d,
key2d, multi2d). The node only speaks topics; these adapters own the physics."""

from __future__ import annotations

import numpy as np

from sim.pymunk2d.twin import FamilyTwin

FAMILIES = ("planar_peg", "reach2d", "stick2d", "peg2d", "key2d", "multi2d")


class PlanarPegBackend:
    """The foundation's peg arm: stepped by the node's physics tick (any duration)."""

    has_state_observation = False

    def __init__(self, task_seed: int = 0, initial_task: str = "train-00", **_):
        from sim.planar_arm import JOINT_NAMES, PlanarPegArm, make_task_set

        self.joint_names = JOINT_NAMES
        self.arm = PlanarPegArm()
        self.velocity_limit = self.arm.config.velocity_limit
        self.task_set = make_task_set(seed=task_seed)
        self.tick_dt = None  # the node's physics rate decides
        self.set_task(initial_task or self.task_set.train[0].task_id)
        self.arm.reset_arm()

    def set_task(self, task_id: str) -> None:
        self.arm.set_task(self.task_set.by_id(task_id))
        self.task_id = task_id

    def home(self) -> None:
        self.arm.reset_arm()

    def step(self, joint_velocities, duration: float) -> None:
        self.arm.step(joint_velocities, duration)

    def joint_positions(self):
        return self.arm.joint_positions()

    def joint_velocities(self):
        return self.arm.joint_velocities()

    def success(self) -> bool:
        return self.arm.success()

    def sparse_reward(self) -> float:
        return 1.0 if self.arm.success() else 0.0

    def shaped_reward(self) -> float:
        return self.arm.shaped_reward()

    def render_pair(self) -> np.ndarray:
        return self.arm.render_pair()

    def state_observation(self):
        return None


class FamilyBackend(FamilyTwin):
    """A 2D family: one env control step per tick (tick_dt = the env's control period)."""

    has_state_observation = True

    def __init__(self, family: str, task_seed: int = 0, initial_task: str = "", seed: int = 0):
        super().__init__(family, task_seed=task_seed, seed=seed, initial_task=initial_task)
        self.tick_dt = self.control_dt

    def step(self, joint_velocities, duration: float | None = None) -> None:
        super().step(joint_velocities)


def make_backend(family: str, task_seed: int = 0, initial_task: str = "", seed: int = 0):
    """The backend for `family` (ValueError naming the known ones); KeyError for an unknown task id."""
    if family == "planar_peg":
        return PlanarPegBackend(task_seed=task_seed, initial_task=initial_task)
    if family not in FAMILIES:
        raise ValueError(f"unknown twin family {family!r} (known: {', '.join(FAMILIES)})")
    return FamilyBackend(family, task_seed=task_seed, initial_task=initial_task, seed=seed)
