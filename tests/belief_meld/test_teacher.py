"""A port-blind teacher labelling the agent's own trials (DAgger) and the actor cloning those labels."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from belief.meld.agent import MeldAgent
from belief.meld.buffers import SequenceBuffer, TaskBuffers
from belief.meld.policy import MeldPolicy
from belief.meld.train import TrainConfig, Trainer
from belief.meld.trials import run_trial
from sim.mujoco.cable import PortSearch
from sim.tasks import Task
from tests.belief_meld.conftest import EPISODES, HORIZON, tiny_agent_config
from tests.belief_meld.test_model import _batch

SCALE = 0.1


def _stub_cable_env(distances: list[float], asked: list[int]):
    """Just enough of the cable twin for PortSearch: the tip's distance to each port, and an expert
    that records the port it is asked to go to."""
    family = SimpleNamespace(expert_velocity=lambda sim, task, period: asked.append(task.params["port"]) or np.zeros(5),
                             tip_distance_to_port=lambda sim, k: distances[k])
    task = Task("widowx_cable", "t", np.zeros(3), {"port": 3})
    return SimpleNamespace(unwrapped=SimpleNamespace(task=task, family=family, sim=None, period=0.3, vmax=np.ones(5)))


def test_nearest_teacher_rules_out_any_seated_port_heads_for_the_nearest_left_and_never_times_out():
    asked: list[int] = []
    distances = [0.03, 0.01, 0.02, 0.04]
    env = _stub_cable_env(distances, asked)
    teacher = PortSearch(SCALE, timeout=2, order="nearest")
    teacher.start_trial(np.random.default_rng(0))
    teacher.start_episode()
    teacher.act(env, {})  # nearest: 1
    teacher.act(env, {"latched_port": 1, "success": False})  # seated without a click: next nearest, 2
    teacher.act(env, {"latched_port": 0, "success": False})  # the learner seated in 0: ruled out too
    for _ in range(4):  # longer than the timeout over 2: a teacher does not give up on the learner's pace
        teacher.act(env, {"latched_port": -1, "success": False})
    distances[3] = 0.001  # the plug wanders over port 3: the nearest left
    teacher.act(env, {"latched_port": -1, "success": False})
    distances[3] = 0.04
    teacher.act(env, {"latched_port": 3, "success": True})
    teacher.act(env, {"latched_port": -1, "success": False})  # pulled out: 3 stays, 2 is nearer but moot
    teacher.start_episode()
    teacher.act(env, {})
    assert asked == [1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3]
    assert teacher.ruled_out == {0, 1}
    teacher.start_trial(np.random.default_rng(1))  # a new trial knows nothing
    teacher.start_episode()
    teacher.act(env, {})
    assert asked[-1] == 1


def test_the_true_port_teacher_heads_for_the_tasks_port_from_every_state_whatever_seated_or_latched():
    """Not a search: nearer ports, a port seated without the click and one the learner latched elsewhere
    do not move it off the task's own port (3 in the stub), trial after trial."""
    asked: list[int] = []
    env = _stub_cable_env([0.01, 0.02, 0.03, 0.04], asked)
    teacher = PortSearch(SCALE, order="true_port")
    for seed in (0, 1):
        teacher.start_trial(np.random.default_rng(seed))
        teacher.start_episode()
        teacher.act(env, {})
        teacher.act(env, {"latched_port": 0, "success": False})
        teacher.act(env, {"latched_port": 1, "success": True})
        teacher.start_episode()
        teacher.act(env, {"latched_port": -1, "success": False})
    assert asked == [3] * 8 and teacher.target == 3


def test_port_search_refuses_a_clone_radius_that_is_no_distance_within_half_the_pitch():
    for bad in (-0.001, 0.009, True, "0.004"):
        with pytest.raises(ValueError, match=r"PortSearch clone_radius is a distance \(m\) from a port's axis"):
            PortSearch(SCALE, order="nearest", clone_radius=bad)


def test_port_search_refuses_an_unknown_order():
    with pytest.raises(ValueError, match=r"PortSearch order must be one of \('random', 'nearest', 'per_episode', 'true_port'\), got 'closest'"):
        PortSearch(SCALE, order="closest")


