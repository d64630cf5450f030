"""Kinematics of the planar 3-link arm: forward kinematics, Jacobian, damped least squares, analytic IK.

Joint angles are relative (each to its parent link); the end effector (EE) is the tool tip, its angle
the last link's absolute angle. Lengths in metres. Everything here is plain numpy so the ROS side (or an
exported policy, which gets joint positions in its observation) can run the same IK.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ArmGeometry:
    """Link lengths and limits; `tool_length` extends the last link to the tool tip (the EE point)."""

    link_lengths: tuple[float, float, float] = (0.40, 0.35, 0.10)
    tool_length: float = 0.05
    joint_lower: tuple[float, float, float] = (-2.0, -2.7, -2.7)  # rad, relative joint angles
    joint_upper: tuple[float, float, float] = (2.0, 2.7, 2.7)
    joint_velocity_limit: float = 2.0  # rad/s per joint
    damping: float = 0.02  # DLS damping (m): keeps joint speeds bounded near singularities

    @property
    def lengths(self) -> np.ndarray:
        """Effective lengths: the last includes the tool, so FK ends at the tool tip."""
        l1, l2, l3 = self.link_lengths
        return np.array([l1, l2, l3 + self.tool_length])


def forward(geom: ArmGeometry, q) -> np.ndarray:
    """EE pose [x, y, angle] for relative joint angles q (3,)."""
    theta = np.cumsum(q)
    lengths = geom.lengths
    return np.array([float(np.dot(lengths, np.cos(theta))), float(np.dot(lengths, np.sin(theta))), float(theta[-1])])


def jacobian(geom: ArmGeometry, q) -> np.ndarray:
    """3x3 Jacobian d[x, y, angle]/dq."""
    theta = np.cumsum(q)
    lengths = geom.lengths
    dx = -lengths * np.sin(theta)
    dy = lengths * np.cos(theta)
    # column j sums the contributions of links j..2 (reverse cumulative sum)
    return np.array([np.cumsum(dx[::-1])[::-1], np.cumsum(dy[::-1])[::-1], np.ones(3)])


def dls_joint_velocities(geom: ArmGeometry, q, ee_velocity) -> np.ndarray:
    """Joint velocities realising EE velocity [vx, vy, w] by damped least squares:
    qd = J^T (J J^T + lambda^2 I)^-1 v. Scaled down as a whole (direction kept) so no joint exceeds the
    velocity limit. Written out for 3x3 in plain floats: this runs every env step and numpy's per-call
    overhead on 3x3 matrices would dominate it.
    """
    q1, q2, q3 = (float(v) for v in q)
    l1, l2, l3 = geom.link_lengths[0], geom.link_lengths[1], geom.link_lengths[2] + geom.tool_length
    t1, t2 = q1, q1 + q2
    t3 = t2 + q3
    s1, c1, s2, c2, s3, c3 = math.sin(t1), math.cos(t1), math.sin(t2), math.cos(t2), math.sin(t3), math.cos(t3)
    # Jacobian columns (x, y, angle rows): column j sums links j..2
    x3, y3 = -l3 * s3, l3 * c3
    x2, y2 = x3 - l2 * s2, y3 + l2 * c2
    x1, y1 = x2 - l1 * s1, y2 + l1 * c1
    lam2 = geom.damping ** 2
    # A = J J^T + lam2 I (symmetric 3x3)
    a00 = x1 * x1 + x2 * x2 + x3 * x3 + lam2
    a01 = x1 * y1 + x2 * y2 + x3 * y3
    a02 = x1 + x2 + x3
    a11 = y1 * y1 + y2 * y2 + y3 * y3 + lam2
    a12 = y1 + y2 + y3
    a22 = 3.0 + lam2
    vx, vy, w = (float(v) for v in ee_velocity)
    # solve A z = v by Cramer's rule (A is positive definite thanks to the damping)
    c00, c01, c02 = a11 * a22 - a12 * a12, a02 * a12 - a01 * a22, a01 * a12 - a02 * a11
    det = a00 * c00 + a01 * c01 + a02 * c02
    c11, c12, c22 = a00 * a22 - a02 * a02, a01 * a02 - a00 * a12, a00 * a11 - a01 * a01
    zx = (c00 * vx + c01 * vy + c02 * w) / det
    zy = (c01 * vx + c11 * vy + c12 * w) / det
    zw = (c02 * vx + c12 * vy + c22 * w) / det
    qd = [x1 * zx + y1 * zy + zw, x2 * zx + y2 * zy + zw, x3 * zx + y3 * zy + zw]
    peak = max(abs(qd[0]), abs(qd[1]), abs(qd[2]))
    if peak > geom.joint_velocity_limit:
        k = geom.joint_velocity_limit / peak
        qd = [v * k for v in qd]
    return np.array(qd)


def inverse(geom: ArmGeometry, pose, elbow: float = -1.0) -> np.ndarray:
    """Relative joint angles putting the EE at pose [x, y, angle]; `elbow` -1/+1 picks the branch.

    Raises ValueError if the pose is out of reach or violates a joint limit.
    """
    x, y, phi = (float(v) for v in pose)
    l1, l2, _ = geom.link_lengths
    l3 = geom.lengths[2]
    wx, wy = x - l3 * math.cos(phi), y - l3 * math.sin(phi)
    c2 = (wx * wx + wy * wy - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    if abs(c2) > 1.0:
        raise ValueError(f"EE pose {pose} is out of the arm's reach (wrist at {math.hypot(wx, wy):.3f} m)")
    q2 = elbow * math.acos(c2)
    q1 = math.atan2(wy, wx) - math.atan2(l2 * math.sin(q2), l1 + l2 * math.cos(q2))
    q3 = phi - q1 - q2
    q3 = (q3 + math.pi) % (2 * math.pi) - math.pi
    q = np.array([q1, q2, q3])
    lo, hi = np.array(geom.joint_lower), np.array(geom.joint_upper)
    if np.any(q < lo) or np.any(q > hi):
        raise ValueError(f"EE pose {pose} needs joints {np.round(q, 3).tolist()} outside the limits")
    return q
