"""Render one episode of any registered meldbot env to a video (MP4 if an ffmpeg writer is available,
else GIF) and a PNG strip of evenly spaced frames, so a person can see what a task looks like.

Frames come from `env.render()` (render_mode="rgb_array"); an env exposing `render_cameras()` (the
MuJoCo twins: the 64x128 scene|wrist pair) is shown through that instead, upscaled.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np

REGISTRATION_MODULES = ("sim.pymunk2d.registration", "sim.mujoco.registration")


def _registration(attr: str) -> dict:
    merged = {}
    for module in REGISTRATION_MODULES:
        try:
            merged.update(getattr(importlib.import_module(module), attr, {}))
        except ImportError:
            continue
    return merged


def resolve_env_id(name: str) -> str:
    """A Gymnasium id from a short name (peg2d, widowx_cable, ...) or an id."""
    import sim  # noqa: F401  (registers every available id)

    if name in gym.registry:
        return name
    short = _registration("SHORT_NAMES")
    if name in short:
        return short[name]
    raise LookupError(f"unknown environment {name!r} (short names: {', '.join(sorted(short))})")


def short_name(env_id: str) -> str:
    for short, eid in _registration("SHORT_NAMES").items():
        if eid == env_id:
            return short
    return env_id.split("/")[-1].lower()


def find_task(env, name: str, task_id: str | None):
    """The task to show: `task_id` from the env's task set, else its first held-out task."""
    task_set = getattr(env.unwrapped, "task_set", None)
    if task_set is None:
        target = _registration("TASK_SETS").get(name)
        if target is None:
            return None
        module, _, func = target.partition(":")
        task_set = getattr(importlib.import_module(module), func)(seed=0)
    if task_id is None:
        return (task_set.test or task_set.train)[0]
    return task_set.by_id(task_id)


def frame(env) -> np.ndarray:
    base = env.unwrapped
    if hasattr(base, "render_cameras"):
        img = np.asarray(base.render_cameras())
        scale = max(1, 256 // img.shape[0])
        return cv2.resize(img, (img.shape[1] * scale, img.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    img = env.render()
    if img is None:
        raise ValueError(f"{base.spec.id if base.spec else base}: render() returned nothing")
    return np.asarray(img)


def annotate(img: np.ndarray, text: str, ok: bool) -> np.ndarray:
    img = np.ascontiguousarray(img.copy())
    scale = img.shape[0] / 512
    cv2.putText(img, text, (6, int(22 * scale) + 6), cv2.FONT_HERSHEY_SIMPLEX, max(0.35, scale),
                (30, 150, 60) if ok else (40, 40, 40), 1, cv2.LINE_AA)
    return img


@dataclass
class Episode:
    frames: list
    success: bool
    returns: float
    task_id: str


def run_episode(env_name: str, task_id: str | None = None, seed: int = 0, policy: str = "expert",
                max_steps: int | None = None) -> Episode:
    if policy not in ("expert", "random"):
        raise ValueError(f"policy must be 'expert' or 'random', not {policy!r}")
    env_id = resolve_env_id(env_name)
    env = gym.make(env_id, render_mode="rgb_array", disable_env_checker=True)
    try:
        task = find_task(env, short_name(env_id), task_id)
        obs, info = env.reset(seed=seed, options={"task": task} if task is not None else None)
        env.action_space.seed(seed)
        steps = max_steps or getattr(env.unwrapped, "episode_steps", 60)
        frames, ok, ret = [annotate(frame(env), "t=0", False)], False, 0.0
        for t in range(steps):
            action = env.unwrapped.expert_action() if policy == "expert" else env.action_space.sample()
            obs, reward, terminated, truncated, info = env.step(action)
            ok = ok or bool(info.get("success", False))
            ret += float(reward)
            frames.append(annotate(frame(env), f"t={t + 1} r={reward:+.3f}{'  success' if ok else ''}", ok))
            if terminated or truncated:
                break
        return Episode(frames, ok, ret, task.task_id if task is not None else "")
    finally:
        env.close()


def write_video(frames, stem: Path, fps: int = 10) -> Path:
    """MP4 through imageio's ffmpeg plugin when installed, else an animated GIF. Written atomically."""
    import imageio.v2 as iio

    stem.parent.mkdir(parents=True, exist_ok=True)
    try:
        import imageio_ffmpeg  # noqa: F401

        path, kwargs = stem.with_suffix(".mp4"), {"fps": fps, "macro_block_size": 1, "format": "FFMPEG"}
    except ImportError:
        path, kwargs = stem.with_suffix(".gif"), {"duration": 1000.0 / fps, "loop": 0, "format": "GIF"}
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    os.close(fd)
    try:
        iio.mimsave(tmp, [np.asarray(f) for f in frames], **kwargs)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a video is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_strip(frames, path: Path, count: int = 8) -> Path:
    """`count` evenly spaced frames side by side, 2 px gutters, as a PNG (atomic)."""
    idx = np.linspace(0, len(frames) - 1, num=min(count, len(frames))).round().astype(int)
    tiles = [frames[i] for i in idx]
    h = tiles[0].shape[0]
    gutter = np.full((h, 2, 3), 255, dtype=np.uint8)
    parts = []
    for tile in tiles:
        parts += [tile, gutter]
    return write_png(np.hstack(parts[:-1]), path)


def write_png(image: np.ndarray, path: Path) -> Path:
    """Write an RGB image as PNG atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    os.replace(tmp, path)
    return path


def view(env_name: str, task_id: str | None = None, seed: int = 0, out_dir=".", policy: str = "expert",
         strip_frames: int = 8) -> dict:
    """Run and save one episode; returns {"video", "strip", "success", "return", "task_id"}."""
    ep = run_episode(env_name, task_id, seed, policy)
    out = Path(out_dir)
    stem = out / f"{short_name(resolve_env_id(env_name))}_{ep.task_id or 'episode'}_{policy}".replace("/", "_")
    return {"video": write_video(ep.frames, stem), "strip": write_strip(ep.frames, stem.with_suffix(".png"),
                                                                           strip_frames),
            "success": ep.success, "return": ep.returns, "task_id": ep.task_id}
