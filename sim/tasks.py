"""Tasks and task sets shared by every twin: a task is what is hidden from the policy (goal pose, port...)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Task:
    """One task of a family. `descriptor` is the privileged ground truth (float32), never an observation."""

    family: str
    task_id: str
    descriptor: np.ndarray
    params: dict = field(default_factory=dict)  # family-specific fields (goal position, port index, ...)

    def __post_init__(self):
        object.__setattr__(self, "descriptor", np.asarray(self.descriptor, dtype=np.float32))


@dataclass(frozen=True)
class TaskSet:
    """A seeded split of a family's tasks into training and held-out tasks."""

    family: str
    seed: int
    train: tuple[Task, ...]
    test: tuple[Task, ...]

    def by_id(self, task_id: str) -> Task:
        for task in self.train + self.test:
            if task.task_id == task_id:
                return task
        known = ", ".join(t.task_id for t in self.train + self.test)
        raise KeyError(f"{self.family}: no task '{task_id}' (known: {known})")

    def split(self, name: str) -> tuple[Task, ...]:
        if name not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', not {name!r}")
        return self.train if name == "train" else self.test


def balanced_labels(rng: np.random.Generator, n: int, n_classes: int) -> np.ndarray:
    """n class labels in random order, each class floor(n / n_classes) or one more times.

    A split drawn i.i.d. can leave one class holding most of its tasks (seed 0 once gave the cable twin's
    held-out set the same port on 7 of 10 tasks), and then a policy that always picks that class scores
    like one that infers it.
    """
    if n < 0 or n_classes < 1:
        raise ValueError(f"balanced_labels needs n >= 0 and n_classes >= 1, got n={n}, n_classes={n_classes}")
    extra = rng.permutation(n_classes)[: n % n_classes]
    return rng.permutation(np.concatenate([np.repeat(np.arange(n_classes), n // n_classes), extra]))


def check_action(action, shape: tuple[int, ...], env_name: str) -> np.ndarray:
    """Validate an action: right shape and finite, else a ValueError naming what was wrong."""
    arr = np.asarray(action, dtype=np.float64)
    if arr.shape != tuple(shape):
        raise ValueError(f"{env_name}: action has shape {arr.shape}, expected {tuple(shape)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{env_name}: action contains non-finite values {arr.tolist()}")
    return arr
