"""A run's replay trials on disk, one file per trial, written once: the checkpoint only names them.

By 80k env steps a MELD run's replay holds ~2 GB of images; pickled into every checkpoint that cost
~13 s a save, 1.3 s an iteration at `checkpoint_every: 10` (docs/meld.md, thirty-fifth session;
`python -m bench replay` times a save both ways). Instead each trial
is written once, atomically, as RUN_DIR/<folder>/<serial>.npz (uncompressed, no pickles) when the first
checkpoint after its collection is saved; the checkpoint keeps an index (the folder, and each task's
serials oldest first), and files no checkpoint names any more (trials the ring buffers dropped, or
written after the last checkpoint before a crash) are removed after each save. A run folder moves as
a whole; evaluation and export read only the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from belief.checkpoint import atomic_save_arrays
from belief.meld.buffers import FIELDS, TaskBuffers

# checkpoint key of a Trainer's TaskBuffers -> its folder in the run directory
REPLAY_FOLDERS = {"buffers": "replay", "search_buffers": "search_replay"}


class TrialFiles:
    """Keeps one TaskBuffers' trials as files in `folder`, writing each trial once."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.written: set[int] = set()  # serials whose file holds that trial

    def save(self, buffers: TaskBuffers) -> dict:
        """Write the trials not on disk yet; return the index a checkpoint keeps:
        {"folder": name, "tasks": {task id: [serials, oldest first]}}."""
        tasks = {}
        for tid, buf in buffers.buffers.items():
            buf.rotate_to_age_order()  # as the inline checkpoints did: sampling after a save stays the same
            serials = [int(s) for s in buf.serials[:buf.size]]
            for slot, serial in enumerate(serials):
                if serial not in self.written:  # (atomic_save_arrays makes the folder)
                    atomic_save_arrays({"task_id": np.array(tid), **{k: getattr(buf, k)[slot] for k in FIELDS}},
                                       self.folder / f"{serial}.npz")
                    self.written.add(serial)
            tasks[tid] = serials
        return {"folder": self.folder.name, "tasks": tasks}

    def adopt(self, index: dict) -> None:
        """After a resume from `index` (saved by this folder's run): its trials are on disk already."""
        self.written = {s for serials in index["tasks"].values() for s in serials}

    def prune(self, index: dict) -> None:
        """Remove the files (and half-written temp files) `index`, the checkpoint just saved, does not name."""
        keep = {s for serials in index["tasks"].values() for s in serials}
        for path in self.folder.iterdir() if self.folder.is_dir() else ():
            stale_trial = path.suffix == ".npz" and path.stem.isdigit() and int(path.stem) not in keep
            if stale_trial or (path.name.startswith(".") and path.name.endswith(".part")):
                path.unlink()
        self.written &= keep


def read_trials(run_dir: str | Path, index: dict, checkpoint: str | Path = "") -> dict[str, dict[str, np.ndarray]]:
    """The trials `index` names, per task, as a checkpoint's inline `buffers` entry held them (oldest first,
    with their serials)."""
    folder = Path(run_dir) / index["folder"]
    out = {}
    for tid, serials in index["tasks"].items():
        rows = [_read_trial(folder / f"{s}.npz", tid, checkpoint) for s in serials]
        out[tid] = {k: np.stack([r[k] for r in rows]) for k in FIELDS}
        out[tid]["serials"] = np.asarray(serials, np.int64)
    return out


def _read_trial(path: Path, task_id: str, checkpoint: str | Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint or path.parent.parent}: its replay trial {path} is missing (a "
                                f"checkpoint's trials live in the {path.parent.name}/ folder beside it: move or "
                                "copy the run folder whole)")
    try:
        with np.load(path) as data:
            stored_task, trial = str(data["task_id"]), {k: data[k] for k in FIELDS}
    except Exception as exc:  # not an .npz, cut short, or a field missing: name the file, not a zip internal
        raise ValueError(f"{path}: not a readable replay trial ({type(exc).__name__}: {exc})") from exc
    if stored_task != task_id:
        raise ValueError(f"{path}: holds a trial of task {stored_task!r}, the checkpoint {checkpoint} names it "
                         f"for {task_id!r}")
    return trial
