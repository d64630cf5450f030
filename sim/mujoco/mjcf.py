"""Small helpers to write MJCF by hand: number formatting, URDF rpy -> quaternion, look-at cameras,
and a slab with rectangular through-holes (RJ45 ports, peg boxes) built from boxes."""

from __future__ import annotations

import numpy as np


def fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in np.atleast_1d(values))


def quat_mul(a, b) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def axis_quat(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float)
    axis = axis / np.linalg.norm(axis)
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])


def rpy_quat(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF origin rpy (fixed axes X, then Y, then Z) as a MuJoCo quaternion (w x y z)."""
    return quat_mul(axis_quat((0, 0, 1), yaw), quat_mul(axis_quat((0, 1, 0), pitch), axis_quat((1, 0, 0), roll)))


def lookat_xyaxes(pos, target, up=(0.0, 0.0, 1.0)) -> str:
    """MJCF camera `xyaxes` for a camera at `pos` looking at `target` (MuJoCo cameras look along -z)."""
    forward = np.asarray(target, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    x = np.cross(forward, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, forward)
    return fmt(np.concatenate([x, y]))


def slab_with_holes(prefix: str, size_x: float, size_y: float, top_z: float, depth: float,
                    holes_y, hole_w: float, hole_t: float, material: str, extra: str = "") -> list[str]:
    """Box geoms of a slab (x: size_x, y: size_y, top at top_z, `depth` thick) with rectangular
    through-holes centred at x=0 and y in `holes_y`, each `hole_w` along y and `hole_t` along x.

    The caller closes the holes from below with the body under the slab, which makes them cavities.
    """
    geoms = []
    zc, hz = top_z - depth / 2, depth / 2

    def box(name, cx, cy, sx, sy):
        if sx > 1e-6 and sy > 1e-6:
            geoms.append(f'<geom name="{prefix}{name}" type="box" pos="{fmt([cx, cy, zc])}" '
                         f'size="{fmt([sx / 2, sy / 2, hz])}" material="{material}" {extra}/>')

    edges = [-size_y / 2]
    for y in sorted(holes_y):
        edges += [y - hole_w / 2, y + hole_w / 2]
    edges.append(size_y / 2)
    for i in range(0, len(edges), 2):  # solid strips between holes, full x extent
        box(f"strip{i // 2}", 0.0, (edges[i] + edges[i + 1]) / 2, size_x, edges[i + 1] - edges[i])
    side = (size_x - hole_t) / 2
    for k, y in enumerate(sorted(holes_y)):  # in front of and behind each hole
        box(f"hole{k}_front", -(hole_t + side) / 2, y, side, hole_w)
        box(f"hole{k}_back", (hole_t + side) / 2, y, side, hole_w)
    return geoms