class ConstantTeacher:
    """A teacher that always answers the same action, and counts what it was asked."""

    def __init__(self, action):
        self.action, self.asked, self.trials = np.asarray(action, np.float32), 0, 0
        self.clone_this_step = True

    def start_trial(self, rng):
        self.trials += 1

    def start_episode(self):
        pass

    def act(self, env, info):
        self.asked += 1
        return self.action


def test_a_teacher_labels_the_policys_trial_without_acting(fake_env):
    """With a policy acting, the controller's answers become the trial's labels on every acted frame
    (NaN on each episode's last frame, where nothing acts); the actions stay the policy's, and a trial
    without a teacher is all NaN."""
    agent = MeldAgent(tiny_agent_config(), EPISODES, HORIZON)
    policy = MeldPolicy(agent.model, agent.sac.actor)
    task = fake_env.tasks.train[0]
    teacher = ConstantTeacher([0.5, -0.25])
    res = run_trial(fake_env, task, policy, EPISODES, "sample", seed=0, controller=teacher)
    labels, actions = res.trial.labels, res.trial.actions
    last = np.arange(1, EPISODES + 1) * (HORIZON + 1) - 1
    acted = np.setdiff1d(np.arange(len(labels)), last)
    assert np.isnan(labels[last]).all()
    assert np.array_equal(labels[acted], np.tile(teacher.action, (len(acted), 1)))
    assert not np.allclose(actions[acted], teacher.action)  # the policy acted
    assert teacher.trials == 1 and teacher.asked == EPISODES * (HORIZON + 1)
    plain = run_trial(fake_env, task, policy, EPISODES, "sample", seed=0)
    assert np.isnan(plain.trial.labels).all()
    scripted = run_trial(fake_env, task, None, EPISODES, "scripted", seed=0, controller=teacher)
    assert np.array_equal(scripted.trial.labels[acted], scripted.trial.actions[acted])


def test_a_teacher_leading_the_first_episode_acts_there_and_the_policy_acts_after_it(fake_env):
    """controller_episodes=1: episode 1's actions are the controller's, later episodes' the policy's
    (labelled); the belief filtered meanwhile is the one carried into episode 2. Bad counts are refused."""
    agent = MeldAgent(tiny_agent_config(), EPISODES, HORIZON)
    policy = MeldPolicy(agent.model, agent.sac.actor)
    task = fake_env.tasks.train[0]
    teacher = ConstantTeacher([0.5, -0.25])
    res = run_trial(fake_env, task, policy, EPISODES, "sample", seed=0, controller=teacher, controller_episodes=1)
    ep1, later = np.arange(HORIZON), np.arange(HORIZON + 1, EPISODES * (HORIZON + 1) - 1)
    later = later[(later + 1) % (HORIZON + 1) != 0]
    assert np.array_equal(res.trial.actions[ep1], np.tile(teacher.action, (HORIZON, 1)))
    assert np.array_equal(res.trial.labels[later], np.tile(teacher.action, (len(later), 1)))
    assert not np.allclose(res.trial.actions[later], teacher.action)
    assert len(res.beliefs) == EPISODES * (HORIZON + 1)  # the policy filtered every frame
    for bad in (-1, EPISODES + 1, True, 0.5):
        with pytest.raises(ValueError, match=r"controller_episodes must be a whole number in \[0, episodes"):
            run_trial(fake_env, task, policy, EPISODES, "sample", controller=teacher, controller_episodes=bad)
    for mode, ctrl in (("sample", None), ("scripted", teacher)):
        with pytest.raises(ValueError, match="controller_episodes: .* needs a controller and a policy mode"):
            run_trial(fake_env, task, policy, EPISODES, mode, controller=ctrl, controller_episodes=1)


class AlternatingTeacher(ConstantTeacher):
    """A teacher that leaves every other step it is asked about to the reward."""

    def act(self, env, info):
        self.clone_this_step = self.asked % 2 == 1
        return super().act(env, info)


