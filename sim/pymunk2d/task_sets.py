"""Seeded task sets: training / held-out splits per family (PERIL: 40/10), the multi-family set, the
point robot's goals (PEARL: evenly spaced on the unit half circle, shuffled).

Task ids are "<family>-train-NN" / "<family>-test-NN": the strings the trial runner sends on
/task/request to the ROS twin.
"""

from __future__ import annotations

import numpy as np

from sim.pymunk2d import families as fam
from sim.tasks import Task, TaskSet

PERIL_TRAIN, PERIL_TEST = 40, 10
PEARL_TRAIN, PEARL_TEST = 80, 20


def make_family_task_set(family: str, seed: int = 0, n_train: int = PERIL_TRAIN, n_test: int = PERIL_TEST) -> TaskSet:
    """n_train + n_test tasks of one 2D family drawn with a generator seeded by (seed, family)."""
    if n_train < 0 or n_test < 0:
        raise ValueError(f"n_train and n_test must be >= 0 (got {n_train}, {n_test})")
    rng = np.random.default_rng([int(seed), fam.family_index(family)])
    params = [fam.sample_params(family, rng) for _ in range(n_train + n_test)]

    def task(split, i, p):
        return Task(family, f"{family}-{split}-{i:02d}", fam.descriptor(family, p), p)

    return TaskSet(family, seed, tuple(task("train", i, p) for i, p in enumerate(params[:n_train])),
                   tuple(task("test", i, p) for i, p in enumerate(params[n_train:])))


def multi2d_task_set(seed: int = 0, n_train: int = PERIL_TRAIN, n_test: int = PERIL_TEST) -> TaskSet:
    """The four families mixed: each family's own split (n_train / n_test per family), concatenated."""
    sets = [make_family_task_set(f, seed, n_train, n_test) for f in fam.FAMILIES]
    return TaskSet("multi2d", seed, tuple(t for s in sets for t in s.train), tuple(t for s in sets for t in s.test))


def point_robot_task_set(seed: int = 0, n_train: int = PEARL_TRAIN, n_test: int = PEARL_TEST) -> TaskSet:
    """Goals evenly spaced on the unit upper half circle, shuffled by `seed`, split train/test."""
    n = n_train + n_test
    angles = np.linspace(0.0, np.pi, num=n)
    np.random.default_rng(seed).shuffle(angles)
    goals = np.stack([np.cos(angles), np.sin(angles)], axis=1)

    def task(split, i, g):
        return Task("point_robot", f"point_robot-{split}-{i:02d}", g.astype(np.float32),
                    {"goal": [float(g[0]), float(g[1])]})

    return TaskSet("point_robot", seed, tuple(task("train", i, g) for i, g in enumerate(goals[:n_train])),
                   tuple(task("test", i, g) for i, g in enumerate(goals[n_train:])))


def reach2d_task_set(seed: int = 0, n_train: int = PERIL_TRAIN, n_test: int = PERIL_TEST) -> TaskSet:
    return make_family_task_set("reach2d", seed, n_train, n_test)


def stick2d_task_set(seed: int = 0, n_train: int = PERIL_TRAIN, n_test: int = PERIL_TEST) -> TaskSet:
    return make_family_task_set("stick2d", seed, n_train, n_test)


def peg2d_task_set(seed: int = 0, n_train: int = PERIL_TRAIN, n_test: int = PERIL_TEST) -> TaskSet:
    return make_family_task_set("peg2d", seed, n_train, n_test)


def key2d_task_set(seed: int = 0, n_train: int = PERIL_TRAIN, n_test: int = PERIL_TEST) -> TaskSet:
    return make_family_task_set("key2d", seed, n_train, n_test)


BUILDERS = {"reach2d": reach2d_task_set, "stick2d": stick2d_task_set, "peg2d": peg2d_task_set,
            "key2d": key2d_task_set, "multi2d": multi2d_task_set, "point_robot": point_robot_task_set}


def make_task_set(name: str, seed: int = 0, **sizes) -> TaskSet:
    """Task set by short name (reach2d, stick2d, peg2d, key2d, multi2d, point_robot)."""
    if name not in BUILDERS:
        raise ValueError(f"no Pymunk task set {name!r} (known: {', '.join(BUILDERS)})")
    return BUILDERS[name](seed=seed, **sizes)
