"""Task probe: held-out-task folds, a classifier that finds task information where it is and only there,
and the end-to-end report on a trained checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from belief.meld.probe import (
    actor_task_part_swap,
    actor_task_sensitivity,
    critic_task_sensitivity,
    probe_accuracy,
    probe_checkpoint,
    task_folds,
    task_part_columns,
)
from belief.meld.train import TrainConfig, Trainer
from sim.tasks import Task, TaskSet
from tests.belief_meld.fake_env import FakeImageEnv

TINY = {"model": {"base_depth": 2, "z1_dim": 3, "z2_dim": 5, "hidden": 16}, "sac": {"hidden": (16, 16)}}


def _groups_and_labels(n_tasks=8, per_task=12):
    groups = np.repeat([f"t{i}" for i in range(n_tasks)], per_task)
    labels = np.repeat(np.arange(n_tasks) % 2, per_task)
    return groups, labels


def test_folds_hold_out_whole_tasks_and_spread_each_label():
    groups, labels = _groups_and_labels()
    fold = task_folds(groups, labels, folds=4)
    for g in set(groups):
        assert len(set(fold[groups == g])) == 1
    for k in range(4):
        assert set(labels[fold != k]) == {0, 1}  # every training split sees both labels


def test_probe_finds_task_information_only_where_it_is():
    groups, labels = _groups_and_labels()
    rng = np.random.default_rng(0)
    informative = np.c_[labels + 0.1 * rng.standard_normal(len(labels)), rng.standard_normal((len(labels), 4))]
    acc, chance = probe_accuracy(informative, labels, groups)
    assert acc > 0.95 and chance == pytest.approx(0.5)
    # per-task offsets carry no label: a probe that memorised tasks would still fail on held-out ones.
    # More tasks here so chance on held-out tasks is tight; np.unique keeps the draw order fixed
    # (set order of strings changes with PYTHONHASHSEED).
    groups, labels = _groups_and_labels(n_tasks=24, per_task=6)
    offsets = {g: rng.standard_normal(5) for g in np.unique(groups)}
    uninformative = np.stack([offsets[g] for g in groups]) + 0.05 * rng.standard_normal((len(groups), 5))
    acc, _ = probe_accuracy(uninformative, labels, groups)
    assert acc < 0.8


def _trained_on_four_goals(run_dir, **cfg_kw):
    """A tiny checkpoint in run_dir, trained on four goals whose side (label) two tasks share."""
    goals = (-0.8, -0.4, 0.4, 0.8)
    tasks = TaskSet("fake", 0, tuple(Task("fake", f"goal{i}", np.array([g]), {"goal": g, "side": int(g > 0)})
                                     for i, g in enumerate(goals)),
                    (Task("fake", "held-out", np.array([0.0]), {"goal": 0.0, "side": 0}),))
    env = FakeImageEnv(episode_steps=3)
    env.tasks = tasks
    kw = dict(env="fake", agent=TINY, init_trials_per_task=3, pretrain_steps=1, iterations=1,
              train_steps_per_iter=1, batch_trials=2, eval_every=5, checkpoint_every=1, capacity_per_task=5)
    cfg = TrainConfig(**{**kw, **cfg_kw})
    Trainer(cfg, run_dir, env, tasks).run()
    return env, tasks


def test_probe_checkpoint_reports_per_frame_and_names_a_missing_label(tmp_path):
    env, tasks = _trained_on_four_goals(tmp_path)
    result = probe_checkpoint(tmp_path / "checkpoint.pt", label="side", frames=[0, 3, 7], task_set=tasks)
    assert [r["frame"] for r in result["frames"]] == [0, 3, 7]
    assert result["n_tasks"] == 4 and result["n_trials"] >= 12
    assert all(0 <= r["belief"] <= 1 and 0 <= r["memory"] <= 1 and 0.4 <= r["chance"] <= 0.65
               for r in result["frames"])
    assert json.loads((tmp_path / "task_probe.json").read_text())["label"] == "side"
    assert (tmp_path / "task_probe.png").is_file()
    sens = result["reward_sensitivity"]
    assert sens["n_tasks"] == 4 and sens["mu2_spread"] > 0 and sens["ratio"] >= 0
    with pytest.raises(ValueError, match="'port'"):
        probe_checkpoint(tmp_path / "checkpoint.pt", label="port", task_set=tasks)
    with pytest.raises(ValueError, match="frame 99"):
        probe_checkpoint(tmp_path / "checkpoint.pt", label="side", frames=[99], task_set=tasks)


def test_reward_sensitivity_is_zero_when_rewards_carry_nothing_and_grows_with_their_weight():
    """Swapping in another task's rewards moves the belief only if the rewards differ; a larger input
    scale makes the belief listen more (same weights, so the comparison is the input path alone)."""
    import torch

    from belief.meld.model import LatentModel, ModelConfig
    from belief.meld.probe import reward_sensitivity

    g = np.random.default_rng(0)
    bufs = {f"t{i}": {"images": g.integers(0, 255, (1, 6, 16, 32, 3), dtype=np.uint8),
                      "actions": g.uniform(-1, 1, (1, 6, 2)).astype(np.float32),
                      "reward_dense": np.full((1, 6), -float(i), np.float32)} for i in range(3)}
    torch.manual_seed(0)
    model = LatentModel(ModelConfig(image_height=16, image_width=32, action_dim=2, base_depth=2, z1_dim=3,
                                    z2_dim=5, hidden=16))
    base = reward_sensitivity(model, bufs)["ratio"]
    same = {t: {**d, "reward_dense": np.zeros_like(d["reward_dense"])} for t, d in bufs.items()}
    assert reward_sensitivity(model, same)["ratio"] == 0.0
    model.reward_scale = 10.0
    assert reward_sensitivity(model, bufs)["ratio"] > base
    with pytest.raises(ValueError, match="two tasks"):
        reward_sensitivity(model, {"t0": bufs["t0"]})


def test_probe_on_fresh_deterministic_trials_of_the_checkpoints_policy(tmp_path):
    """--fresh N: N new deterministic trials per training task, run with the checkpoint's policy, instead
    of the replay trials (mostly old behaviour); the same trials as the evaluation would run."""
    env, tasks = _trained_on_four_goals(tmp_path)
    result = probe_checkpoint(tmp_path / "checkpoint.pt", label="side", frames=[0, 7], task_set=tasks,
                              fresh=2, env=env)
    assert result["trials"] == "fresh" and result["n_trials"] == 2 * len(tasks.train) == 8
    assert result["n_tasks"] == 4 and all(0 <= r["belief"] <= 1 for r in result["frames"])
    with pytest.raises(ValueError, match="fresh"):
        probe_checkpoint(tmp_path / "checkpoint.pt", label="side", task_set=tasks, fresh=-1, env=env)


def test_memory_part_is_probed_alone():
    """A port read off the current frame (outside mu2) shows in the belief, not in its memory part."""
    from belief.meld.probe import task_probe

    groups, labels = _groups_and_labels()
    rng = np.random.default_rng(1)
    beliefs = rng.standard_normal((len(labels), 2, 4))
    beliefs[:, :, 0] += 8.0 * labels[:, None]  # column 0: the current frame's read of the label
    rewards = rng.standard_normal((len(labels), 2))
    rows = task_probe(beliefs, rewards, labels, groups, [0, 1], memory=slice(1, 4))["frames"]
    assert all(r["belief"] > 0.95 and r["memory"] < 0.8 for r in rows)


class _TaskValueCritic(torch.nn.Module):
    """Q = task_weight x (value of the task's class) - action^2: reads only the descriptor's one-hot."""

    def __init__(self, class_values, task_weight: float):
        super().__init__()
        self.values, self.w = torch.tensor(class_values), task_weight

    def forward(self, features, action):
        q = self.w * (features[:, -len(self.values):] @ self.values).unsqueeze(-1) - action.pow(2).sum(-1, keepdim=True)
        return q, q + 1.0


def test_critic_task_sensitivity_measures_how_much_the_value_reads_the_task():
    from belief.sac import SAC, SACConfig

    rng = np.random.default_rng(0)
    ids = np.array([f"t{i}" for i in range(8)])
    descriptors = {t: np.eye(2, dtype=np.float32)[i % 2] for i, t in enumerate(ids)}
    beliefs = rng.standard_normal((8, 6, 4)).astype(np.float32)
    sac = SAC(4, 1, SACConfig(hidden=(8,)), critic_feature_dim=6)
    sac.critic = _TaskValueCritic([0.0, 3.0], task_weight=1.0)
    rows = critic_task_sensitivity(sac, beliefs, ids, descriptors, n_classes=2, frames=[0, 5])
    assert [r["frame"] for r in rows] == [0, 5]
    for r in rows:
        assert r["q_range_over_classes"] == pytest.approx(3.0)
        assert r["best_class_counts"] == [0, 8] and r["best_is_own_class"] == pytest.approx(0.5)
    sac.critic = _TaskValueCritic([0.0, 3.0], task_weight=0.0)  # ignores the task
    assert all(r["q_range_over_classes"] == pytest.approx(0.0)
               for r in critic_task_sensitivity(sac, beliefs, ids, descriptors, 2, [0]))


def test_probe_reports_the_privileged_critic_of_a_run_that_has_one(tmp_path):
    agent = {**TINY, "privileged_critic": True}
    _, tasks = _trained_on_four_goals(tmp_path / "priv", agent=agent, task_label="side")
    result = probe_checkpoint(tmp_path / "priv" / "checkpoint.pt", label="side", frames=[0, 7], task_set=tasks)
    assert [r["frame"] for r in result["critic"]] == [0, 7]
    assert all(sum(r["best_class_counts"]) == result["n_trials"] and r["q_range_over_classes"] >= 0
               for r in result["critic"])
    _, tasks = _trained_on_four_goals(tmp_path / "plain")
    assert "critic" not in probe_checkpoint(tmp_path / "plain" / "checkpoint.pt", label="side", task_set=tasks)


class _ProbabilityFollowingActor:
    """act_mean = w x (the first class's probability) + the first belief column: reads the task iff w != 0."""

    def __init__(self, w: float):
        self.w = w

    def act_mean(self, b):
        return (self.w * b[:, -2:-1] + b[:, :1]).tanh()


def test_actor_task_sensitivity_measures_how_much_the_action_reads_the_task_probabilities():
    rng = np.random.default_rng(0)
    beliefs = rng.standard_normal((8, 6, 5)).astype(np.float32)
    beliefs[..., -2:] = np.array([0.7, 0.3], np.float32)
    rows = actor_task_sensitivity(_ProbabilityFollowingActor(2.0), beliefs, n_classes=2, frames=[0, 5])
    assert [r["frame"] for r in rows] == [0, 5]
    assert all(r["action_move_over_classes"] > 0.1 and r["head_confidence"] == pytest.approx(0.7) for r in rows)
    assert all(r["action_move_over_classes"] == pytest.approx(0.0) and r["action_spread"] > 0
               for r in actor_task_sensitivity(_ProbabilityFollowingActor(0.0), beliefs, 2, [0]))


def test_actor_task_part_swap_moves_the_action_only_through_the_task_columns():
    """Swapping the task part in from a trial of another class moves an actor that reads those columns,
    and leaves one that reads only the rest where it was; bad inputs are named."""
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    beliefs = rng.standard_normal((8, 6, 5)).astype(np.float32)
    beliefs[..., -2] = labels[:, None]  # column 3 holds the class
    cols = np.array([3, 4])
    rows = actor_task_part_swap(_ProbabilityFollowingActor(2.0), beliefs, labels, cols, frames=[0, 5])
    assert [r["frame"] for r in rows] == [0, 5] and all(r["action_move_other_task"] > 0.01 for r in rows)
    blind = actor_task_part_swap(_ProbabilityFollowingActor(2.0), beliefs, labels, np.array([1, 2]), [0])
    assert blind[0]["action_move_other_task"] == 0.0 and blind[0]["action_spread"] > 0
    with pytest.raises(ValueError, match="task columns"):
        actor_task_part_swap(_ProbabilityFollowingActor(2.0), beliefs, labels, np.zeros(0, int), [0])
    with pytest.raises(ValueError, match="two task classes"):
        actor_task_part_swap(_ProbabilityFollowingActor(2.0), beliefs, np.zeros(8, int), cols, [0])


def test_task_part_columns_are_the_task_latent_and_the_port_probabilities():
    """The swap takes the task latent's mean and std and the task head's probabilities, nothing of z1/z2;
    plain MELD has no task part."""
    from belief.meld.model import ModelConfig

    cfg = ModelConfig(action_dim=2, z1_dim=3, z2_dim=5, task_latent_dim=4, task_id_weight=1.0, task_classes=4,
                      task_probs_in_belief=True)
    z = 2 * (3 + 5)
    assert task_part_columns(cfg).tolist() == list(range(z, z + 8)) + list(range(z + 8, z + 12))
    assert cfg.belief_dim == z + 12
    probs_only = ModelConfig(action_dim=2, z1_dim=3, z2_dim=5, task_id_weight=1.0, task_classes=4,
                             task_probs_in_belief=True)
    assert task_part_columns(probs_only).tolist() == list(range(z, z + 4))
    assert len(task_part_columns(ModelConfig(action_dim=2, z1_dim=3, z2_dim=5))) == 0


@pytest.mark.parametrize("task_latent_dim", [0, 3])
def test_probe_reports_the_actor_of_a_run_with_task_probabilities(tmp_path, task_latent_dim):
    """With a task latent the head reads mu_c, and the probe's memory part is mu_c, not mu2; the probe
    rebuilds a gated actor (task_gated_actor) from the checkpoint like the trainer built it."""
    agent = {**TINY, "model": {**TINY["model"], "task_id_weight": 1.0, "task_probs_in_belief": True,
                               "task_latent_dim": task_latent_dim}, "task_gated_actor": task_latent_dim > 0}
    _, tasks = _trained_on_four_goals(tmp_path / "probs", agent=agent, task_label="side")
    result = probe_checkpoint(tmp_path / "probs" / "checkpoint.pt", label="side", frames=[0, 7], task_set=tasks)
    assert result["memory_part"] == ("mu_c" if task_latent_dim else "mu2")
    assert [r["frame"] for r in result["actor"]] == [0, 7] and "critic" not in result
    assert all(r["action_move_over_classes"] >= 0 and 0 < r["head_confidence"] <= 1 for r in result["actor"])
    assert [r["frame"] for r in result["actor_task_part"]] == [0, 7]


def test_refit_continues_the_actor_critic_on_replay_transitions_with_the_model_frozen(tmp_path):
    import torch

    from belief.meld.checkpoints import load_meld_checkpoint as load_checkpoint
    from belief.meld.refit import refit_checkpoint

    agent = {**TINY, "privileged_critic": True}
    _, tasks = _trained_on_four_goals(tmp_path / "priv", agent=agent, task_label="side")
    path = refit_checkpoint(tmp_path / "priv" / "checkpoint.pt", tmp_path / "refit", updates=3, batch=8,
                            task_set=tasks)
    before, after = load_checkpoint(tmp_path / "priv" / "checkpoint.pt"), load_checkpoint(path)
    assert all(torch.equal(v, after["agent"]["model"][k]) for k, v in before["agent"]["model"].items())
    assert not all(torch.equal(v, after["agent"]["sac"][k]) for k, v in before["agent"]["sac"].items())
    n_trials = sum(len(b["actions"]) for b in before["buffers"].values())
    assert after["refit"]["updates"] == 3 and after["refit"]["transitions"] == n_trials * 2 * 3
    result = probe_checkpoint(path, label="side", frames=[0], task_set=tasks)  # a checkpoint like any other
    assert "critic" in result
    with pytest.raises(ValueError, match="would overwrite the checkpoint it refits"):
        refit_checkpoint(path, tmp_path / "refit", updates=1, task_set=tasks)
    with pytest.raises(ValueError, match="updates and batch must be >= 1"):
        refit_checkpoint(path, tmp_path / "bad", updates=0, task_set=tasks)
