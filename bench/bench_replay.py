"""MELD replay: extra resident memory while the replay buffers are checkpointed inline, and the time a
checkpoint takes with the trials as files written once against writing them all inline.

Each task keeps whole trials (82 frames of the 64x128 stacked image, ~2 MB a trial), so a 100-task run's
buffers hold several GB. The checkpoint writes them as tensors that share the buffers' memory; the
baseline, measured in the same process, is what the trainer did before: an oldest-first copy of each
buffer as numpy arrays, which torch.save pickles through an in-memory copy. Peak resident memory is read
from /proc/self/status (VmHWM, reset through /proc/self/clear_refs), Linux only.

Since the trials live in files beside the checkpoint (`belief.meld.replay_files`), a checkpoint writes
only the trials collected since the last one; the timing adds `--new` trials (a checkpoint interval's,
`checkpoint_every: 10` at one trial an iteration) to the filled buffers and times that save (files, index
checkpoint, prune) against the same buffers written inline, both fsynced, in the same process.
`python -m bench replay`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from belief.checkpoint import atomic_save
from belief.meld.buffers import TaskBuffers, Trial
from belief.meld.replay_files import TrialFiles

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


def _random_trial(rng) -> Trial:
    return Trial(rng.integers(0, 255, (SEQ_LEN, *IMAGE), dtype=np.uint8), np.zeros((SEQ_LEN, ACTION_DIM), np.float32),
                 np.zeros(SEQ_LEN, np.float32), np.zeros(SEQ_LEN, np.float32), np.zeros(2, bool))


def _filled(tasks: int, capacity: int, rng) -> TaskBuffers:
    bufs = TaskBuffers(capacity, SEQ_LEN, IMAGE, ACTION_DIM)
    for t in range(tasks):
        for _ in range(capacity + capacity // 3):  # wrapped rings, as in a long run
            bufs.add(f"task{t}", _random_trial(rng))
    return bufs


def _seconds(fn) -> float:
    """Wall time of fn, from a clean page cache (the writeback of earlier saves would land in its fsyncs)."""
    os.sync()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.bench_replay", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=4, help="tasks in the replay buffers (default 4)")
    p.add_argument("--capacity", type=int, default=30, help="trials per task (default 30, as the configs)")
    p.add_argument("--new", type=int, default=10, help="trials collected since the last checkpoint (default 10)")
    args = p.parse_args(argv or [])  # `python -m bench replay` calls main() under the runner's argv
    if args.tasks < 1 or args.capacity < 1 or args.new < 1:
        p.error(f"--tasks, --capacity and --new must be >= 1, got {args.tasks}, {args.capacity} and {args.new}")
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
        files = TrialFiles(Path(tmp) / "replay")
        files.prune(files.save(bufs))  # a run's first checkpoint writes every trial once
        rng = np.random.default_rng(1)
        for i in range(args.new):
            bufs.add(f"task{i % args.tasks}", _random_trial(rng))
        for buf in bufs.buffers.values():  # both ways rotate the rings oldest-first first: not timed
            buf.rotate_to_age_order()

        def checkpoint_with_files() -> None:
            index = files.save(bufs)
            atomic_save({"replay": index}, path)
            files.prune(index)

        with_files = _seconds(checkpoint_with_files)
        inline = _seconds(lambda: atomic_save({"buffers": bufs.state_dict()}, path))
    print(f"replay buffers: {args.tasks} tasks x {args.capacity} trials = {size_mib:.0f} MiB")
    print(f"  extra peak while checkpointing: tensors sharing the buffers {ours:.0f} MiB "
          f"({ours / size_mib:.2f}x the buffers), numpy copies {base:.0f} MiB ({base / size_mib:.2f}x); "
          f"ratio {base / max(ours, 1.0):.1f}x less")
    print(f"  checkpoint after {args.new} new trials: trial files written once {with_files:.2f} s, every trial "
          f"inline {inline:.2f} s; ratio {inline / max(with_files, 1e-6):.1f}x faster")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
