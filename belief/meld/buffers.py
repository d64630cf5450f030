"""Per-task replay buffers of whole trials (sequences), as MELD trains its model and critic on trials.

A trial of E episodes of H steps is stored as T = E * (H + 1) frames: frame e*(H+1)+k is observation k
of episode e. ``actions[t]`` is the action taken at frame t (zero on the last frame of each episode,
which is the "reset" the next frame's prev_action sees); ``reward_*[t]`` is the reward that arrived
with frame t (zero on each episode's first frame, masked out of the reward likelihood); ``labels[t]``
is a teacher's action for frame t (NaN where none labelled it: a teacher's actions are cloned, never
executed or filtered; see `belief.meld.trials.run_trial`). ``handed`` (one per trial) says the collecting
actor was handed the trial's true port (TrainConfig.true_port_share). Each stored trial carries a serial
number, unique within its TaskBuffers, that names it on disk (`belief.meld.replay_files`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

FIELDS = ("images", "actions", "reward_dense", "reward_sparse", "labels", "handed")


@dataclass
class Trial:
    images: np.ndarray  # (T, H, W, 3) uint8
    actions: np.ndarray  # (T, A) float32
    reward_dense: np.ndarray  # (T,) float32
    reward_sparse: np.ndarray  # (T,) float32
    success: np.ndarray  # (E,) bool: success in each episode
    task_id: str = ""
    labels: np.ndarray | None = None  # (T, A) float32, a teacher's action per frame, NaN = none; None = no teacher
    handed: bool = False  # the collecting actor was handed the true port (not the task head's guess)

    def __post_init__(self):
        T = len(self.images)
        if self.labels is None:
            self.labels = np.full(np.shape(self.actions), np.nan, np.float32)
        for name in ("actions", "reward_dense", "reward_sparse", "labels"):
            if len(getattr(self, name)) != T:
                raise ValueError(f"Trial.{name} has {len(getattr(self, name))} frames, images have {T}")
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"Trial.images must be uint8 (T,H,W,3), got {self.images.dtype} {self.images.shape}")


class SequenceBuffer:
    """Ring buffer of fixed-length trials for one task."""

    def __init__(self, capacity: int, seq_len: int, image_shape: tuple[int, ...], action_dim: int):
        if capacity <= 0:
            raise ValueError(f"SequenceBuffer capacity must be positive, got {capacity}")
        self.capacity, self.seq_len = capacity, seq_len
        self.images = np.zeros((capacity, seq_len, *image_shape), np.uint8)
        self.actions = np.zeros((capacity, seq_len, action_dim), np.float32)
        self.reward_dense = np.zeros((capacity, seq_len), np.float32)
        self.reward_sparse = np.zeros((capacity, seq_len), np.float32)
        self.labels = np.full((capacity, seq_len, action_dim), np.nan, np.float32)
        self.handed = np.zeros(capacity, np.bool_)
        self.serials = np.full(capacity, -1, np.int64)  # which trial each slot holds (-1: none)
        self.size = 0
        self.next = 0

    def add(self, trial: Trial, serial: int = -1) -> None:
        if trial.images.shape != self.images.shape[1:]:
            raise ValueError(f"trial images {trial.images.shape} do not fit buffer {self.images.shape[1:]}")
        i = self.next
        self.images[i] = trial.images
        self.actions[i] = trial.actions
        self.reward_dense[i] = trial.reward_dense
        self.reward_sparse[i] = trial.reward_sparse
        self.labels[i] = trial.labels
        self.handed[i] = trial.handed
        self.serials[i] = serial
        self.next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def get(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {k: getattr(self, k)[idx] for k in FIELDS}

    def stored(self) -> dict[str, np.ndarray]:
        """The stored trials as views (no copy), in slot order, not age order."""
        return self.get(slice(0, self.size))

    def age_order(self) -> np.ndarray:
        """Slots of the stored trials, oldest first."""
        n = self.size
        return (np.arange(n) + (self.next if n == self.capacity else 0)) % self.capacity

    def recent(self, n: int) -> dict[str, np.ndarray]:
        """The `n` most recent trials (all if fewer), oldest first (a copy)."""
        return self.get(self.age_order()[-n:])

    def rotate_to_age_order(self) -> None:
        """Move the oldest trial to slot 0 in place (row swaps, no copy of the buffer)."""
        if self.size < self.capacity or self.next == 0:
            return  # slots already hold the trials oldest first
        for k in (*FIELDS, "serials"):
            arr = getattr(self, k)
            for lo, hi in ((0, self.next), (self.next, self.capacity), (0, self.capacity)):
                _reverse_rows(arr, lo, hi)
        self.next = 0

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The stored trials and their serials, oldest first, as tensors sharing this buffer's memory.

        Tensors because torch.save writes them straight from memory, while numpy arrays are pickled
        through in-memory copies (7.5x the buffers at their peak: `python -m bench replay`)."""
        self.rotate_to_age_order()
        return {k: torch.from_numpy(v) for k, v in {**self.stored(), "serials": self.serials[:self.size]}.items()}

    def load_state_dict(self, data: dict, adopt: bool = False, first_serial: int = 0) -> None:
        """Restore from `state_dict` (tensors or arrays, oldest first; the newest `capacity` are kept).

        adopt: a full buffer takes over the given memory instead of copying it (a resumed run would
        otherwise hold its replay data twice); only for data nothing else uses, e.g. a loaded checkpoint.
        Checkpoints from before teacher labels hold none: their trials load unlabelled (NaN); those from
        before handed trials load unhanded; those without serials are numbered from first_serial on."""
        actions = np.asarray(data["actions"])
        if "labels" not in data:
            data = {**data, "labels": np.full(actions.shape, np.nan, np.float32)}
        if "handed" not in data:
            data = {**data, "handed": np.zeros(len(actions), np.bool_)}
        if "serials" not in data:
            data = {**data, "serials": np.arange(first_serial, first_serial + len(actions))}
        rows = {k: np.asarray(data[k])[-self.capacity:] for k in (*FIELDS, "serials")}
        n = len(rows["images"])
        for k in (*FIELDS, "serials"):
            want = getattr(self, k)
            if rows[k].shape[1:] != want.shape[1:] or len(rows[k]) != n:
                raise ValueError(f"replay state: {k} has shape {rows[k].shape}, this buffer holds "
                                 f"{n} x {want.shape[1:]}")
        if adopt and n == self.capacity:
            for k in (*FIELDS, "serials"):
                setattr(self, k, np.ascontiguousarray(rows[k], getattr(self, k).dtype))
        else:
            for k in (*FIELDS, "serials"):
                getattr(self, k)[:n] = rows[k]
        self.size, self.next = n, n % self.capacity


