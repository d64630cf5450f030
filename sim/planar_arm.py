"""Planar 3-link peg-in-hole arm in Pymunk: the foundation twin's physics, plain Python (no ROS).

Top-down view (no gravity). The arm's base is at the origin; its last link carries a peg. A wall with
a slot lies across the workspace; the slot's x position is the task (hidden from the policy). Joints
are driven by velocity motors with finite torque, so the peg can jam on the slot's edge instead of
passing through it. Success = the peg's tip sits inside the slot past the insertion depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import pymunk

from sim.tasks import Task, TaskSet

JOINT_NAMES = ("shoulder", "elbow", "wrist")


@dataclass(frozen=True)
class PlanarArmConfig:
    link_lengths: tuple[float, float, float] = (0.30, 0.25, 0.15)  # m; the last includes the peg
    joint_limits: tuple[float, float] = (-2.9, 2.9)  # rad, each joint relative to its parent
    velocity_limit: float = 1.5  # rad/s, per joint
    max_torque: float = 40.0  # motor force cap: contacts can stall the arm
    home: tuple[float, float, float] = (1.0, 1.4, -0.8292)  # rad; tip below the wall, peg pointing at it
    wall_y: float = 0.62  # m, the wall's near face
    wall_thickness: float = 0.08
    slot_width: float = 0.036  # m; peg is 0.024 wide, so 6 mm clearance each side
    peg_width: float = 0.024
    insertion_depth: float = 0.035  # m past the wall face for success
    physics_dt: float = 0.005  # s per substep
    image_size: int = 64
    render_scale: int = 4  # internal render is image_size * render_scale for the wrist crop


@dataclass
class ArmState:
    positions: np.ndarray
    velocities: np.ndarray
    tip: np.ndarray = field(default_factory=lambda: np.zeros(2))


def make_task_set(seed: int = 0, n_train: int = 20, n_test: int = 10, x_range: float = 0.12) -> TaskSet:
    """Slot positions drawn uniformly in [-x_range, x_range] m, seeded; ids train-NN / test-NN."""
    rng = np.random.default_rng(seed)
    xs = rng.uniform(-x_range, x_range, size=n_train + n_test)

    def task(kind, i, x):
        return Task("planar_peg", f"{kind}-{i:02d}", np.array([x]), {"slot_x": float(x)})

    return TaskSet("planar_peg", seed, tuple(task("train", i, x) for i, x in enumerate(xs[:n_train])),
                   tuple(task("test", i, x) for i, x in enumerate(xs[n_train:])))


class PlanarPegArm:
    """The physics and rendering of the planar peg arm; the ROS twin node and tests drive it."""

    def __init__(self, config: PlanarArmConfig | None = None):
        self.config = config or PlanarArmConfig()
        self.slot_x = 0.0
        self._build()

    # --- construction --------------------------------------------------------------------------
    def _build(self):
        cfg = self.config
        self.space = pymunk.Space()
        self.space.gravity = (0.0, 0.0)
        self.space.damping = 0.9
        arm_filter = pymunk.ShapeFilter(group=1)
        self.links: list[pymunk.Body] = []
        self.motors: list[pymunk.SimpleMotor] = []
        parent = self.space.static_body
        anchor = pymunk.Vec2d(0.0, 0.0)
        angle = 0.0
        for i, (length, q) in enumerate(zip(cfg.link_lengths, cfg.home, strict=True)):
            angle += q
            mass = 1.0 if i < 2 else 0.4
            body = pymunk.Body(mass, pymunk.moment_for_segment(mass, (0, 0), (length, 0), 0.02))
            body.position = anchor
            body.angle = angle
            width = cfg.peg_width / 2 if i == 2 else 0.02
            shape = pymunk.Segment(body, (0, 0), (length, 0), width)
            shape.filter = arm_filter
            shape.friction = 0.6
            self.space.add(body, shape)
            self.space.add(pymunk.PivotJoint(parent, body, anchor))
            lo, hi = cfg.joint_limits
            self.space.add(pymunk.RotaryLimitJoint(parent, body, lo, hi))
            motor = pymunk.SimpleMotor(parent, body, 0.0)
            motor.max_force = cfg.max_torque
            self.space.add(motor)
            self.links.append(body)
            self.motors.append(motor)
            anchor = body.local_to_world((length, 0))
            parent = body
        self._wall_shapes: list[pymunk.Shape] = []
        self._place_wall()

    def _place_wall(self):
        cfg = self.config
        if self._wall_shapes:
            self.space.remove(*self._wall_shapes)
        half_gap = cfg.slot_width / 2
        y0, y1 = cfg.wall_y, cfg.wall_y + cfg.wall_thickness
        static = self.space.static_body
        left = pymunk.Poly(static, [(-1.0, y0), (self.slot_x - half_gap, y0), (self.slot_x - half_gap, y1), (-1.0, y1)])
        right = pymunk.Poly(static, [(self.slot_x + half_gap, y0), (1.0, y0), (1.0, y1), (self.slot_x + half_gap, y1)])
        for shape in (left, right):
            shape.friction = 0.6
        self._wall_shapes = [left, right]
        self.space.add(*self._wall_shapes)

    # --- task and state ------------------------------------------------------------------------
    def set_task(self, task: Task):
        """Move the slot to the task's position (the rig's job on hardware)."""
        self.slot_x = float(task.params["slot_x"])
        self._place_wall()

    def reset_arm(self, positions=None):
        """Put the arm at `positions` (default home) at rest; the twin's `home` service does this."""
        cfg = self.config
        q = np.asarray(cfg.home if positions is None else positions, dtype=np.float64)
        anchor = pymunk.Vec2d(0.0, 0.0)
        angle = 0.0
        for body, length, qi in zip(self.links, cfg.link_lengths, q, strict=True):
            angle += qi
            body.position = anchor
            body.angle = angle
            body.velocity = (0.0, 0.0)
            body.angular_velocity = 0.0
            anchor = body.local_to_world((length, 0))
        for motor in self.motors:
            motor.rate = 0.0
        self.space.reindex_shapes_for_body(self.links[0])
        for body in self.links[1:]:
            self.space.reindex_shapes_for_body(body)

    def joint_positions(self) -> np.ndarray:
        absolute = np.array([b.angle for b in self.links])
        return np.diff(absolute, prepend=0.0)

    def joint_velocities(self) -> np.ndarray:
        absolute = np.array([b.angular_velocity for b in self.links])
        return np.diff(absolute, prepend=0.0)

    def tip(self) -> np.ndarray:
        last = self.links[-1]
        return np.array(last.local_to_world((self.config.link_lengths[-1], 0)))

    def state(self) -> ArmState:
        return ArmState(self.joint_positions(), self.joint_velocities(), self.tip())

    # --- stepping ------------------------------------------------------------------------------
    def step(self, joint_velocities, duration: float):
        """Hold `joint_velocities` (rad/s, clamped to the limit) for `duration` seconds of physics."""
        cfg = self.config
        qd = np.clip(np.asarray(joint_velocities, dtype=np.float64), -cfg.velocity_limit, cfg.velocity_limit)
        for motor, v in zip(self.motors, qd, strict=True):
            motor.rate = -float(v)  # pymunk's rate is parent.w - child.w
        substeps = max(1, int(round(duration / cfg.physics_dt)))
        for _ in range(substeps):
            self.space.step(cfg.physics_dt)

    def insertion_depth(self) -> float:
        """How far (m) the peg tip is past the wall face, if it is within the slot; else 0."""
        tip = self.tip()
        inside = abs(tip[0] - self.slot_x) < (self.config.slot_width - self.config.peg_width) / 2 + 1e-3
        return float(max(0.0, tip[1] - self.config.wall_y)) if inside else 0.0

    def success(self) -> bool:
        return self.insertion_depth() >= self.config.insertion_depth

    def shaped_reward(self) -> float:
        """-distance (m) from the peg tip to the inserted goal point at the slot's bottom."""
        goal = np.array([self.slot_x, self.config.wall_y + self.config.insertion_depth])
        return -float(np.linalg.norm(self.tip() - goal))

    # --- rendering -----------------------------------------------------------------------------
    def render_pair(self) -> np.ndarray:
        """64 x 128 x 3 uint8: fixed scene camera | wrist camera (zoomed on the peg), side by side."""
        cfg = self.config
        size = cfg.image_size * cfg.render_scale
        big = self._render(size)
        scene = cv2.resize(big, (cfg.image_size, cfg.image_size), interpolation=cv2.INTER_AREA)
        px = self._to_px(self.tip(), size)
        half = cfg.image_size // 2
        padded = cv2.copyMakeBorder(big, half, half, half, half, cv2.BORDER_CONSTANT, value=(40, 40, 40))
        cx, cy = int(np.clip(px[0], 0, size - 1)) + half, int(np.clip(px[1], 0, size - 1)) + half
        wrist = padded[cy - half: cy + half, cx - half: cx + half]
        return np.ascontiguousarray(np.hstack([scene, wrist]))

    def _to_px(self, xy, size: int) -> np.ndarray:
        # workspace x in [-0.4, 0.4], y in [-0.1, 0.7] m, image y down
        u = (xy[0] + 0.4) / 0.8 * size
        v = (0.7 - xy[1]) / 0.8 * size
        return np.array([u, v])

    def _render(self, size: int) -> np.ndarray:
        cfg = self.config
        img = np.full((size, size, 3), (200, 200, 190), dtype=np.uint8)
        px = lambda p: tuple(int(round(c)) for c in self._to_px(p, size))  # noqa: E731
        thick = max(1, size // 64)
        for shape in self._wall_shapes:
            pts = np.array([px(shape.body.local_to_world(v)) for v in shape.get_vertices()], dtype=np.int32)
            cv2.fillPoly(img, [pts], (90, 90, 110))
        for i, body in enumerate(self.links):
            a, b = px(body.local_to_world((0, 0))), px(body.local_to_world((cfg.link_lengths[i], 0)))
            color = (200, 120, 40) if i == 2 else (60, 60, 60)
            cv2.line(img, a, b, color, thick * (2 if i < 2 else 1) + 1, cv2.LINE_AA)
            cv2.circle(img, a, thick * 2, (30, 30, 30), -1, cv2.LINE_AA)
        return img


def jacobian(config: PlanarArmConfig, q) -> np.ndarray:
    """2x3 Jacobian of the tip position with respect to the joint angles."""
    lengths = np.asarray(config.link_lengths)
    absolute = np.cumsum(q)
    jac = np.zeros((2, 3))
    for j in range(3):
        jac[0, j] = -np.sum(lengths[j:] * np.sin(absolute[j:]))
        jac[1, j] = np.sum(lengths[j:] * np.cos(absolute[j:]))
    return jac


def expert_velocities(arm: PlanarPegArm, gain: float = 3.0) -> np.ndarray:
    """Scripted inserter using the privileged slot position: align under the slot, then push in.

    Resolved-rate control of the tip plus a term that keeps the peg pointing along +y.
    """
    cfg = arm.config
    q = arm.joint_positions()
    tip = arm.tip()
    below = cfg.wall_y - 0.03
    aligned = abs(tip[0] - arm.slot_x) < 0.004
    target = np.array([arm.slot_x, cfg.wall_y + cfg.insertion_depth + 0.01 if aligned or tip[1] > below
                       else min(tip[1], below)])
    tip_vel = gain * (target - tip)
    jac = jacobian(cfg, q)
    orient_err = math.pi / 2 - float(np.sum(q))
    # Damped least squares for position; orientation error fed through the null-space-ish last joint.
    jj = jac @ jac.T + 1e-4 * np.eye(2)
    qd = jac.T @ np.linalg.solve(jj, tip_vel)
    qd[2] += gain * orient_err
    return np.clip(qd, -cfg.velocity_limit, cfg.velocity_limit)