def test_steps_a_teacher_leaves_to_the_reward_are_unlabelled_and_a_scripted_actor_still_acts_there(fake_env):
    agent = MeldAgent(tiny_agent_config(), EPISODES, HORIZON)
    policy = MeldPolicy(agent.model, agent.sac.actor)
    task = fake_env.tasks.train[0]
    last = np.arange(1, EPISODES + 1) * (HORIZON + 1) - 1
    for trial_policy, mode in ((policy, "sample"), (None, "scripted")):
        teacher = AlternatingTeacher([0.5, -0.25])
        res = run_trial(fake_env, task, trial_policy, EPISODES, mode, seed=0, controller=teacher)
        asked = np.arange(len(res.trial.labels))  # asked once per frame, in order
        cloned = np.setdiff1d(asked[asked % 2 == 1], last)
        assert np.array_equal(np.flatnonzero(np.isfinite(res.trial.labels).all(-1)), cloned)
        if mode == "scripted":  # the teacher acted on every acted frame, labelled or not
            acted = np.setdiff1d(asked, last)
            assert np.array_equal(res.trial.actions[acted], np.tile(teacher.action, (len(acted), 1)))


def test_replay_keeps_labels_through_a_checkpoint_and_loads_older_ones_unlabelled(fake_env):
    agent = MeldAgent(tiny_agent_config(), EPISODES, HORIZON)
    policy = MeldPolicy(agent.model, agent.sac.actor)
    res = run_trial(fake_env, fake_env.tasks.train[0], policy, EPISODES, "sample", seed=0,
                    controller=ConstantTeacher([0.5, -0.25]))
    T, A = res.trial.actions.shape
    bufs = TaskBuffers(3, T, res.trial.images.shape[1:], A)
    bufs.add("a", res.trial)
    state = bufs.state_dict()
    back = TaskBuffers(3, T, res.trial.images.shape[1:], A)
    back.load_state_dict(state)
    assert np.array_equal(back.stored()["a"]["labels"], res.trial.labels[None], equal_nan=True)
    old = {k: v for k, v in state["a"].items() if k != "labels"}  # a checkpoint from before labels
    buf = SequenceBuffer(3, T, res.trial.images.shape[1:], A)
    buf.load_state_dict(old)
    assert buf.size == 1 and np.isnan(buf.stored()["labels"]).all()
    assert np.array_equal(buf.stored()["actions"], res.trial.actions[None])


def _transitions_with_labels(ag: MeldAgent, label: float):
    b = ag.to_tensors(_batch())
    _, beliefs = ag.model_step(b)
    t = ag.transitions(beliefs, b)
    labels = torch.full_like(t["actions"], label)
    labels[::2] = float("nan")  # every other transition unlabelled
    return {**t, "labels": labels}


def test_teacher_bc_pulls_the_actor_towards_the_labels_on_labelled_transitions_only():
    def trained(weight: float, label: float = 0.8):
        torch.manual_seed(0)
        ag = MeldAgent(tiny_agent_config(ac_batch=8, teacher_bc_weight=weight), EPISODES, HORIZON)
        t = _transitions_with_labels(ag, label)
        model = {k: v.clone() for k, v in ag.model.state_dict().items()}
        for _ in range(300):
            stats = ag.sac_update(t)
        assert all(torch.equal(v, ag.model.state_dict()[k]) for k, v in model.items())
        err = (ag.sac.actor.act_mean(ag.model.actor_input(t["obs"][1::2])) - label).pow(2).mean().item()
        return err, stats

    cloned, stats = trained(10.0)
    plain, plain_stats = trained(0.0)
    assert cloned < 0.25 * plain and "teacher_bc_loss" in stats and "teacher_bc_loss" not in plain_stats
    torch.manual_seed(0)
    ag = MeldAgent(tiny_agent_config(teacher_bc_weight=10.0), EPISODES, HORIZON)
    t = _transitions_with_labels(ag, 0.8)
    t["labels"][:] = float("nan")
    assert "teacher_bc_loss" not in ag.sac_update(t)  # nothing labelled: no cloning term, no NaN loss


def test_transitions_carry_the_labels_of_acted_frames():
    ag = MeldAgent(tiny_agent_config(), EPISODES, HORIZON)
    batch = _batch()
    batch["labels"] = np.arange(np.prod(batch["actions"].shape), dtype=np.float32).reshape(batch["actions"].shape)
    b = ag.to_tensors(batch)
    _, beliefs = ag.model_step(b)
    t = ag.transitions(beliefs, b)
    assert torch.equal(t["labels"], b["labels"][:, ag._cur].reshape(-1, 2))
    assert "labels" not in ag.transitions(beliefs, {k: v for k, v in b.items() if k != "labels"})


