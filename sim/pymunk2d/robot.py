"""The planar 3-link arm as Pymunk bodies: revolute pivots, velocity motors with finite torque, joint limits.

Top-down view (no gravity). The base is at the world origin. The last link carries the family's tool
(a short pointer, a stick, a peg or a key) as extra shapes on the same rigid body, so the tool tip is
the end effector. Motors are force-limited: in contact the arm stalls or jams instead of pushing
through walls, which is what makes Peg2D/Key2D contact-rich.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pymunk

from sim.pymunk2d.kinematics import ArmGeometry, forward

ARM_GROUP = 1  # shapes in this group never collide with each other (links overlap at the joints)
JOINT_NAMES = ("shoulder", "elbow", "wrist")


@dataclass(frozen=True)
class ArmDynamics:
    """Masses and motor limits (SI). Motor torque caps bound contact forces (N*m)."""

    link_masses: tuple[float, float, float] = (2.0, 1.5, 1.0)
    link_width: float = 0.03
    motor_torque: tuple[float, float, float] = (20.0, 15.0, 5.0)
    friction: float = 0.4


def box_vertices(x0: float, x1: float, half_width: float, y_offset: float = 0.0) -> list[tuple[float, float]]:
    """A rectangle along the local x axis from x0 to x1, centred laterally on y_offset."""
    return [(x0, y_offset - half_width), (x1, y_offset - half_width), (x1, y_offset + half_width),
            (x0, y_offset + half_width)]


class PlanarArm:
    """The arm's bodies and constraints in a Pymunk space; joint-space commands and state."""

    def __init__(self, space: pymunk.Space, geom: ArmGeometry, q0: Sequence[float],
                 tool_polys: Sequence[Sequence[tuple[float, float]]] = (), dynamics: ArmDynamics | None = None):
        self.geom = geom
        self.dynamics = dyn = dynamics or ArmDynamics()
        self.bodies: list[pymunk.Body] = []
        self.motors: list[pymunk.SimpleMotor] = []
        self.shapes: list[pymunk.Shape] = []
        arm_filter = pymunk.ShapeFilter(group=ARM_GROUP)
        parent = space.static_body
        anchor = pymunk.Vec2d(0.0, 0.0)
        angle = 0.0
        hw = dyn.link_width / 2
        for i, (length, qi) in enumerate(zip(geom.link_lengths, q0, strict=True)):
            angle += float(qi)
            mass = dyn.link_masses[i]
            body = pymunk.Body(mass, pymunk.moment_for_box(mass, (length, dyn.link_width)) + mass * (length / 2) ** 2)
            body.position = anchor
            body.angle = angle
            polys = [box_vertices(0.0, length, hw)]
            if i == 2:
                polys += [list(p) for p in tool_polys]
            for verts in polys:
                shape = pymunk.Poly(body, verts)
                shape.filter = arm_filter
                shape.friction = dyn.friction
                self.shapes.append(shape)
            space.add(body, *self.shapes[-len(polys):])
            lo, hi = geom.joint_lower[i], geom.joint_upper[i]
            motor = pymunk.SimpleMotor(parent, body, 0.0)
            motor.max_force = dyn.motor_torque[i]
            space.add(pymunk.PivotJoint(parent, body, anchor), pymunk.RotaryLimitJoint(parent, body, lo, hi), motor)
            self.bodies.append(body)
            self.motors.append(motor)
            anchor = body.local_to_world((length, 0.0))
            parent = body
        self._tip_local = (geom.lengths[2], 0.0)

    def command(self, joint_velocities) -> None:
        """Drive the joints at these relative velocities (rad/s), clamped to the limit."""
        limit = self.geom.joint_velocity_limit
        for motor, v in zip(self.motors, joint_velocities, strict=True):
            motor.rate = -min(max(float(v), -limit), limit)  # pymunk's rate is parent.w - child.w

    def joint_positions(self) -> np.ndarray:
        b0, b1, b2 = self.bodies
        return np.array([b0.angle, b1.angle - b0.angle, b2.angle - b1.angle])

    def joint_velocities(self) -> np.ndarray:
        b0, b1, b2 = self.bodies
        return np.array([b0.angular_velocity, b1.angular_velocity - b0.angular_velocity,
                         b2.angular_velocity - b1.angular_velocity])

    def tip(self) -> pymunk.Vec2d:
        """The tool tip (world), cheaply: used every physics substep."""
        return self.bodies[-1].local_to_world(self._tip_local)

    def ee_pose(self) -> np.ndarray:
        """[x, y, angle] of the tool tip, read from the simulated last body (not from FK)."""
        last = self.bodies[-1]
        tip = last.local_to_world(self._tip_local)
        return np.array([tip.x, tip.y, last.angle])

    def ee_pose_fk(self) -> np.ndarray:
        return forward(self.geom, self.joint_positions())

    def link_segments(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """World end points of each link (without the tool), for drawing."""
        out = []
        for body, length in zip(self.bodies, self.geom.link_lengths, strict=True):
            a, b = body.local_to_world((0.0, 0.0)), body.local_to_world((length, 0.0))
            out.append((np.array(a), np.array(b)))
        return out
