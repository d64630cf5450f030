"""Fast numpy/OpenCV drawing of the 2D scenes (the image observation and what the ROS twin publishes).

A scene is a list of filled polygons in world coordinates (metres) plus optional markers; drawing uses
OpenCV's sub-pixel (shift) anti-aliased fills straight at the target size, so a 64x64 frame costs tens
of microseconds and the same function serves the policy, the twin's camera topic and the viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

BACKGROUND = (232, 232, 222)
ARM_COLOR = (70, 70, 74)
TOOL_COLOR = (225, 125, 40)
JOINT_COLOR = (30, 30, 30)
GOAL_COLOR = (40, 170, 70)
_SHIFT = 4  # fixed-point bits for sub-pixel polygon vertices
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class View:
    """The world rectangle the camera sees (square, metres); image y points down."""

    x0: float = -0.05
    y0: float = -0.42
    extent: float = 1.0

    def to_px(self, points, size: int) -> np.ndarray:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        scale = size / self.extent
        u = (pts[:, 0] - self.x0) * scale
        v = (self.y0 + self.extent - pts[:, 1]) * scale
        return np.stack([u, v], axis=1)


PLANAR_VIEW = View()
POINT_VIEW = View(x0=-1.3, y0=-0.6, extent=2.6)


def draw_scene(size: int, polys, view: View = PLANAR_VIEW, joints=(), goal=None, goal_radius: float = 0.0,
               dots=()) -> np.ndarray:
    """Render to (size, size, 3) uint8 RGB.

    polys: [(world vertices (k, 2), rgb)]; joints: world points drawn as small discs; goal: a world
    point drawn as a ring (viewer only: image observations never show a hidden goal); dots:
    [(world point, radius m, rgb)] filled discs.
    """
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    scale = size / view.extent
    if polys:
        # One vectorised transform for every vertex, one fillPoly per colour: numpy/OpenCV call overhead,
        # not pixels, is what a 64x64 frame costs.
        counts = [len(v) for v, _ in polys]
        px = np.round(view.to_px(np.concatenate([np.asarray(v, dtype=np.float64) for v, _ in polys]), size)
                      * _ONE).astype(np.int32)
        pieces = np.split(px, np.cumsum(counts)[:-1])
        by_color: dict = {}
        for piece, (_, color) in zip(pieces, polys, strict=True):
            by_color.setdefault(tuple(color), []).append(piece)
        for color, group in by_color.items():
            cv2.fillPoly(img, group, color, cv2.LINE_AA, _SHIFT)
    for point, radius, color in dots:
        c = np.round(view.to_px(point, size)[0] * _ONE).astype(np.int32)
        cv2.circle(img, (int(c[0]), int(c[1])), max(_ONE, int(radius * scale * _ONE)), color, -1, cv2.LINE_AA,
                   _SHIFT)
    joint_r = max(_ONE, int(0.012 * scale * _ONE))
    for point in joints:
        c = np.round(view.to_px(point, size)[0] * _ONE).astype(np.int32)
        cv2.circle(img, (int(c[0]), int(c[1])), joint_r, JOINT_COLOR, -1, cv2.LINE_AA, _SHIFT)
    if goal is not None:
        c = np.round(view.to_px(goal, size)[0] * _ONE).astype(np.int32)
        ring = max(2 * _ONE, int(max(goal_radius, 0.02) * scale * _ONE))
        cv2.circle(img, (int(c[0]), int(c[1])), ring, GOAL_COLOR, max(1, size // 128), cv2.LINE_AA, _SHIFT)
    return img
