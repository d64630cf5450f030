"""Expert demonstrations on disk: a directory with `manifest.json` (format name + version, what was
recorded) and one `<task_id>.npz` per task holding K episodes as fixed-shape arrays.

npz arrays: observations (K, T+1, *obs), actions (K, T, A), dense_rewards / sparse_rewards (K, T),
successes (K, T) bool, descriptor (D,) of the real task, demo_descriptor (D,) of the task the expert
actually solved (differs when `alteration` > 0: imperfect demonstrations after PERIL).
Every file is written atomically (temp file in the same directory + os.replace), the manifest last,
so a crash never leaves a manifest pointing at a half-written file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from sim.tasks import Task
from sim.viewer import resolve_env_id

FORMAT = "meldbot-demos"
VERSION = 1
ARRAYS = ("observations", "actions", "dense_rewards", "sparse_rewards", "successes", "descriptor", "demo_descriptor")


@dataclass
class TaskDemos:
    task_id: str
    family: str
    descriptor: np.ndarray
    demo_descriptor: np.ndarray
    observations: np.ndarray
    actions: np.ndarray
    dense_rewards: np.ndarray
    sparse_rewards: np.ndarray
    successes: np.ndarray

    @property
    def episode_success(self) -> np.ndarray:
        """(K,) bool: the episode reached success at some step."""
        return self.successes.any(axis=1)


@dataclass
class DemoSet:
    env: str
    env_id: str
    k: int
    noise: float
    alteration: float
    seed: int
    tasks: dict[str, TaskDemos]

    def __getitem__(self, task_id: str) -> TaskDemos:
        if task_id not in self.tasks:
            raise KeyError(f"no demonstrations for task {task_id!r} (have: {', '.join(self.tasks)})")
        return self.tasks[task_id]

    def __len__(self) -> int:
        return len(self.tasks)


def alter_task(task: Task, magnitude: float, rng: np.random.Generator) -> Task:
    """The same task with its goal / fixture moved `magnitude` m in a random direction (PERIL's alterations)."""
    if magnitude == 0.0:
        return task
    shift = magnitude * np.array([np.cos(t := rng.uniform(0, 2 * np.pi)), np.sin(t)])
    params = dict(task.params)
    key = "mouth" if "mouth" in params else "goal"
    params[key] = (np.asarray(params[key]) + shift).tolist()
    if task.family == "point_robot":
        return Task(task.family, task.task_id, np.asarray(params["goal"], np.float32), params)
    from sim.pymunk2d.families import descriptor

    return Task(task.family, task.task_id, descriptor(task.family, params), params)


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def record_episodes(env, task: Task, demo_task: Task, k: int, noise: float, rng: np.random.Generator,
                    seed: int) -> dict:
    """K expert episodes on `demo_task` (rewards and success measured against it), as arrays."""
    steps = env.episode_steps
    low, high = env.action_space.low, env.action_space.high
    half = (high - low) / 2
    obs_l, act_l, dense, sparse, succ = [], [], np.zeros((k, steps)), np.zeros((k, steps)), np.zeros((k, steps), bool)
    for ep in range(k):
        obs, _ = env.reset(seed=seed + ep, options={"task": demo_task})
        ep_obs, ep_act = [obs], []
        for t in range(steps):
            action = np.asarray(env.expert_action(), dtype=np.float64)
            if noise > 0:
                action = action + rng.normal(0.0, noise, size=action.shape) * half
            action = np.clip(action, low, high).astype(np.float32)
            obs, _, _, _, info = env.step(action)
            ep_obs.append(obs)
            ep_act.append(action)
            dense[ep, t], sparse[ep, t], succ[ep, t] = info["dense_reward"], info["sparse_reward"], info["success"]
        obs_l.append(np.stack(ep_obs))
        act_l.append(np.stack(ep_act))
    return {"observations": np.stack(obs_l), "actions": np.stack(act_l), "dense_rewards": dense,
            "sparse_rewards": sparse, "successes": succ, "descriptor": task.descriptor,
            "demo_descriptor": demo_task.descriptor}


def write_demos(path, family: str, tasks: Sequence[Task], k: int, noise: float = 0.0, alteration: float = 0.0,
                seed: int = 0, **env_kwargs) -> Path:
    """Record `k` expert episodes per task with env `family` (a short name or id) into directory `path`.

    noise: std of Gaussian action noise as a fraction of the action range; alteration: metres by which
    each demonstrated task is displaced from the real one. Returns the manifest's path.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if noise < 0 or alteration < 0:
        raise ValueError(f"noise and alteration must be >= 0 (got {noise}, {alteration})")
    if not tasks:
        raise ValueError("write_demos needs at least one task")
    env_id = resolve_env_id(family)
    env = gym.make(env_id, **env_kwargs).unwrapped
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    entries = []
    from tqdm import tqdm

    for task in tqdm(tasks, desc=f"demos {family}", unit="task", leave=False, disable=len(tasks) < 10):
        demo_task = alter_task(task, alteration, rng)
        arrays = record_episodes(env, task, demo_task, k, noise, rng, seed)
        name = f"{task.task_id}.npz"
        _atomic_write(out / name, lambda fh, a=arrays: np.savez_compressed(fh, **a))
        entries.append({"task_id": task.task_id, "family": task.family, "file": name,
                        "success_rate": float(arrays["successes"].any(axis=1).mean())})
    manifest = {"format": FORMAT, "version": VERSION, "env": family, "env_id": env_id, "k": k,
                "episode_steps": env.episode_steps, "noise": noise, "alteration": alteration, "seed": seed,
                "env_kwargs": env_kwargs, "tasks": entries}
    target = out / "manifest.json"
    _atomic_write(target, lambda fh: fh.write(json.dumps(manifest, indent=1).encode()))
    return target


def load_demos(path) -> DemoSet:
    """Read a demonstration directory (or its manifest.json), validating format, version and shapes."""
    path = Path(path)
    manifest_path = path / "manifest.json" if path.is_dir() else path
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no demonstration manifest at {manifest_path}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{manifest_path}: format is {manifest.get('format')!r}, expected {FORMAT!r}")
    if manifest.get("version") != VERSION:
        raise ValueError(f"{manifest_path}: demo format version {manifest.get('version')!r} is not supported "
                         f"(this meldbot reads version {VERSION}); re-record with write_demos")
    k, steps = int(manifest["k"]), int(manifest["episode_steps"])
    tasks = {}
    for entry in manifest["tasks"]:
        file = manifest_path.parent / entry["file"]
        if not file.is_file():
            raise FileNotFoundError(f"{manifest_path}: task {entry['task_id']!r} file {file.name} is missing")
        with np.load(file) as data:
            missing = [a for a in ARRAYS if a not in data.files]
            if missing:
                raise ValueError(f"{file}: missing arrays {missing}")
            arrays = {a: data[a] for a in ARRAYS}
        expect = {"observations": (k, steps + 1), "actions": (k, steps), "dense_rewards": (k, steps),
                  "sparse_rewards": (k, steps), "successes": (k, steps)}
        for name, lead in expect.items():
            if arrays[name].shape[:2] != lead:
                raise ValueError(f"{file}: {name} has shape {arrays[name].shape}, expected leading {lead}")
        tasks[entry["task_id"]] = TaskDemos(entry["task_id"], entry["family"], **arrays)
    fields = {f.name for f in dataclasses.fields(DemoSet)} - {"tasks"}
    return DemoSet(tasks=tasks, **{f: manifest[f] for f in fields})
