"""Per-task sequence replay buffers of whole trials."""

from __future__ import annotations

import numpy as np
import pytest

from belief.meld.buffers import SequenceBuffer, TaskBuffers, Trial


def _trial(value: int, T=6, A=2) -> Trial:
    return Trial(np.full((T, 4, 8, 3), value, np.uint8), np.full((T, A), value, np.float32),
                 np.full(T, value, np.float32), np.zeros(T, np.float32), np.array([False, True]))


def test_ring_buffer_keeps_the_newest_trials_in_order():
    buf = SequenceBuffer(3, 6, (4, 8, 3), 2)
    for v in range(5):
        buf.add(_trial(v))
    assert buf.size == 3
    state = buf.state_dict()
    assert state["reward_dense"][:, 0].tolist() == [2, 3, 4]  # oldest first
    copy = SequenceBuffer(3, 6, (4, 8, 3), 2)
    copy.load_state_dict(state)
    assert np.array_equal(copy.state_dict()["images"], state["images"])
    assert not np.shares_memory(copy.images, buf.images)  # copied unless told to adopt


def test_a_checkpoint_shares_the_buffers_memory_and_resumes_the_ring(tmp_path):
    from belief.checkpoint import atomic_save, load

    buf = SequenceBuffer(3, 6, (4, 8, 3), 2)
    for v in range(5):  # wrapped: slots hold 3, 4, 2
        buf.add(_trial(v))
    state = buf.state_dict()
    assert np.shares_memory(state["images"].numpy(), buf.images)  # torch.save writes it without a copy
    assert buf.state_dict()["reward_dense"][:, 0].tolist() == [2, 3, 4]  # still oldest first after rotating
    buf.add(_trial(5))  # the rotation kept the ring: the oldest (2) is the one overwritten
    assert buf.state_dict()["reward_dense"][:, 0].tolist() == [3, 4, 5]
    atomic_save({"buffer": buf.state_dict()}, tmp_path / "ckpt.pt")
    resumed = SequenceBuffer(3, 6, (4, 8, 3), 2)
    loaded = load(tmp_path / "ckpt.pt")["buffer"]
    resumed.load_state_dict(loaded, adopt=True)
    assert np.shares_memory(resumed.images, loaded["images"].numpy())  # taken over, not copied
    resumed.add(_trial(6))
    assert resumed.state_dict()["reward_dense"][:, 0].tolist() == [4, 5, 6]
    assert resumed.state_dict()["images"][:, 0, 0, 0, 0].tolist() == [4, 5, 6]
    partial = SequenceBuffer(4, 6, (4, 8, 3), 2)  # a larger capacity: copied in, then filled on
    partial.load_state_dict(load(tmp_path / "ckpt.pt")["buffer"])
    partial.add(_trial(7))
    partial.add(_trial(8))
    assert partial.state_dict()["reward_dense"][:, 0].tolist() == [4, 5, 7, 8]
    smaller = SequenceBuffer(2, 6, (4, 8, 3), 2)  # a smaller one keeps the newest
    smaller.load_state_dict(load(tmp_path / "ckpt.pt")["buffer"])
    assert smaller.state_dict()["reward_dense"][:, 0].tolist() == [4, 5]


def test_stored_trials_are_views_of_the_filled_slots():
    bufs = TaskBuffers(3, 6, (4, 8, 3), 2)
    for v in range(4):
        bufs.add("a", _trial(v))
    bufs.add("b", _trial(9))
    stored = bufs.stored()
    assert sorted(stored["a"]["reward_dense"][:, 0].tolist()) == [1, 2, 3] and len(stored["b"]["images"]) == 1
    assert np.shares_memory(stored["a"]["images"], bufs.buffers["a"].images)  # no copy of the images


def test_recent_trials_are_the_newest_per_task_oldest_first():
    bufs = TaskBuffers(3, 6, (4, 8, 3), 2)
    for v in range(5):  # the ring wrapped: slots hold 3, 4, 2
        bufs.add("a", _trial(v))
    bufs.add("b", _trial(9))
    recent = bufs.recent(2)
    assert recent["a"]["reward_dense"][:, 0].tolist() == [3, 4]
    assert recent["b"]["reward_dense"][:, 0].tolist() == [9]  # fewer stored than asked: all of them
    assert bufs.recent(0)["a"]["reward_dense"][:, 0].tolist() == [3, 4, 2]  # 0 = every stored trial (views)


def test_whole_sequences_are_sampled_per_task():
    bufs = TaskBuffers(10, 6, (4, 8, 3), 2)
    for v in range(3):
        bufs.add("a", _trial(v))
    bufs.add("b", _trial(100))
    rng = np.random.default_rng(0)
    batch = bufs.sample(50, rng)
    assert batch["images"].shape == (50, 6, 4, 8, 3) and batch["actions"].shape == (50, 6, 2)
    # frames of one sampled trial belong together (no mixing across trials)
    assert all(len(np.unique(seq)) == 1 for seq in batch["reward_dense"])
    from_b = (batch["reward_dense"][:, 0] == 100).mean()
    assert 0.3 < from_b < 0.7  # tasks drawn uniformly, not trials
    only_a = bufs.sample(20, rng, tasks=["a"])
    assert (only_a["reward_dense"][:, 0] < 100).all()
    assert bufs.num_trials == 4


def test_the_handed_flag_of_each_trial_is_kept_sampled_and_checkpointed():
    """Trial.handed (the actor was handed the true port) rides with its trial through the ring, the
    oldest-first state and a reload; a checkpoint from before the flag loads every trial unhanded."""
    buf = SequenceBuffer(3, 6, (4, 8, 3), 2)
    for v in range(5):
        t = _trial(v)
        t.handed = v % 2 == 1
        buf.add(t)
    state = buf.state_dict()
    assert state["reward_dense"][:, 0].tolist() == [2, 3, 4] and state["handed"].tolist() == [False, True, False]
    copy = SequenceBuffer(3, 6, (4, 8, 3), 2)
    copy.load_state_dict(state)
    got = copy.get(np.arange(3))
    assert (got["reward_dense"][:, 0] % 2 == 1).tolist() == got["handed"].tolist()
    old = {k: v for k, v in state.items() if k != "handed"}
    copy.load_state_dict(old)
    assert not copy.stored()["handed"].any() and copy.size == 3


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="capacity"):
        SequenceBuffer(0, 6, (4, 8, 3), 2)
    with pytest.raises(ValueError, match="actions"):
        Trial(np.zeros((6, 4, 8, 3), np.uint8), np.zeros((5, 2)), np.zeros(6), np.zeros(6), np.zeros(2, bool))
    with pytest.raises(ValueError, match="no trials"):
        TaskBuffers(2, 6, (4, 8, 3), 2).sample(1, np.random.default_rng(0))
    other = SequenceBuffer(2, 6, (4, 8, 3), 2)
    other.add(_trial(1))
    with pytest.raises(ValueError, match="replay state: images has shape"):
        SequenceBuffer(2, 6, (8, 8, 3), 2).load_state_dict(other.state_dict())
