"""Trial journal: the durable record of a run of trials, resumable after a crash (no ROS here).

The journal is one JSON file rewritten atomically (temp file + fsync + os.replace) after every
episode, so a kill at any moment leaves either the previous or the new version, never a torn one.
A trial interrupted mid-way cannot be continued (the policy's belief died with the run), so on resume
its finished episodes are kept under ``interrupted_attempts`` and the trial is run again from its
first episode; complete trials are never re-run.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMAT = "meldbot-trial-journal/1"


@dataclass
class EpisodeRecord:
    episode: int  # 1-based index within the trial
    success: bool
    steps: int
    first_success_step: int | None = None
    sparse_return: float = 0.0
    shaped_return: float | None = None
    started_at: float = 0.0
    finished_at: float = 0.0


@dataclass
class TrialRecord:
    task_id: str
    episodes: list[EpisodeRecord] = field(default_factory=list)
    complete: bool = False
    interrupted_attempts: list[list[EpisodeRecord]] = field(default_factory=list)


@dataclass
class TrialPlan:
    tasks: list[str]
    episodes_per_trial: int
    episode_steps: int

    def __post_init__(self):
        if not self.tasks:
            raise ValueError("trial plan has no tasks")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"trial plan lists a task twice: {self.tasks}")
        if self.episodes_per_trial < 1 or self.episode_steps < 1:
            raise ValueError(f"episodes_per_trial ({self.episodes_per_trial}) and episode_steps "
                             f"({self.episode_steps}) must be >= 1")


class TrialJournal:
    """Load-or-create a journal for `plan` at `path`; record episodes; report what is left to do."""

    def __init__(self, path: str | os.PathLike, plan: TrialPlan, policy: str = ""):
        self.path = Path(path)
        self.plan = plan
        self.policy = policy
        self.trials: dict[str, TrialRecord] = {t: TrialRecord(t) for t in plan.tasks}
        self.resumed = False
        if self.path.exists():
            self._load()
            self.resumed = True

    # --- persistence ---------------------------------------------------------------------------
    def _load(self):
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"trial journal {self.path} is unreadable ({exc}); move it away to start afresh") from exc
        if data.get("format") != FORMAT:
            raise ValueError(f"trial journal {self.path} has format {data.get('format')!r}, expected {FORMAT!r}")
        saved = TrialPlan(**data["plan"])
        if saved != self.plan:
            raise ValueError(f"trial journal {self.path} was written for a different plan {asdict(saved)}; "
                             f"this run asks for {asdict(self.plan)}. Use another journal path to start afresh.")
        for task_id, rec in data["trials"].items():
            episodes = [EpisodeRecord(**e) for e in rec["episodes"]]
            attempts = [[EpisodeRecord(**e) for e in a] for a in rec.get("interrupted_attempts", [])]
            trial = TrialRecord(task_id, episodes, rec["complete"], attempts)
            if not trial.complete and trial.episodes:
                trial.interrupted_attempts.append(trial.episodes)
                trial.episodes = []
            self.trials[task_id] = trial

    def save(self):
        data = {"format": FORMAT, "plan": asdict(self.plan), "policy": self.policy, "saved_at": time.time(),
                "trials": {k: asdict(v) for k, v in self.trials.items()}}
        write_json_atomic(self.path, data)

    # --- progress ------------------------------------------------------------------------------
    def pending_tasks(self) -> list[str]:
        return [t for t in self.plan.tasks if not self.trials[t].complete]

    def start_trial(self, task_id: str):
        trial = self.trials[task_id]
        if trial.episodes:  # a restart inside one run: keep what was done as an interrupted attempt
            trial.interrupted_attempts.append(trial.episodes)
            trial.episodes = []

    def record_episode(self, task_id: str, record: EpisodeRecord):
        trial = self.trials[task_id]
        trial.episodes.append(record)
        trial.complete = len(trial.episodes) >= self.plan.episodes_per_trial
        self.save()

    # --- reporting -----------------------------------------------------------------------------
    def success_rates(self) -> list[float | None]:
        """Success rate per episode index over complete trials (None if no trial is complete)."""
        done = [t for t in self.trials.values() if t.complete]
        if not done:
            return [None] * self.plan.episodes_per_trial
        return [sum(t.episodes[i].success for t in done) / len(done) for i in range(self.plan.episodes_per_trial)]

    def summary_table(self) -> str:
        """A plain-text table: one row per task, one column per episode, success rates at the bottom."""
        k = self.plan.episodes_per_trial
        width = max(8, *(len(t) for t in self.plan.tasks))
        header = f"{'task':<{width}} | " + " | ".join(f"ep{i + 1:<3}" for i in range(k)) + " | first success"
        lines = [header, "-" * len(header)]
        for task_id in self.plan.tasks:
            trial = self.trials[task_id]
            cells = []
            for i in range(k):
                cells.append(("yes " if trial.episodes[i].success else "no  ") if i < len(trial.episodes) else "--  ")
            first = next((e.episode for e in trial.episodes if e.success), None)
            note = f"ep{first}" if first else "-"
            if trial.interrupted_attempts:
                note += f" ({len(trial.interrupted_attempts)} interrupted attempt(s) kept)"
            lines.append(f"{task_id:<{width}} | " + " | ".join(f"{c:<5}" for c in cells) + f" | {note}")
        lines.append("-" * len(header))
        rates = self.success_rates()
        lines.append(f"{'success':<{width}} | " + " | ".join(
            f"{'n/a' if r is None else f'{100 * r:.0f}%':<5}" for r in rates))
        return "\n".join(lines)


def write_json_atomic(path: Path, data) -> None:
    """Write JSON so that readers see the old or the new file, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