def test_teacher_settings_are_refused_by_name():
    for bad in ({"teacher_bc_weight": -1.0}, {"teacher_bc_weight": True}, {"teacher_bc_weight": "10"}):
        with pytest.raises(ValueError, match="teacher_bc_weight must be a number >= 0"):
            tiny_agent_config(**bad)
    for bad, match in (({"teacher": "oracle"}, r"teacher must be one of \('', 'port_search', 'port_per_episode', 'true_port'\)"),
                       ({"env": "widowx_cable", "teacher": "true_port"},
                        "teacher 'true_port' labels the way to the task's own port.*it needs agent.ac_true_port"),
                       ({"agent": {"teacher_bc_weight": 1.0}}, "clones a teacher's labels: it needs a teacher"),
                       ({"env": "fake", "teacher": "port_search"}, "TrainConfig.teacher: .* widowx_cable twin only"),
                       ({"teacher_clone_radius": 0.004}, "teacher_clone_radius limits a teacher's labels: it needs"),
                       ({"env": "widowx_cable", "teacher": "port_search", "teacher_clone_radius": 0.02},
                        r"TrainConfig.teacher_clone_radius is a distance \(m\) from a port's axis in \[0, 0.009\)"),
                       ({"teacher_labelled_episodes": 1}, "teacher_labelled_episodes limits a teacher's labels: it needs"),
                       ({"env": "widowx_cable", "teacher": "port_search", "teacher_labelled_episodes": 2},
                        r"teacher_labelled_episodes counts .* in \[0, episodes = 2\) \(0 = all\), got 2"),
                       ({"env": "widowx_cable", "teacher": "port_search", "teacher_labelled_episodes": 0.5},
                        "teacher_labelled_episodes counts .* got 0.5")):
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad)


# a tiny model on the cable twin with 3-step episodes, taught by the nearest-port teacher
TINY_CABLE_AGENT = {"model": {"base_depth": 2, "z1_dim": 3, "z2_dim": 5, "hidden": 16}, "sac": {"hidden": (16, 16)},
                    "ac_batch": 8, "ac_cache_refresh": 1, "teacher_bc_weight": 1.0}


def _cable_teacher_config(**overrides) -> TrainConfig:
    base = dict(env="widowx_cable", env_kwargs={"episode_steps": 3}, action_scale=SCALE, agent=TINY_CABLE_AGENT,
                n_train_tasks=2, n_test_tasks=1, train_steps_per_iter=1, eval_every=0, capacity_per_task=5,
                teacher="port_search")
    return TrainConfig(**{**base, **overrides})


def test_training_with_the_teacher_labels_its_trials_and_clones_them(tmp_path):
    """On the cable twin (3-step episodes, a tiny model): every trial collected after pre-training is
    labelled by the nearest-port teacher (the random ones are not), the i.i.d. actor-critic logs the
    cloning term, and the labels survive the checkpoint."""
    cfg = dict(init_trials_per_task=1, pretrain_steps=1, iterations=3, batch_trials=2, checkpoint_every=1)
    trainer = Trainer(_cable_teacher_config(**cfg), tmp_path)
    trainer.run()
    trials = [b.stored() for b in trainer.buffers.buffers.values()]
    labelled = sum(int(np.isfinite(d["labels"]).all(-1).any(-1).sum()) for d in trials)
    unlabelled = sum(int(np.isnan(d["labels"]).all((-1, -2)).sum()) for d in trials)
    assert labelled == trainer.iteration == 3 and unlabelled == len(trainer.train_tasks)
    header = (tmp_path / "train.csv").read_text().splitlines()[0].split(",")
    assert "teacher_bc_loss" in header
    resumed = Trainer(_cable_teacher_config(**cfg), tmp_path)
    resumed.restore(tmp_path / "checkpoint.pt")
    for tid, d in resumed.buffers.stored().items():
        assert np.array_equal(d["labels"], trainer.buffers.stored()[tid]["labels"], equal_nan=True)


