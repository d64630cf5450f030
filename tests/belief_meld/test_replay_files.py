"""Replay trials as one file each beside the checkpoint: written once, named by the checkpoint, pruned."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from belief.checkpoint import atomic_save
from belief.checkpoint import load as load_raw
from belief.meld.buffers import TaskBuffers
from belief.meld.checkpoints import load_meld_checkpoint
from belief.meld.replay_files import TrialFiles, read_trials
from belief.meld.train import Trainer
from tests.belief_meld.fake_env import FakeImageEnv
from tests.belief_meld.test_buffers import _trial
from tests.belief_meld.test_train import _cfg, _run


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_each_trial_is_written_once_and_dropped_ones_are_pruned(tmp_path, monkeypatch):
    bufs = TaskBuffers(2, 6, (4, 8, 3), 2)
    files = TrialFiles(tmp_path / "replay")
    written = []
    import belief.meld.replay_files as module

    real = module.atomic_save_arrays
    monkeypatch.setattr(module, "atomic_save_arrays", lambda arrays, path: written.append(path.name) or real(arrays, path))
    bufs.add("a", _trial(0))
    bufs.add("b", _trial(1))
    index = files.save(bufs)
    assert index == {"folder": "replay", "tasks": {"a": [0], "b": [1]}} and written == ["0.npz", "1.npz"]
    bufs.add("a", _trial(2))
    bufs.add("a", _trial(3))  # task a's ring (capacity 2) drops trial 0
    index = files.save(bufs)
    assert index["tasks"] == {"a": [2, 3], "b": [1]} and written == ["0.npz", "1.npz", "2.npz", "3.npz"]
    (tmp_path / "replay" / ".9.npz.x.part").write_bytes(b"half")  # a crash mid-write
    files.prune(index)
    assert _files(tmp_path / "replay") == ["1.npz", "2.npz", "3.npz"]
    trials = read_trials(tmp_path, index)
    assert trials["a"]["reward_dense"][:, 0].tolist() == [2, 3] and trials["a"]["serials"].tolist() == [2, 3]
    assert np.array_equal(trials["b"]["images"][0], _trial(1).images)
    again = TaskBuffers(2, 6, (4, 8, 3), 2)
    again.load_state_dict(trials)
    again.add("b", _trial(4))  # numbered after every loaded trial
    assert again.buffers["b"].serials[:2].tolist() == [1, 4]


def test_the_checkpoint_names_its_trials_and_resumes_from_them(tmp_path, monkeypatch):
    _run(_cfg(iterations=4), tmp_path)
    raw = load_raw(tmp_path / "checkpoint.pt")
    assert "buffers" not in raw and set(raw["replay"]) == {"buffers", "search_buffers"}
    index = raw["replay"]["buffers"]
    named = sorted(f"{s}.npz" for serials in index["tasks"].values() for s in serials)
    assert _files(tmp_path / "replay") == sorted(named) and len(named) == 2 + 4  # 2 random trials, 4 iterations'; none dropped
    state = load_meld_checkpoint(tmp_path / "checkpoint.pt")
    assert sum(len(d["images"]) for d in state["buffers"].values()) == 6
    assert "buffers" not in load_meld_checkpoint(tmp_path / "checkpoint.pt", replay=False)
    # a trial written after the checkpoint, before a crash: not named, so the resumed run writes over it
    stale = tmp_path / "replay" / f"{max(s for v in index['tasks'].values() for s in v) + 1}.npz"
    stale.write_bytes(b"not a trial")
    import belief.meld.replay_files as module

    written, real = [], module.atomic_save_arrays
    monkeypatch.setattr(module, "atomic_save_arrays", lambda arrays, path: written.append(path.name) or real(arrays, path))
    _run(_cfg(iterations=6), tmp_path, resume=True)
    assert sorted(written) == sorted({stale.name, f"{int(stale.stem) + 1}.npz"})  # the resumed run's 2 trials only
    after = load_meld_checkpoint(tmp_path / "checkpoint.pt")
    assert sum(len(d["images"]) for d in after["buffers"].values()) == 8
    (tmp_path / "replay" / stale.name).unlink()
    with pytest.raises(FileNotFoundError, match=f"replay trial .*{stale.name} is missing .*move or copy the run"):
        load_meld_checkpoint(tmp_path / "checkpoint.pt")


def test_older_checkpoints_with_inline_trials_still_resume_and_warm_start(tmp_path):
    _run(_cfg(iterations=2), tmp_path / "old")
    state = load_meld_checkpoint(tmp_path / "old" / "checkpoint.pt")
    del state["replay"]  # as checkpoints were written before trial files: the trials inline, no serials
    state["buffers"] = {tid: {k: torch.from_numpy(v) for k, v in d.items() if k != "serials"}
                        for tid, d in state["buffers"].items()}
    atomic_save(state, tmp_path / "old" / "checkpoint.pt")
    for name in list((tmp_path / "old" / "replay").iterdir()):
        name.unlink()
    env = FakeImageEnv(episode_steps=3)
    warm = Trainer(_cfg(iterations=3, warm_start=str(tmp_path / "old")), tmp_path / "warm", env, env.tasks)
    warm.run()
    assert warm.buffers.num_trials == 4 + 3  # 2 random trials and 2 iterations' from the old run, 3 here
    assert len(_files(tmp_path / "warm" / "replay")) == 7  # the warm start's trials are this run's files now
    _run(_cfg(iterations=3), tmp_path / "old", resume=True)
    assert len(_files(tmp_path / "old" / "replay")) == 4 + 1


def test_a_trial_file_of_another_task_or_a_damaged_one_is_refused_by_name(tmp_path):
    bufs = TaskBuffers(2, 6, (4, 8, 3), 2)
    bufs.add("a", _trial(0))
    bufs.add("b", _trial(1))
    index = TrialFiles(tmp_path / "replay").save(bufs)
    index["tasks"] = {"a": [1]}
    with pytest.raises(ValueError, match=r"1.npz: holds a trial of task 'b', the checkpoint .* names it for 'a'"):
        read_trials(tmp_path, index, "ckpt.pt")
    (tmp_path / "replay" / "0.npz").write_bytes(b"not a trial")  # damaged on disk
    with pytest.raises(ValueError, match=r"0.npz: not a readable replay trial"):
        read_trials(tmp_path, {"folder": "replay", "tasks": {"a": [0]}}, "ckpt.pt")

