"""Atomic save/load of training state (torch pickles: arrays, tensors, optimiser and RNG states)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike, mode: str = "wb", sync: bool = True):
    """A temp file in the path's directory, fsynced and renamed over it on success: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """torch.save to a temp file in the same directory, fsync, then os.replace: never half-written."""
    with _atomic_file(path) as fh:
        torch.save(obj, fh)
    return Path(path)


def atomic_save_arrays(arrays: dict, path: str | os.PathLike) -> Path:
    """numpy arrays as an uncompressed .npz (no pickles), written atomically like atomic_save."""
    with _atomic_file(path) as fh:
        np.savez(fh, **arrays)
    return Path(path)


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    with _atomic_file(path, "w", sync=False) as fh:
        fh.write(text)
    return Path(path)


def load(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated or foreign file
        raise ValueError(f"{path}: not a readable meldbot checkpoint: {exc}") from exc


def atomic_save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """tight_layout, save a matplotlib figure atomically (temp file + rename), close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part{path.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    return path
