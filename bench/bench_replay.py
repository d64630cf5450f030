"""MELD replay memory: extra resident memory while a checkpoint of the replay buffers is written.

Each task keeps whole trials (82 frames of the 64x128 stacked image, ~2 MB a trial), so a 100-task run's
buffers hold several GB. The checkpoint writes them as tensors that share the buffers' memory; the
baseline, measured in the same process, is what the trainer did before: an oldest-first copy of each
buffer as numpy arrays, which torch.save pickles through an in-memory copy. Peak resident memory is read
from /proc/self/status (VmHWM, reset through /proc/self/clear_refs), Linux only. `python -m bench replay`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from belief.checkpoint import atomic_save
from belief.meld.buffers import TaskBuffers, Trial

SEQ_LEN, IMAGE, ACTION_DIM = 82, (64, 128, 3), 5


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _extra_peak_mib(fn) -> float:
    """Peak resident memory above the current level while fn runs, in MiB."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
    before = _status_kib("VmRSS")
    fn()
    return (_status_kib("VmHWM") - before) / 1024


def _filled(tasks: int, capacity: int, rng) -> TaskBuffers:
    bufs = TaskBuffers(capacity, SEQ_LEN, IMAGE, ACTION_DIM)
    for t in range(tasks):
        for _ in range(capacity + capacity // 3):  # wrapped rings, as in a long run
            bufs.add(f"task{t}", Trial(rng.integers(0, 255, (SEQ_LEN, *IMAGE), dtype=np.uint8),
                                       np.zeros((SEQ_LEN, ACTION_DIM), np.float32), np.zeros(SEQ_LEN, np.float32),
                                       np.zeros(SEQ_LEN, np.float32), np.zeros(2, bool)))
    return bufs


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.bench_replay", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=4, help="tasks in the replay buffers (default 4)")
    p.add_argument("--capacity", type=int, default=30, help="trials per task (default 30, as the configs)")
    args = p.parse_args(argv or [])  # `python -m bench replay` calls main() under the runner's argv
    if args.tasks < 1 or args.capacity < 1:
        p.error(f"--tasks and --capacity must be >= 1, got {args.tasks} and {args.capacity}")
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError as exc:  # not Linux, or /proc read-only in a container
        print(f"replay memory: needs a writable /proc/self/clear_refs to reset the peak ({exc}); skipped")
        return
    bufs = _filled(args.tasks, args.capacity, np.random.default_rng(0))
    size_mib = sum(b.images.nbytes + b.actions.nbytes + 2 * b.reward_dense.nbytes
                   for b in bufs.buffers.values()) / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint.pt"

        def copied_arrays() -> dict:  # the baseline: oldest-first numpy copies
            return {tid: {k: np.asarray(v).copy() for k, v in b.state_dict().items()}
                    for tid, b in bufs.buffers.items()}

        ours = _extra_peak_mib(lambda: atomic_save({"buffers": bufs.state_dict()}, path))
        base = _extra_peak_mib(lambda: atomic_save({"buffers": copied_arrays()}, path))
    print(f"replay buffers: {args.tasks} tasks x {args.capacity} trials = {size_mib:.0f} MiB")
    print(f"  extra peak while checkpointing: tensors sharing the buffers {ours:.0f} MiB "
          f"({ours / size_mib:.2f}x the buffers), numpy copies {base:.0f} MiB ({base / size_mib:.2f}x); "
          f"ratio {base / max(ours, 1.0):.1f}x less")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
