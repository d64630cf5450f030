"""The low-level joint loop a Dynamixel/intera controller runs at servo rate, in plain numpy.

A velocity command is held between control steps (as the hardware holds the last command). Every
servo tick the loop integrates the command into a position reference (clamped to the joint limits,
and to a bounded following error so a blocked joint does not wind up), then asks the joint's
velocity actuator for ``v = cmd + kp * (q_ref - q)`` clipped to the velocity limit. The outer
position term holds the arm against gravity; the clip keeps every requested velocity within limits.
"""

from __future__ import annotations

import numpy as np


class JointVelocityServo:
    def __init__(self, lower, upper, velocity_limit, kp: float, dt: float, max_following_error: float = 0.1):
        self.lower = np.asarray(lower, dtype=float)
        self.upper = np.asarray(upper, dtype=float)
        self.vmax = np.asarray(velocity_limit, dtype=float)
        self.kp, self.dt, self.max_err = float(kp), float(dt), float(max_following_error)
        self.command = np.zeros_like(self.lower)
        self.q_ref = np.zeros_like(self.lower)

    def reset(self, q) -> None:
        self.q_ref = np.clip(np.asarray(q, dtype=float), self.lower, self.upper)
        self.command = np.zeros_like(self.lower)

    def set_command(self, velocity) -> np.ndarray:
        """Hold `velocity` (rad/s) until the next command; returns the command as held (clipped)."""
        self.command = np.clip(np.asarray(velocity, dtype=float), -self.vmax, self.vmax)
        return self.command

    def tick(self, q) -> np.ndarray:
        """One servo period: advance the reference, return the velocity set-point for the actuators."""
        # ufuncs instead of np.clip: this runs hundreds of times per control step
        ref = np.minimum(np.maximum(self.q_ref + self.command * self.dt, self.lower), self.upper)
        # feed-forward = how far the reference really moves (zero once it stops at a joint limit);
        # the position term compares with the reference for *now*, so perfect tracking gives v = cmd
        feed_forward = (ref - self.q_ref) / self.dt
        v = feed_forward + self.kp * (self.q_ref - q)
        self.q_ref = np.minimum(np.maximum(ref, q - self.max_err), q + self.max_err)
        return np.minimum(np.maximum(v, -self.vmax), self.vmax)
