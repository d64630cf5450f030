"""Sawyer tasks from MELD's simulation suite: reacher (hidden goal position) and peg insertion into
the correct one of four identical boxes (the block of boxes sits on a two-axis rig that shifts it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.mujoco.mjcf import fmt, slab_with_holes
from sim.mujoco.robots import SAWYER, sawyer_xml
from sim.mujoco.scene import RigSpec, scene_xml, velocity_actuators
from sim.tasks import Task, TaskSet

if TYPE_CHECKING:
    from sim.mujoco.core import ArmSim

NEUTRAL = np.array([0.0, -1.18, 0.0, 2.18, 0.0, 0.57, 3.3161])  # intera's neutral pose
DOWN = np.diag([1.0, -1.0, -1.0])  # tool z pointing down
WRIST_CAM = '<camera name="wrist" pos="0.07 0 0.03" xyaxes="1 0 0 0 -1 0" fovy="80"/>'
SCENE_CAMERA = ((1.05, -0.6, 0.65), (0.5, 0.0, 0.12), 50)

REACH_BOX = (np.array([0.45, -0.25, 0.08]), np.array([0.75, 0.25, 0.35]))
REACH_RADIUS = 0.05

BOX_BLOCK = (0.62, 0.0, 0.0)
BOX_SPACING, BOX_SIZE, BOX_H = 0.15, 0.10, 0.08
PEG_R, PEG_L, HOLE = 0.012, 0.10, 0.036
HOLE_DEPTH, PEG_SUCCESS_DEPTH = 0.06, 0.03
BLOCK_JITTER = 0.03
PEG_RIG = RigSpec(body="boxes", joint_names=("x", "y"), kinds=("slide", "slide"),
                  axes=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)), lower=(-0.05, -0.05), upper=(0.05, 0.05),
                  speed=(0.05, 0.05))


def box_offsets() -> list[tuple[float, float]]:
    h = BOX_SPACING / 2
    return [(-h, -h), (-h, h), (h, -h), (h, h)]


def _split_tasks(family: str, seed: int, n_train: int, n_test: int, sample) -> TaskSet:
    if n_train < 1 or n_test < 0:
        raise ValueError(f"need n_train >= 1 and n_test >= 0, got {n_train}, {n_test}")
    rng = np.random.default_rng(seed)
    tasks = []
    for i in range(n_train + n_test):
        split, idx = ("train", i) if i < n_train else ("test", i - n_train)
        descriptor, params = sample(rng)
        tasks.append(Task(family, f"{split}-{idx:02d}", descriptor, params))
    return TaskSet(family, seed, tuple(tasks[:n_train]), tuple(tasks[n_train:]))


class _SawyerTask:
    arm = SAWYER
    rig = None
    control_hz = 4.0
    state_dim = 17
    tool_site = "tool_tip"

    def __init__(self):
        self._ready = None

    def rig_pose(self, task: Task):
        return None

    def ready_pose(self, sim: ArmSim) -> np.ndarray:
        """Tool pointing down above the workspace centre (IK from intera's neutral pose, once)."""
        if self._ready is None:
            self._ready, _ = sim.solve_ik(self.tool_site, np.array([0.55, 0.0, 0.30]), DOWN, axis_only=True,
                                          q0=NEUTRAL, iterations=300)
        return self._ready

    def start_pose(self, sim: ArmSim, rng: np.random.Generator) -> np.ndarray:
        return self.ready_pose(sim) + rng.uniform(-0.05, 0.05, self.arm.n)

    def reset_episode(self, new_trial: bool = True) -> None:
        pass

    def state(self, sim: ArmSim) -> np.ndarray:
        pos, _ = sim.site_pose(self.tool_site)
        return np.concatenate([sim.q, sim.qdot, pos]).astype(np.float32)

    def _move_to(self, sim: ArmSim, target, period: float, orient: bool) -> np.ndarray:
        q_target, _ = sim.solve_ik(self.tool_site, target, DOWN if orient else None, axis_only=True, q0=sim.q)
        return (q_target - sim.q) / period


class SawyerReachTask(_SawyerTask):
    name = "sawyer_reach"

    @staticmethod
    def build_xml() -> str:
        tool = (f'<geom type="cylinder" pos="0 0 0.02" size="0.03 0.02" material="robot_light"/>'
                f'<geom type="sphere" pos="0 0 0.05" size="0.015" material="plug"/>'
                f'<site name="tool_tip" pos="0 0 0.05" size="0.005"/>{WRIST_CAM}')
        return scene_xml("sawyer_reach", sawyer_xml(tool), velocity_actuators(SAWYER), SCENE_CAMERA)

    @staticmethod
    def make_task_set(seed: int = 0, n_train: int = 20, n_test: int = 10) -> TaskSet:
        """Hidden goal positions (m) in front of the arm; descriptor = goal xyz."""
        def sample(rng):
            goal = rng.uniform(*REACH_BOX)
            return goal, {"goal": goal.tolist()}
        return _split_tasks("sawyer_reach", seed, n_train, n_test, sample)

    def evaluate(self, sim: ArmSim, task: Task) -> dict:
        tip, _ = sim.site_pose(self.tool_site)
        dist = float(np.linalg.norm(tip - np.asarray(task.params["goal"])))
        success = dist <= REACH_RADIUS
        return {"dense_reward": -dist, "sparse_reward": 1.0 if success else 0.0, "success": bool(success),
                "goal_distance": dist}

    def expert_velocity(self, sim: ArmSim, task: Task, period: float) -> np.ndarray:
        return self._move_to(sim, np.asarray(task.params["goal"]), period, orient=False)


class SawyerPegTask(_SawyerTask):
    name = "sawyer_peg"
    rig = PEG_RIG

    @staticmethod
    def build_xml() -> str:
        tool = (f'<geom type="cylinder" pos="0 0 0.02" size="0.03 0.02" material="robot_light"/>'
                f'<geom name="peg" type="capsule" fromto="0 0 0.04 0 0 {0.04 + PEG_L - PEG_R}" size="{PEG_R}" material="plug"/>'
                f'<site name="tool_tip" pos="0 0 {0.04 + PEG_L}" size="0.004"/>{WRIST_CAM}')
        boxes = []
        for k, (bx, by) in enumerate(box_offsets()):
            slab = slab_with_holes(f"box{k}_", BOX_SIZE, BOX_SIZE, BOX_H, HOLE_DEPTH, [0.0], HOLE, HOLE, "device")
            body_h = BOX_H - HOLE_DEPTH
            boxes.append(f'<body name="box{k}" pos="{bx} {by} 0">'
                         f'<geom type="box" pos="0 0 {body_h / 2}" size="{BOX_SIZE / 2} {BOX_SIZE / 2} {body_h / 2}" material="device"/>'
                         f'{"".join(slab)}<site name="hole{k}" pos="0 0 {BOX_H}" xyaxes="1 0 0 0 -1 0" size="0.003"/></body>')
        block = f'<body name="boxes" mocap="true" pos="{fmt(BOX_BLOCK)}">{"".join(boxes)}</body>'
        return scene_xml("sawyer_peg", sawyer_xml(tool) + block, velocity_actuators(SAWYER), SCENE_CAMERA)

    @staticmethod
    def make_task_set(seed: int = 0, n_train: int = 20, n_test: int = 10) -> TaskSet:
        """Correct box (0..3) and the block's shift (m); descriptor = [dx, dy, box]."""
        def sample(rng):
            dx, dy = rng.uniform(-BLOCK_JITTER, BLOCK_JITTER, 2)
            box = int(rng.integers(4))
            return np.array([dx, dy, box]), {"x": float(dx), "y": float(dy), "box": box}
        return _split_tasks("sawyer_peg", seed, n_train, n_test, sample)

    def rig_pose(self, task: Task) -> np.ndarray:
        return np.array([task.params["x"], task.params["y"]])

    def evaluate(self, sim: ArmSim, task: Task) -> dict:
        tip, tip_mat = sim.site_pose(self.tool_site)
        pos, mat = sim.site_pose(f"hole{task.params['box']}")
        local = mat.T @ (tip - pos)
        success = local[2] >= PEG_SUCCESS_DEPTH and np.abs(local[:2]).max() <= HOLE / 2
        goal = pos + mat[:, 2] * (PEG_SUCCESS_DEPTH + 0.01)
        dist = float(np.linalg.norm(tip - goal))
        tilt = float(np.arccos(np.clip(tip_mat[:, 2] @ mat[:, 2], -1.0, 1.0)))
        return {"dense_reward": -(dist + 0.05 * tilt), "sparse_reward": 1.0 if success else 0.0,
                "success": bool(success), "goal_distance": dist}

    def expert_velocity(self, sim: ArmSim, task: Task, period: float) -> np.ndarray:
        tip, _ = sim.site_pose(self.tool_site)
        pos, mat = sim.site_pose(f"hole{task.params['box']}")
        local = mat.T @ (tip - pos)
        if np.abs(local[:2]).max() < 0.004:
            depth = min(local[2] + 0.04, PEG_SUCCESS_DEPTH + 0.01)
        elif local[2] > -0.005:
            depth = local[2] - 0.03
        else:
            depth = -0.03
        return self._move_to(sim, pos + mat @ np.array([0.0, 0.0, depth]), period, orient=True)