def test_with_teacher_labelled_episodes_1_only_episode_1_keeps_the_teachers_labels(tmp_path):
    """The agent's trials and the teacher's own alike: labels in episode 1, none after it."""
    cfg = _cable_teacher_config(init_trials_per_task=0, pretrain_steps=0, iterations=4, batch_trials=1,
                                checkpoint_every=10, teacher_act_share=0.5, teacher_labelled_episodes=1)
    trainer = Trainer(cfg, tmp_path)
    trainer.run()
    frames = trainer.horizon + 1
    trials = [t for d in trainer.buffers.stored().values() for t in d["labels"]]
    assert len(trials) == 4
    for labels in trials:
        assert np.isfinite(labels[:frames - 1]).all() and np.isnan(labels[frames:]).all()


def test_the_training_log_counts_the_ports_seated_in_each_collected_trials_first_episode(tmp_path, monkeypatch):
    """train.csv's train_ports_seated_ep1: how many ports the plug seated in during episode 1 of the
    iteration's trials (1 for an agent that commits to a port, more for one that searches)."""
    from tests.belief_meld.fake_env import FakeImageEnv
    from tests.belief_meld.test_train import _cfg

    env = FakeImageEnv(episode_steps=3)
    trainer = Trainer(_cfg(iterations=2, eval_every=0), tmp_path, env, env.tasks)
    collect = trainer.collect

    def seated_in_three(task, mode, controller=None, **kw):
        result = collect(task, mode, controller, **kw)
        result.episode_ports_seated = [[2, 0, 1], [1]] if mode == "sample" else result.episode_ports_seated
        return result

    monkeypatch.setattr(trainer, "collect", seated_in_three)
    trainer.run()
    with (tmp_path / "train.csv").open() as fh:
        assert [float(r["train_ports_seated_ep1"]) for r in csv.DictReader(fh)] == [3.0, 3.0]


@pytest.mark.parametrize("name", ["teacher_act_share", "teacher_leads_share"])
def test_the_teachers_shares_are_refused_by_name(name):
    for bad in (-0.1, 1.5, True, "0.5"):
        with pytest.raises(ValueError, match=rf"{name} is a share of the collected trials, in \[0, 1\]"):
            TrainConfig(teacher="port_search", **{name: bad})
    with pytest.raises(ValueError, match=f"{name}: .* needs a teacher"):
        TrainConfig(**{name: 0.5})


def test_the_teachers_shares_together_stay_within_the_trials_and_leading_needs_a_second_episode():
    with pytest.raises(ValueError, match=r"teacher_act_share \+ teacher_leads_share must be <= 1"):
        TrainConfig(teacher="port_search", teacher_act_share=0.6, teacher_leads_share=0.5)
    with pytest.raises(ValueError, match="teacher_leads_share: .* needs episodes >= 2, got 1"):
        TrainConfig(teacher="port_search", teacher_leads_share=0.5, episodes=1)


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_the_teacher_acts_in_its_share_of_the_collected_trials_and_its_actions_are_their_labels(tmp_path, share):
    """DAgger's beta on the cable twin (3-step episodes, a tiny model): with share 1 the teacher acts in
    every trial collected after pre-training (labels = the actions taken), with share 0 in none (the agent
    acts, the teacher labels); train.csv says which."""
    cfg = _cable_teacher_config(init_trials_per_task=0, pretrain_steps=0, iterations=4, batch_trials=1,
                                checkpoint_every=10, teacher_act_share=share)
    trainer = Trainer(cfg, tmp_path)
    modes: list[str] = []
    collect = trainer.collect

    def recording(task, mode, controller=None, controller_episodes=0, labelled_episodes=0, hand_true_port=False):
        assert controller_episodes == 0 and labelled_episodes == 0 and not hand_true_port
        modes.append(mode)
        return collect(task, mode, controller, controller_episodes, labelled_episodes)

    trainer.collect = recording
    trainer.run()
    assert modes == ["scripted" if share else "sample"] * 4
    for d in trainer.buffers.stored().values():
        acted = np.isfinite(d["labels"]).all(-1)
        assert acted.any()
        assert np.array_equal(d["labels"][acted] == d["actions"][acted], np.full_like(d["labels"][acted], share == 1.0, bool))
    with (tmp_path / "train.csv").open() as fh:
        assert [float(r["train_teacher_acted"]) for r in csv.DictReader(fh)] == [share] * 4


