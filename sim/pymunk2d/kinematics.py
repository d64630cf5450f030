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
    """Joint velocities realising EE velocity [vx, vy, w] by damped least squares.

    The result is scaled down as a whole (direction kept) so no joint exceeds the velocity limit.
    """
    jac = jacobian(geom, q)
    lam2 = geom.damping**2
    qd = jac.T @ np.linalg.solve(jac @ jac.T + lam2 * np.eye(3), np.asarray(ee_velocity, dtype=np.float64))
    peak = float(np.max(np.abs(qd)))
    if peak > geom.joint_velocity_limit:
        qd *= geom.joint_velocity_limit / peak
    return qd


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