def _reverse_rows(arr: np.ndarray, lo: int, hi: int) -> None:
    """Reverse arr[lo:hi] along the first axis in place, one row at a time."""
    i, j = lo, hi - 1
    while i < j:
        row = arr[i].copy()
        arr[i] = arr[j]
        arr[j] = row
        i, j = i + 1, j - 1


def stored_trials(state: dict) -> dict[str, dict[str, np.ndarray]]:
    """A checkpoint's `buffers` entry as numpy arrays per task (views of the loaded tensors, no copy)."""
    return {tid: {k: np.asarray(v) for k, v in d.items()} for tid, d in state.items()}


class TaskBuffers:
    """One SequenceBuffer per task id; batches draw tasks uniformly, then trials within the task.

    A batch also names each trial's task (`task_id`, strings)."""

    def __init__(self, capacity_per_task: int, seq_len: int, image_shape: tuple[int, ...], action_dim: int):
        self.args = (capacity_per_task, seq_len, tuple(image_shape), action_dim)
        self.buffers: dict[str, SequenceBuffer] = {}
        self.next_serial = 0  # the serial the next added trial gets

    def add(self, task_id: str, trial: Trial) -> None:
        if task_id not in self.buffers:
            self.buffers[task_id] = SequenceBuffer(*self.args)
        self.buffers[task_id].add(trial, self.next_serial)
        self.next_serial += 1

    @property
    def num_trials(self) -> int:
        return sum(b.size for b in self.buffers.values())

    def sample(self, batch: int, rng: np.random.Generator, tasks: list[str] | None = None) -> dict[str, np.ndarray]:
        ids = [t for t in (tasks or list(self.buffers)) if t in self.buffers and self.buffers[t].size]
        if not ids:
            raise ValueError("cannot sample: the replay buffers hold no trials")
        chosen = rng.choice(len(ids), size=batch)
        parts = []
        for k in range(len(ids)):
            n = int((chosen == k).sum())
            if n:
                buf = self.buffers[ids[k]]
                parts.append({**buf.get(rng.integers(0, buf.size, size=n)), "task_id": np.array([ids[k]] * n)})
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def stored(self) -> dict[str, dict[str, np.ndarray]]:
        """Every task's stored trials as views (no copy of the images, unlike state_dict)."""
        return {tid: b.stored() for tid, b in self.buffers.items()}

    def recent(self, n: int) -> dict[str, dict[str, np.ndarray]]:
        """Every task's `n` most recent trials; n <= 0 means all of them (as `stored`, views)."""
        return dict(self.recent_each(n))

    def recent_each(self, n: int) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        """(task id, its `n` most recent trials) one task at a time, so a caller holds one task's copy."""
        for tid, b in self.buffers.items():
            yield tid, (b.stored() if n <= 0 else b.recent(n))

    def state_dict(self) -> dict:
        return {tid: b.state_dict() for tid, b in self.buffers.items()}

    def load_state_dict(self, data: dict, adopt: bool = False) -> None:
        """Restore every task's buffer (`SequenceBuffer.load_state_dict`; adopt: take over the memory).
        Trials added later get serials after every loaded one."""
        self.buffers, self.next_serial = {}, 0
        for tid, d in data.items():
            self.buffers[tid] = buf = SequenceBuffer(*self.args)
            buf.load_state_dict(d, adopt, first_serial=self.next_serial)
            self.next_serial = max(self.next_serial, int(buf.serials[:buf.size].max(initial=-1)) + 1)