def test_the_cloning_term_is_averaged_over_the_steps_that_had_labels_and_always_gets_its_column(tmp_path):
    """A minibatch without labelled transitions reports no cloning term: the iteration's value averages
    the steps that had one (not a zero for the others), and an iteration with none still writes the
    column (NaN), since train.csv's columns are fixed by its first row (a warm start's replay is unlabelled)."""
    trainer = Trainer(_cable_teacher_config(), tmp_path)
    steps = iter([{"q_mean": 1.0}, {"q_mean": 3.0}, {"q_mean": 5.0}, {"q_mean": 7.0}])
    cloning = iter([{"teacher_bc_loss": 2.0}, {}, {}, {}])
    trainer.buffers.sample = lambda n, rng, tasks: {"task_id": [tasks[0]] * n}
    trainer.agent.train_step = lambda batch, train_actor_critic: dict(next(steps))
    trainer._cached_actor_critic = lambda: next(cloning)
    assert trainer.train_steps(2) == {"q_mean": 2.0, "teacher_bc_loss": 2.0}
    out = trainer.train_steps(2)
    assert out["q_mean"] == 6.0 and np.isnan(out["teacher_bc_loss"])


def test_the_trainers_teacher_gets_the_clone_radius(tmp_path):
    assert Trainer(_cable_teacher_config(teacher_clone_radius=0.004), tmp_path)._teacher().clone_radius == 0.004
    assert Trainer(_cable_teacher_config(), tmp_path)._teacher().clone_radius == 0.0



def test_the_trainers_teacher_searches_in_the_order_its_name_says(tmp_path):
    assert Trainer(_cable_teacher_config(), tmp_path)._teacher().order_kind == "nearest"
    assert Trainer(_cable_teacher_config(teacher="port_per_episode"), tmp_path)._teacher().order_kind == "per_episode"
    true_port = _cable_teacher_config(teacher="true_port", agent={**TINY_CABLE_AGENT, "ac_true_port": True,
                                                                  "model": {**TINY_CABLE_AGENT["model"],
                                                                            "task_id_weight": 1.0, "task_probs_in_belief": True,
                                                                            "actor_commits_to_port": True}})
    assert Trainer(true_port, tmp_path)._teacher().order_kind == "true_port"


