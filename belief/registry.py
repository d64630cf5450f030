"""Which code trains, evaluates and exports each algorithm, and how envs/task sets are found by short name.

`meldbot train --algo NAME` looks NAME up in ALGORITHMS; each entry names "module:function" callables
so nothing heavy is imported until used. To add an algorithm (MELD does), add one line here:

    "meld": {"train": "belief.meld.training:train", "eval": "belief.meld.evaluation:evaluate",
             "export": "belief.meld.export:export"},

Contract: train(cfg_path|None, args) -> int; eval(checkpoint, args) -> int; export(checkpoint, out, args) -> int.
Checkpoints record "algo" so eval/export dispatch on it.
"""

from __future__ import annotations

import importlib

_PP = {"train": "belief.training:train_command", "eval": "belief.evaluation:eval_command",
       "export": "belief.export:export_command"}

ALGORITHMS: dict[str, dict[str, str]] = {
    "pearl": _PP,
    "peril": _PP,
    "peril-a": _PP,
    "meld": {"train": "belief.meld.train:train_command", "eval": "belief.meld.evaluate:eval_command", "export": "belief.meld.export:export_command"},
}


def resolve(spec: str):
    """'package.module:function' -> the function."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def entry(algo: str, kind: str):
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r} (known: {', '.join(sorted(ALGORITHMS))})")
    return resolve(ALGORITHMS[algo][kind])


PYMUNK_FAMILIES = ("reach2d", "stick2d", "peg2d", "key2d", "multi2d")


def make_env(short_name: str, seed: int = 0, **kwargs):
    """A Gymnasium env by CLI short name ('toy' is belief's own test family)."""
    if short_name == "toy":
        from belief.toy_env import ToyPointGoal

        return ToyPointGoal(seed=seed, **kwargs)
    import gymnasium as gym

    import sim

    env_id = _short_names(sim).get(short_name)
    if env_id is None and short_name in PYMUNK_FAMILIES:
        # the Pymunk package's Gymnasium registration is optional: build its env class directly
        from sim.pymunk2d.env import Planar2DEnv

        env = Planar2DEnv(family=short_name, **kwargs)
        env.reset(seed=seed)
        return env
    if env_id is None:
        raise ValueError(f"unknown env {short_name!r} (known: toy, {', '.join(sorted(_short_names(sim)))})")
    env = gym.make(env_id, **kwargs)
    env.reset(seed=seed)
    return env


def make_task_set(short_name: str, seed: int = 0, **sizes):
    if short_name == "toy":
        from belief.toy_env import make_task_set as toy

        return toy(seed, **sizes)
    import sim

    if hasattr(sim, "make_task_set"):
        return sim.make_task_set(short_name, seed=seed, **sizes)
    if short_name in PYMUNK_FAMILIES or short_name == "point_robot":
        from sim.pymunk2d.task_sets import make_task_set as pymunk_sets

        return pymunk_sets(short_name, seed=seed, **sizes)
    for module in ("sim.pymunk2d.registration", "sim.mujoco.registration"):
        try:
            reg = importlib.import_module(module)
        except ImportError:
            continue
        spec = getattr(reg, "TASK_SETS", {}).get(short_name)
        if spec:
            return resolve(spec)(seed=seed, **sizes)
    raise ValueError(f"no task set for env {short_name!r}")


def _short_names(sim_module) -> dict[str, str]:
    names: dict[str, str] = {}
    for module in ("sim.pymunk2d.registration", "sim.mujoco.registration"):
        try:
            names.update(getattr(importlib.import_module(module), "SHORT_NAMES", {}))
        except ImportError:
            continue
    return names
