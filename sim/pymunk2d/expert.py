"""Scripted experts that read the privileged task (fixture pose, key target) and act in the env's
own action space, closed loop: line up in front of the fixture, insert along its axis, then (Key2D)
turn to the hidden angle. PointRobot: straight to the goal."""

from __future__ import annotations

import math

import numpy as np

from sim.pymunk2d import families as fam

KP = 5.0  # 1/s: position gain (EE velocity = KP * error)
KW = 5.0  # 1/s: angle gain
PRE_DEPTH = -0.03  # m in front of the mouth where the tool lines up
# (lateral m, angle rad) alignment needed before going in: the peg has 3 mm clearance each side.
ALIGN = {"peg2d": (0.0015, 0.01), "key2d": (0.003, 0.02), "stick2d": (0.008, 0.05)}
INSERT_SPEED = 0.5  # fraction of max linear speed while inside a fixture
PUSH_DEPTH = {"peg2d": fam.PEG_GOAL_DEPTH, "stick2d": fam.STICK_BUTTON_DEPTH + fam.STICK_GOAL_PRESS,
              "key2d": fam.KEY_PIVOT_DEPTH + 0.005}  # key: lean on the bow


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _to_action(env, target_xy, target_angle, ee, speed: float = 1.0) -> np.ndarray:
    cfg = env.config
    v = KP * (np.asarray(target_xy) - ee[:2]) / cfg.max_linear_speed
    norm = float(np.linalg.norm(v))
    if norm > speed:
        v *= speed / norm
    w = 0.0 if target_angle is None else KW * _wrap(target_angle - ee[2]) / cfg.max_angular_speed
    return np.array([v[0], v[1], np.clip(w, -1.0, 1.0)], dtype=np.float32)


def expert_action(env) -> np.ndarray:
    """The expert's action for the env's current state (uses env.task / env.fixture: privileged)."""
    family = env.task.family
    fx = env.fixture
    ee = env.arm.ee_pose()
    if family == "reach2d":
        return _to_action(env, fx.goal, None, ee)
    angle = fx.params["angle"]
    if family == "key2d" and fx.unlatched:
        return _to_action(env, fx.world(PUSH_DEPTH[family], 0.0), angle + fx.target, ee, INSERT_SPEED)
    depth, lateral = fx.local(ee)
    tol_l, tol_a = ALIGN[family]
    aligned = abs(lateral) < tol_l and abs(_wrap(angle - ee[2])) < tol_a
    if depth > PRE_DEPTH + 0.01 or aligned:
        return _to_action(env, fx.world(PUSH_DEPTH[family], 0.0), angle, ee, INSERT_SPEED)
    return _to_action(env, fx.world(PRE_DEPTH, 0.0), angle, ee)