def test_with_teacher_leads_share_1_the_teacher_acts_in_episode_1_and_the_agent_in_episode_2(tmp_path):
    """teacher_leads_share = 1 (cable twin, 3-step episodes, a tiny model): in every trial collected
    after pre-training the teacher's actions are episode 1's (labels = actions) and the agent acts in
    episode 2 under the belief carried from it (labelled by the teacher, not copied); train.csv says so."""
    cfg = _cable_teacher_config(init_trials_per_task=0, pretrain_steps=0, iterations=3, batch_trials=1,
                                checkpoint_every=10, teacher_leads_share=1.0)
    trainer = Trainer(cfg, tmp_path)
    trainer.run()
    L = 3 + 1  # frames per episode
    ep1, ep2 = slice(0, L - 1), slice(L, 2 * L - 1)  # each episode's acted frames
    assert trainer.buffers.stored()
    for d in trainer.buffers.stored().values():
        for labels, actions in zip(d["labels"], d["actions"], strict=True):
            assert np.isfinite(labels[ep1]).all() and np.array_equal(labels[ep1], actions[ep1])
            assert np.isfinite(labels[ep2]).all() and not np.array_equal(labels[ep2], actions[ep2])
    with (tmp_path / "train.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["train_teacher_led"]) for r in rows] == [1.0] * 3
    assert [float(r["train_teacher_acted"]) for r in rows] == [0.0] * 3


def test_the_cloning_weight_follows_its_schedule_by_env_steps(tmp_path):
    """teacher_bc_schedule: each iteration trains at the weight in effect at the env steps it started
    from (agent.teacher_bc_weight before the first entry); at weight 0 nothing is cloned (NaN logged)."""
    probe = Trainer(_cable_teacher_config(init_trials_per_task=1, pretrain_steps=1), tmp_path / "probe")
    per_trial = probe.cfg.episodes * probe.horizon  # env steps of one collected trial
    start = len(probe.train_tasks) * per_trial  # after the random trials
    schedule = [[start + per_trial, 0.5], [start + 2 * per_trial, 0.0]]
    cfg = _cable_teacher_config(init_trials_per_task=1, pretrain_steps=1, iterations=4, batch_trials=2,
                                checkpoint_every=10, teacher_bc_schedule=schedule)
    trainer = Trainer(cfg, tmp_path / "run")
    seen, real = [], trainer.train_steps
    trainer.train_steps = lambda n, **kw: seen.append(trainer.agent.teacher_bc_weight) or real(n, **kw)
    trainer.run()
    assert seen[-4:] == [1.0, 0.5, 0.0, 0.0]  # the agent's weight, then the schedule's
    with (tmp_path / "run" / "train.csv").open() as fh:
        losses = [float(r["teacher_bc_loss"]) for r in csv.DictReader(fh)]
    assert np.isfinite(losses[:2]).any() and np.isnan(losses[2:]).all()  # a minibatch may hold no labelled step
    assert [cfg.teacher_bc_weight_at(s) for s in (0, start + per_trial - 1, start + per_trial, 10**6)] == [1.0, 1.0, 0.5, 0.0]


def test_the_schedules_last_weight_starts_its_final_minutes_before_the_budget_ends(tmp_path, monkeypatch, capsys):
    """teacher_bc_final_min: on a machine too slow to reach the scheduled env steps inside time_budget_min, the
    last weight still trains the run's final minutes (a clock of one minute per iteration stands in for it)."""
    import belief.meld.train as train_module

    cfg = _cable_teacher_config(init_trials_per_task=1, pretrain_steps=1, iterations=4, batch_trials=2,
                                checkpoint_every=10, teacher_bc_schedule=[[10**6, 0.5]], time_budget_min=10,
                                teacher_bc_final_min=7.5)
    trainer = Trainer(cfg, tmp_path / "run")
    monkeypatch.setattr(train_module, "time", SimpleNamespace(monotonic=lambda: 60.0 * trainer.iteration))
    seen, real = [], trainer.train_steps
    trainer.train_steps = lambda n, **kw: seen.append(trainer.agent.teacher_bc_weight) or real(n, **kw)
    trainer.run()
    assert seen[-4:] == [1.0, 1.0, 1.0, 0.5]  # 10, 9, 8, then 7 minutes left
    assert "teacher's cloning weight 0.5 from iteration 4" in capsys.readouterr().out
    assert cfg.teacher_bc_weight_at(10**6, minutes_left=9.0) == 0.5  # the env steps may come first


@pytest.mark.parametrize("final_min, schedule, budget", [(-1.0, [[100, 0.5]], 60), ("5", [[100, 0.5]], 60),
                                                         (5.0, [], 60), (5.0, [[100, 0.5]], 0), (60, [[100, 0.5]], 60),
                                                         (5.0, [[100, 0.5]], "60")])
def test_a_bad_final_phase_is_refused_by_name(final_min, schedule, budget):
    with pytest.raises(ValueError, match="teacher_bc_final_min"):
        _cable_teacher_config(teacher_bc_final_min=final_min, teacher_bc_schedule=schedule, time_budget_min=budget)


@pytest.mark.parametrize("schedule", [[[100, -1.0]], [[100, 1.0], [50, 0.0]], [[100]], "300 then 3", [[1.5, 1.0]],
                                      [[100, True]]])
def test_a_bad_cloning_schedule_is_refused_by_name(schedule):
    with pytest.raises(ValueError, match=r"teacher_bc_schedule is a list of \[env_steps, weight\] pairs"):
        _cable_teacher_config(teacher_bc_schedule=schedule)


def test_a_cloning_schedule_needs_a_teacher_and_a_weight_to_start_from():
    with pytest.raises(ValueError, match="teacher_bc_schedule changes the cloning weight .* needs a teacher"):
        _cable_teacher_config(teacher="", agent={**TINY_CABLE_AGENT, "teacher_bc_weight": 0.0},
                              teacher_bc_schedule=[[100, 1.0]])
    with pytest.raises(ValueError, match="agent.teacher_bc_weight > 0"):
        _cable_teacher_config(agent={**TINY_CABLE_AGENT, "teacher_bc_weight": 0.0}, teacher_bc_schedule=[[100, 1.0]])
