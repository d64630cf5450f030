"""Scripted port-blind search on the cable twin, its trials in MELD's replay, and the actor cloning them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from belief.meld.train import ScaledActions, TrainConfig, Trainer, make_env
from belief.meld.trials import run_trial
from sim.mujoco.cable import N_PORTS, PortSearch
from tests.belief_meld.conftest import EPISODES, HORIZON, tiny_agent_config

SCALE = 0.1  # the reduced run's action scale


@pytest.fixture(scope="module")
def cable_env():
    env = ScaledActions(make_env("widowx_cable", episode_steps=40), SCALE)
    yield env
    env.close()


def _first_latch(trial, episode: int, horizon: int = 40) -> int:
    """Frame of the episode at which the sparse reward (the latch at the correct port) first arrived."""
    frames = trial.reward_sparse[episode * (horizon + 1):(episode + 1) * (horizon + 1)]
    return int(np.argmax(frames > 0)) if frames.any() else -1


class RecordedSearch(PortSearch):
    """PortSearch that records the port it is going to at every step of every episode."""

    def start_trial(self, rng):
        super().start_trial(rng)
        self.targets: list[list[int]] = []

    def start_episode(self):
        super().start_episode()
        self.targets.append([])

    def act(self, env, info):
        action = super().act(env, info)
        self.targets[-1].append(self.target)
        return action


def test_port_search_finds_the_port_in_episode_1_and_goes_straight_to_it_in_episode_2(cable_env):
    """Within one 40-step episode at the reduced action scale the search seats the plug in port after
    port until the correct one latches; episode 2 of the trial goes to that port directly."""
    wrong_ports_tried = 0
    for i, task in enumerate(cable_env.unwrapped.task_set.train[:3]):
        search = RecordedSearch(SCALE)
        res = run_trial(cable_env, task, None, 2, "scripted", seed=i, controller=search)
        port = task.params["port"]
        assert res.episode_success == [True, True], task.task_id
        assert [info["port_at_tip"] for info in res.episode_final_info] == [port] * 2
        episode1, episode2 = search.targets
        assert episode1[-1] == port and set(episode2) == {port}
        # the trial records the ports seated in: those left without a click, then the correct one
        assert res.episode_ports_seated[1] == [port] and res.episode_ports_seated[0][-1] == port
        assert set(res.episode_ports_seated[0]) <= set(episode1)
        assert episode1 == sorted(episode1, key=search.order.index)  # the trial's order, one port after another
        wrong_ports_tried += len(res.episode_ports_seated[0]) - 1
        assert np.abs(res.trial.actions).max() <= 1.0  # the policy's units, as the replay stores them
    assert wrong_ports_tried >= 1  # some trial seated in a wrong port and moved on


def test_port_search_is_blind_to_the_correct_port(cable_env):
    """Two tasks that differ only in the correct port get the same motion until the first port seats:
    the search's order comes from the trial's random stream, never from the task; after that the task
    where the first port latched stays, the other moves on."""
    task = cable_env.unwrapped.task_set.train[0]
    first = PortSearch(SCALE)
    first.start_trial(np.random.default_rng(3))  # the stream run_trial(seed=3) gives it
    order = first.order
    tasks = [replace(task, params={**task.params, "port": order[k]}) for k in (0, 1)]
    runs = [run_trial(cable_env, t, None, 1, "scripted", seed=3, controller=PortSearch(SCALE)) for t in tasks]
    assert runs[0].episode_success == [True] and runs[1].episode_success == [True]
    a, b = (r.trial.actions for r in runs)
    seated = _first_latch(runs[0].trial, 0)  # port order[0] latched for the first task: seated there
    assert seated > 1 and np.array_equal(a[:seated], b[:seated])
    assert not np.allclose(a[seated:], b[seated:])
    assert sorted(order) == list(range(N_PORTS))


def test_port_search_leaves_a_port_that_seats_without_a_click_or_times_out_and_stays_at_a_latched_one():
    """The search's decisions from step infos alone (the twin replaced by a stub that reports the port
    asked for): next port on a seat without a click or after `timeout` steps, none after the latch."""
    from types import SimpleNamespace

    asked = []
    family = SimpleNamespace(expert_velocity=lambda sim, task, period: asked.append(task.params["port"]) or np.zeros(5))
    from sim.tasks import Task

    cable_task = Task("widowx_cable", "t", np.zeros(3), {"port": 3})
    env = SimpleNamespace(unwrapped=SimpleNamespace(task=cable_task, family=family, sim=None, period=0.3,
                                                    vmax=np.ones(5)))
    search = PortSearch(SCALE, timeout=3)
    search.start_trial(np.random.default_rng(0))
    search.start_episode()
    a, b, c, d = search.order
    search.act(env, {})
    search.act(env, {"latched_port": a, "success": False})  # seated without a click: next port
    for _ in range(3):  # stuck over b for the timeout: next port
        search.act(env, {"latched_port": -1, "success": False})
    search.act(env, {"latched_port": c, "success": True})
    for _ in range(5):
        search.act(env, {"latched_port": -1, "success": False})  # pulled out, slow: c stays
    search.start_episode()
    search.act(env, {})
    assert asked == [a, b, b, b, c, c, c, c, c, c, c, c]


def test_port_search_refuses_bad_settings():
    with pytest.raises(ValueError, match=r"PortSearch action_scale must be in \(0, 1\], got 0"):
        PortSearch(0)
    with pytest.raises(ValueError, match="PortSearch timeout must be >= 1 control step, got 0"):
        PortSearch(SCALE, timeout=0)


def test_scripted_trials_need_a_controller_and_random_ones_take_none(fake_env):
    task = fake_env.tasks.train[0]
    with pytest.raises(ValueError, match="trial mode 'scripted' needs a controller"):
        run_trial(fake_env, task, None, EPISODES, "scripted")
    with pytest.raises(ValueError, match="trial mode 'random': a controller acts in mode 'scripted' or labels"):
        run_trial(fake_env, task, None, EPISODES, "random", controller=PortSearch())


def test_search_bc_pulls_the_actors_mean_action_towards_the_searchs():
    """search_bc_weight: SAC updates given the search's transitions move the actor's mean action on their
    beliefs towards the search's actions (much more than the same updates without them); the model,
    which made the beliefs, is untouched."""
    from belief.meld.agent import MeldAgent
    from tests.belief_meld.test_model import _batch

    def trained(with_demo: bool):
        torch.manual_seed(0)
        ag = MeldAgent(tiny_agent_config(ac_batch=8, search_bc_weight=10.0), EPISODES, HORIZON)
        b = ag.to_tensors(_batch())
        _, beliefs = ag.model_step(b)
        t = ag.transitions(beliefs, b)
        demo = {**t, "actions": torch.full_like(t["actions"], 0.8)}
        model = {k: v.clone() for k, v in ag.model.state_dict().items()}
        for _ in range(300):
            stats = ag.sac_update(t, demo if with_demo else None)
        assert all(torch.equal(v, ag.model.state_dict()[k]) for k, v in model.items())
        err = (ag.sac.actor.act_mean(demo["obs"]) - demo["actions"]).pow(2).mean().item()
        return err, stats

    cloned, stats = trained(True)
    plain, plain_stats = trained(False)
    assert cloned < 0.25 * plain and "search_bc_loss" in stats and "search_bc_loss" not in plain_stats


def test_search_settings_are_refused_by_name():
    for bad, match in (({"search_bc_weight": -1.0}, "search_bc_weight must be a number >= 0"),
                       ({"search_bc_weight": True}, "search_bc_weight must be a number >= 0"),
                       ({"search_bc_weight": 1.0}, "needs ac_batch > 0")):
        with pytest.raises(ValueError, match=match):
            tiny_agent_config(**bad)
    agent = {"ac_batch": 8, "search_bc_weight": 1.0}
    for bad, match in (({"search_trials_per_task": -1}, "search_trials_per_task must be a whole number >= 0"),
                       ({"search_trials_per_task": 1.5}, "search_trials_per_task must be a whole number >= 0"),
                       ({"agent": agent}, "needs search_trials_per_task >= 1"),
                       ({"env": "fake", "search_trials_per_task": 1}, "widowx_cable twin only, not 'fake'")):
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad)


def test_search_trials_join_the_replay_are_cloned_and_survive_a_resume(tmp_path):
    """On the cable twin (3-step episodes, a tiny model): each training task gets its scripted trials in
    the replay and the search buffers, their env steps are counted, the actor-critic logs the cloning
    term, and a resumed run holds the same search trials."""
    tiny = {"model": {"base_depth": 2, "z1_dim": 3, "z2_dim": 5, "hidden": 16}, "sac": {"hidden": (16, 16)},
            "ac_batch": 8, "ac_cache_refresh": 1, "search_bc_weight": 1.0}
    cfg = dict(env="widowx_cable", env_kwargs={"episode_steps": 3}, action_scale=SCALE, agent=tiny,
               n_train_tasks=2, n_test_tasks=1, init_trials_per_task=1, pretrain_steps=1, iterations=1,
               train_steps_per_iter=1, batch_trials=2, eval_every=0, checkpoint_every=1, capacity_per_task=5,
               search_trials_per_task=2)
    trainer = Trainer(TrainConfig(**cfg), tmp_path)
    trainer.run()
    per_trial = 2 * 3
    tasks = {t.task_id for t in trainer.train_tasks}
    assert {t: b.size for t, b in trainer.search_buffers.buffers.items()} == dict.fromkeys(tasks, 2)
    assert sum(b.size for b in trainer.buffers.buffers.values()) == len(tasks) * 3 + trainer.iteration
    assert trainer.env_steps == per_trial * (len(tasks) * 3 + trainer.iteration)
    header = (tmp_path / "train.csv").read_text().splitlines()[0].split(",")
    assert "search_bc_loss" in header
    stored = trainer.search_buffers.stored()
    resumed = Trainer(TrainConfig(**{**cfg, "iterations": 2}), tmp_path)
    resumed.run(resume=True)
    assert set(resumed.search_buffers.buffers) == tasks
    for tid, trials in resumed.search_buffers.stored().items():
        assert np.array_equal(trials["actions"], stored[tid]["actions"])
    assert resumed.env_steps == trainer.env_steps + per_trial  # no new search trials on resume


def test_a_teacher_with_a_clone_radius_labels_the_way_to_a_port_and_leaves_the_push_in_to_the_reward(cable_env):
    """Same actions as without the radius; the labels stop while the tip is within the radius over the
    port the search heads for (seated or centring), and resume when it backs out of a ruled-out port."""
    task = cable_env.unwrapped.task_set.train[1]  # port 1; the search seats in 2, 0 and 3 first
    full = run_trial(cable_env, task, None, 2, "scripted", seed=1, controller=PortSearch(SCALE, order="nearest"))
    near = run_trial(cable_env, task, None, 2, "scripted", seed=1,
                     controller=PortSearch(SCALE, order="nearest", clone_radius=0.004))
    assert np.array_equal(full.trial.actions, near.trial.actions) and near.episode_success == [True, True]
    labelled = np.isfinite(near.trial.labels).all(-1).reshape(2, -1)
    assert np.array_equal(near.trial.labels[labelled.ravel()], full.trial.labels[labelled.ravel()])
    horizon = labelled.shape[1] - 1
    for ep in labelled:
        assert ep[0] and not ep[horizon - 1]  # from the start pose towards a port; seated at the end
    assert near.episode_ports_seated[0] == [2, 0, 3, 1]
    assert (np.diff(labelled[0].astype(int)) == 1).sum() == 3  # labelled again after backing out of each


def test_the_shaped_reward_at_the_nearest_port_pays_a_wrong_port_seated_and_the_latch_on_top():
    """shaped_port="nearest": seated in a wrong port the shaped reward is near its best (it was poor,
    measured at the correct port); latched in the correct one the bonus comes on top; success and the
    sparse reward are unchanged."""
    runs = {}
    for shaped in ("correct", "nearest"):
        env = ScaledActions(make_env("widowx_cable", episode_steps=40, family_options={"shaped_port": shaped}), SCALE)
        task = env.unwrapped.task_set.train[1]  # port 1; the search seats in 2, 0 and 3 first
        runs[shaped] = run_trial(env, task, None, 1, "scripted", seed=1,
                                 controller=PortSearch(SCALE, order="nearest"))
        env.close()
    correct, nearest = runs["correct"].trial, runs["nearest"].trial
    assert np.array_equal(correct.actions, nearest.actions) and np.array_equal(correct.reward_sparse, nearest.reward_sparse)
    latched = nearest.reward_sparse > 0
    assert latched.any() and (nearest.reward_dense[latched] > 2.0).all()
    in_wrong_port = (nearest.reward_dense > 0.2) & (correct.reward_dense < -0.1)  # paid only at the nearest
    assert in_wrong_port.sum() >= 3 * 3  # in each of the three wrong ports for a few steps


def test_an_unknown_shaped_port_family_option_or_reset_option_is_refused_by_name():
    with pytest.raises(ValueError, match=r"widowx_cable shaped_port must be one of \('correct', 'nearest', 'untried'\), got 'any'"):
        make_env("widowx_cable", family_options={"shaped_port": "any"})
    with pytest.raises(ValueError, match=r"widowx_cable: family_options \{'colour': 'red'\} not accepted"):
        make_env("widowx_cable", family_options={"colour": "red"})
    env = make_env("widowx_cable")
    with pytest.raises(ValueError, match=r"widowx_cable: options\['continue_trial'\] must be True or False, got 'yes'"):
        env.reset(options={"continue_trial": "yes"})
    env.close()


def test_the_per_episode_teacher_tries_one_port_an_episode_and_keeps_the_one_that_latched(cable_env):
    """order="per_episode": each episode seats in one port, the nearest not ruled out at its start, and
    stays there without the click; the next episode tries another; after the latch it returns there."""
    task = cable_env.unwrapped.task_set.train[1]  # port 1; from the start pose port 2 is nearest, then 1
    run = run_trial(cable_env, task, None, 3, "scripted", seed=1, controller=PortSearch(SCALE, order="per_episode"))
    assert run.episode_ports_seated == [[2], [1], [1]]  # episode 1 stays in port 2 without the click
    assert run.episode_success == [False, True, True]


@pytest.mark.parametrize("order, heads_for_after_seating_in_2", [("nearest", "another"), ("per_episode", 2)])
def test_the_per_episode_teacher_stays_in_a_port_seated_without_the_click_until_the_next_episode(
        cable_env, order, heads_for_after_seating_in_2):
    """Told that the plug seated in port 2 without the click (whoever put it there), the nearest-order
    teacher leaves it at once; the per-episode teacher keeps to it and rules it out from the next episode."""
    cable_env.reset(seed=0, options={"task": cable_env.unwrapped.task_set.train[1]})  # port 2 nearest the start
    teacher = PortSearch(SCALE, order=order)
    teacher.start_trial(np.random.default_rng(0))
    teacher.start_episode()
    teacher.act(cable_env, {"latched_port": 2, "success": False})
    assert (teacher.target != 2) if heads_for_after_seating_in_2 == "another" else (teacher.target == 2)
    teacher.start_episode()
    teacher.act(cable_env, {"latched_port": -1, "success": False})
    assert teacher.target != 2 and 2 in teacher.ruled_out


def _replay(env, task, actions, continue_trial: bool) -> np.ndarray:
    """Dense rewards of `actions` from the seed-1 start pose, as a new trial or a later episode of one."""
    env.reset(seed=1, options={"task": task, "continue_trial": continue_trial})
    return np.array([env.step(a)[1] for a in actions])


def test_the_untried_reward_stops_paying_a_port_that_failed_in_an_earlier_episode_of_the_trial():
    """shaped_port="untried": episode 1 seats in a wrong port and is paid there as under "nearest"; the
    same motion in episode 2 of that trial is not (measured at the nearest other port); a new trial
    forgets."""
    env = ScaledActions(make_env("widowx_cable", episode_steps=40, family_options={"shaped_port": "untried"}), SCALE)
    task = env.unwrapped.task_set.train[1]  # port 1; the nearest port from the seed-1 start is 2
    search = PortSearch(SCALE, order="per_episode")
    search.start_trial(np.random.default_rng(0))
    search.start_episode()
    _, info = env.reset(seed=1, options={"task": task})
    actions, seated = [], []
    for _ in range(40):
        actions.append(search.act(env, info))
        info = env.step(actions[-1])[-1]
        seated.append(info["latched_port"])
    first = _replay(env, task, actions, continue_trial=False)
    again = _replay(env, task, actions, continue_trial=True)
    fresh = _replay(env, task, actions, continue_trial=False)
    trial = run_trial(env, task, None, 2, "scripted", seed=1, controller=PortSearch(SCALE, order="per_episode"))
    ruled_out = env.unwrapped.family.ruled_out  # run_trial tells the env its episode 2 continues the trial
    env.close()
    assert trial.episode_ports_seated[0] == [2] and ruled_out == {2}
    in_port = np.array(seated) == 2
    assert in_port.sum() >= 5 and not (np.array(seated) == 1).any()  # seated in port 2, never the click
    assert np.array_equal(first, fresh)
    assert (first[in_port] > 0.2).all() and (again[in_port] < 0.0).all()
