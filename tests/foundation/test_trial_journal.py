"""Trial journal: atomic saves, resume semantics, and clear refusals (no ROS)."""

import json

import pytest

from meldbot.trial_journal import EpisodeRecord, TrialJournal, TrialPlan

PLAN = TrialPlan(["t1", "t2"], episodes_per_trial=2, episode_steps=10)


def ep(i, success):
    return EpisodeRecord(episode=i, success=success, steps=10)


def test_completed_trials_survive_and_interrupted_trial_is_rerun_keeping_its_episodes(tmp_path):
    path = tmp_path / "journal.json"
    journal = TrialJournal(path, PLAN)
    journal.start_trial("t1")
    journal.record_episode("t1", ep(1, False))
    journal.record_episode("t1", ep(2, True))
    journal.start_trial("t2")
    journal.record_episode("t2", ep(1, True))  # killed here, mid-trial

    resumed = TrialJournal(path, PLAN)
    assert resumed.resumed and resumed.pending_tasks() == ["t2"]
    assert [e.success for e in resumed.trials["t1"].episodes] == [False, True]
    assert resumed.trials["t2"].episodes == []
    assert [e.success for e in resumed.trials["t2"].interrupted_attempts[0]] == [True]
    resumed.record_episode("t2", ep(1, False))
    resumed.record_episode("t2", ep(2, True))
    assert resumed.pending_tasks() == []
    assert resumed.success_rates() == [0.0, 1.0]
    table = resumed.summary_table()
    assert "t1" in table and "1 interrupted attempt(s) kept" in table and "100%" in table


def test_save_is_atomic_no_partial_files_left(tmp_path):
    journal = TrialJournal(tmp_path / "j.json", PLAN)
    journal.record_episode("t1", ep(1, True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.json"]
    assert json.loads((tmp_path / "j.json").read_text())["trials"]["t1"]["episodes"][0]["success"] is True


def test_journal_for_another_plan_is_refused(tmp_path):
    TrialJournal(tmp_path / "j.json", PLAN).record_episode("t1", ep(1, True))
    with pytest.raises(ValueError, match="different plan"):
        TrialJournal(tmp_path / "j.json", TrialPlan(["t1"], 2, 10))


def test_corrupt_journal_is_refused_not_overwritten(tmp_path):
    path = tmp_path / "j.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        TrialJournal(path, PLAN)
    assert path.read_text() == "{not json"


@pytest.mark.parametrize("kwargs, message", [
    (dict(tasks=[], episodes_per_trial=1, episode_steps=1), "no tasks"),
    (dict(tasks=["a", "a"], episodes_per_trial=1, episode_steps=1), "twice"),
    (dict(tasks=["a"], episodes_per_trial=0, episode_steps=1), "must be >= 1"),
])
def test_bad_plans_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrialPlan(**kwargs)
