"""Fast DDS shared-memory files that killed processes left behind (what `fastdds shm clean` removes).

A Fast DDS participant keeps a segment in /dev/shm, and one per port it listens on, each with a lock
file it holds with flock while alive. A process killed with SIGKILL cannot remove them: the files pile
up over many test runs, and Fast DDS's maintainers name such stale ports as a cause of later
participants hanging. A lock nobody holds marks a zombie; a held lock is a live process's, left alone.
"""

from __future__ import annotations

import fcntl
import re
from pathlib import Path

SHM_DIR = Path("/dev/shm")
_SEGMENT_LOCK = re.compile(r"^fastdds_[0-9a-z]{16}_(el|sl)$")
_PORT_LOCK = re.compile(r"^fastdds_port\d{1,5}_(el|sl)$")


def _held(lock: Path) -> bool:
    try:
        with open(lock, "rb") as fh:  # never creates: a lock gone since the listing counts as held
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released again when fh closes
    except OSError:
        return True
    return False


def zombie_files(shm_dir: Path = SHM_DIR) -> list[Path]:
    """Segment, lock and port-mutex files whose owner is gone."""
    found = []
    for lock in sorted(Path(shm_dir).glob("fastdds_*")):
        port = _PORT_LOCK.match(lock.name)
        if not (port or _SEGMENT_LOCK.match(lock.name)) or _held(lock):
            continue
        base = lock.name[:-3]
        found += [lock, lock.with_name(base)] + ([lock.with_name(f"sem.{base}_mutex")] if port else [])
    return [f for f in found if f.exists()]


def clean_zombies(shm_dir: Path = SHM_DIR) -> list[Path]:
    """Remove `zombie_files`; returns what was removed."""
    removed = []
    for path in zombie_files(shm_dir):
        try:
            path.unlink()
        except FileNotFoundError:  # another cleaner got there first
            continue
        removed.append(path)
    return removed
