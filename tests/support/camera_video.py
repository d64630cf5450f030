"""Generated video files that stand in for webcams in tests (written with cv2.VideoWriter, MJPG)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# BGR quadrant colours: top-left, top-right, bottom-left, bottom-right
QUADRANTS_BGR = ((0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 255))


def quadrant_frame(width: int, height: int, index: int = 0) -> np.ndarray:
    """A BGR frame with four coloured quadrants and a small counter bar along the bottom row."""
    img = np.zeros((height, width, 3), np.uint8)
    h2, w2 = height // 2, width // 2
    for k, (y, x) in enumerate(((0, 0), (0, w2), (h2, 0), (h2, w2))):
        img[y: y + h2, x: x + w2] = QUADRANTS_BGR[k]
    img[-2:, : (index * 4) % width] = (40, 40, 40)
    return img


def write_video(path: str | Path, frames: int = 30, width: int = 160, height: int = 120, fps: float = 30.0,
                fourcc: str = "MJPG") -> Path:
    """Write a quadrant-pattern video; returns its path."""
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write test video {path}")
    for i in range(frames):
        writer.write(quadrant_frame(width, height, i))
    writer.release()
    return path
