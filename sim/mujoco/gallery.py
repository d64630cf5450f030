"""Pictures of the MuJoCo twins for the README: both camera views of a few tasks, at the start of an
episode and after the scripted expert's attempt (`python -m sim.mujoco.gallery docs/images`)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np

from sim.viewer import write_png

GALLERY = {
    "widowx_cable": ("meldbot/WidowXCable-v0", ["test-00", "test-01", "test-05"]),
    "sawyer_reach": ("meldbot/SawyerReach-v0", ["test-00", "test-01"]),
    "sawyer_peg": ("meldbot/SawyerPeg-v0", ["test-00", "test-01"]),
}


def _label(img: np.ndarray, text: str) -> np.ndarray:
    img = np.ascontiguousarray(img)
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    cv2.rectangle(img, (2, 2), (10 + w, 10 + h), (20, 20, 20), -1)
    cv2.putText(img, text, (6, 6 + h), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def task_rows(env_id: str, task_ids, size=(180, 240), steps: int = 12, seed: int = 0) -> np.ndarray:
    """One row per task: [scene | wrist] at reset, [scene | wrist] after `steps` expert steps, and the
    64x128 observation of that moment (upscaled)."""
    import sim  # noqa: F401

    env = gym.make(env_id, render_mode="rgb_array", render_size=size).unwrapped
    rows = []
    try:
        for task_id in task_ids:
            task = env.task_set.by_id(task_id)
            env.reset(seed=seed, options={"task": task})
            start = _label(env.render(), f"{task_id} start")
            info = {}
            for _ in range(steps):
                info = env.step(env.expert_action())[4]
            end = _label(env.render(), f"{task_id} expert, success={info['success']}")
            obs = cv2.resize(env.render_cameras(), (2 * size[0], size[0]), interpolation=cv2.INTER_NEAREST)
            gap = np.full((size[0], 4, 3), 255, np.uint8)
            rows.append(np.hstack([start, gap, end, gap, _label(obs, "64x128 observation")]))
    finally:
        env.close()
    gap = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
    return np.vstack([r for row in rows for r in (row, gap)][:-1])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs/images")
    for name, (env_id, task_ids) in GALLERY.items():
        print(write_png(task_rows(env_id, task_ids), out / f"mujoco_{name}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
