"""Replay buffers for meta-RL: one ring buffer per task, demonstration buffers, and paths.

PEARL keeps two buffers per task: the RL buffer (everything, sampled uniformly for the actor-critic) and
the encoder buffer (only the latest collection round, cleared each round, sampled for the context) so
the context encoder sees data from the current policy. PERIL adds a demonstration buffer per task that
is augmented with rollouts that beat the demonstrations.

A *path* is a dict of equal-length arrays: obs, actions, rewards (dense), sparse_rewards, next_obs, dones
(all (T, d) float32) plus scalars success and return.
"""

from __future__ import annotations

import numpy as np

FIELDS = ("obs", "actions", "rewards", "sparse_rewards", "next_obs", "dones")


def path_length(path: dict) -> int:
    n = len(path["obs"])
    for key in FIELDS:
        if key not in path:
            raise ValueError(f"path is missing '{key}'")
        if len(path[key]) != n:
            raise ValueError(f"path field '{key}' has {len(path[key])} rows, 'obs' has {n}")
    return n


def context_array(batch: dict, reward_key: str = "sparse_rewards", use_next_obs: bool = False) -> np.ndarray:
    """Transitions -> context rows (o, a, r[, o']) (N, C), the encoder's input."""
    parts = [batch["obs"], batch["actions"], batch[reward_key]]
    if use_next_obs:
        parts.append(batch["next_obs"])
    return np.concatenate(parts, axis=-1).astype(np.float32)


class ReplayBuffer:
    """Fixed-capacity ring buffer of transitions for one task."""

    def __init__(self, obs_dim: int, action_dim: int, capacity: int):
        if capacity <= 0:
            raise ValueError(f"buffer capacity must be positive, got {capacity}")
        self.capacity = capacity
        dims = {"obs": obs_dim, "actions": action_dim, "rewards": 1, "sparse_rewards": 1,
                "next_obs": obs_dim, "dones": 1}
        self.data = {k: np.zeros((capacity, d), dtype=np.float32) for k, d in dims.items()}
        self.ptr = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add_path(self, path: dict) -> None:
        n = path_length(path)
        idx = (self.ptr + np.arange(n)) % self.capacity
        for key in FIELDS:
            self.data[key][idx] = np.asarray(path[key], dtype=np.float32).reshape(n, -1)
        self.ptr = int((self.ptr + n) % self.capacity)
        self.size = int(min(self.size + n, self.capacity))

    def clear(self) -> None:
        self.ptr = 0
        self.size = 0

    def sample(self, n: int, rng: np.random.Generator) -> dict:
        """n transitions drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=n)
        return {k: v[idx] for k, v in self.data.items()}

    def all(self) -> dict:
        return {k: v[: self.size].copy() for k, v in self.data.items()}

    def state_dict(self) -> dict:
        return {"data": {k: v[: self.size].copy() for k, v in self.data.items()}, "ptr": self.ptr,
                "size": self.size, "capacity": self.capacity}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"buffer capacity {state['capacity']} in checkpoint != configured {self.capacity}")
        for k, v in state["data"].items():
            self.data[k][: len(v)] = v
        self.ptr, self.size = int(state["ptr"]), int(state["size"])


class MultiTaskReplay:
    """RL and encoder buffers for each training task index."""

    def __init__(self, n_tasks: int, obs_dim: int, action_dim: int, capacity: int):
        self.rl = [ReplayBuffer(obs_dim, action_dim, capacity) for _ in range(n_tasks)]
        self.enc = [ReplayBuffer(obs_dim, action_dim, capacity) for _ in range(n_tasks)]

    def add_path(self, task: int, path: dict, to_encoder: bool = True) -> None:
        self.rl[task].add_path(path)
        if to_encoder:
            self.enc[task].add_path(path)

    def state_dict(self) -> dict:
        return {"rl": [b.state_dict() for b in self.rl], "enc": [b.state_dict() for b in self.enc]}

    def load_state_dict(self, state: dict) -> None:
        for b, s in zip(self.rl, state["rl"], strict=True):
            b.load_state_dict(s)
        for b, s in zip(self.enc, state["enc"], strict=True):
            b.load_state_dict(s)


class DemoBuffer:
    """Demonstration paths of one task; `offer` keeps rollouts that beat the demonstrations (PERIL)."""

    def __init__(self, max_paths: int = 10):
        self.max_paths = max_paths
        self.paths: list[dict] = []

    def __len__(self) -> int:
        return len(self.paths)

    def add(self, path: dict) -> None:
        path_length(path)
        self.paths.append({k: np.asarray(v, dtype=np.float32) if k in FIELDS else v for k, v in path.items()})
        self.paths.sort(key=lambda p: -float(p["return"]))
        del self.paths[self.max_paths:]

    def worst_return(self) -> float:
        return min(float(p["return"]) for p in self.paths) if self.paths else -np.inf

    def offer(self, path: dict) -> bool:
        """Add a successful rollout whose return beats the worst stored demonstration's."""
        if not path.get("success", False) or float(path["return"]) <= self.worst_return():
            return False
        self.add(path)
        return True

    def transitions(self, n_paths: int | None = None) -> dict:
        """All transitions of the best `n_paths` (default all) paths, concatenated."""
        paths = self.paths[:n_paths] if n_paths else self.paths
        if not paths:
            raise ValueError("demonstration buffer is empty")
        return {k: np.concatenate([p[k] for p in paths]) for k in FIELDS}

    def sample(self, n: int, rng: np.random.Generator) -> dict:
        data = self.transitions()
        idx = rng.integers(0, len(data["obs"]), size=n)
        return {k: v[idx] for k, v in data.items()}

    def state_dict(self) -> dict:
        return {"max_paths": self.max_paths, "paths": [dict(p) for p in self.paths]}

    def load_state_dict(self, state: dict) -> None:
        self.max_paths = state["max_paths"]
        self.paths = [dict(p) for p in state["paths"]]


def random_path(n: int, obs_dim: int, action_dim: int, rng: np.random.Generator, ret: float = 0.0,
                success: bool = True) -> dict:
    """A path of random transitions (tests and benchmarks)."""
    return {"obs": rng.normal(size=(n, obs_dim)), "actions": rng.uniform(-1, 1, (n, action_dim)),
            "rewards": rng.normal(size=(n, 1)), "sparse_rewards": rng.integers(0, 2, (n, 1)).astype(float),
            "next_obs": rng.normal(size=(n, obs_dim)), "dones": np.zeros((n, 1)), "success": success, "return": ret}
