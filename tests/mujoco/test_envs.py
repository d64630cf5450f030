"""MuJoCo twin envs: the expert inserts only into the correct port, limits hold under any command,
the goal is invisible in the images, and seeds reproduce. Episodes are kept few; rendering fewer."""

from __future__ import annotations

import dataclasses
import importlib

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401  (registers the ids)
from sim.mujoco import registration
from sim.mujoco.cable import N_PORTS, PORT_PITCH, SEAT_DEPTH, insertion_reward
from sim.tasks import balanced_labels

CABLE = "meldbot/WidowXCable-v0"


def run_expert(env, task, seed, max_steps=40, expert_task=None, stop=None):
    """Run the privileged expert (optionally aimed at `expert_task`) until `stop(info)` (default:
    success when aimed at the real task) or max_steps; returns the infos."""
    if stop is None and expert_task is None:
        stop = lambda info: info["success"]  # noqa: E731
    env.reset(seed=seed, options={"task": task})
    infos = []
    for _ in range(max_steps):
        if expert_task is not None:
            env.task = expert_task  # aim the expert elsewhere...
            action = env.expert_action()
            env.task = task  # ...but score against the real task
        else:
            action = env.expert_action()
        infos.append(env.step(action)[4])
        if stop is not None and stop(infos[-1]):
            break
    return infos


@pytest.fixture(scope="module")
def cable_env():
    env = gym.make(CABLE).unwrapped
    yield env
    env.close()


def test_registration_short_names_and_task_sets():
    assert set(registration.SHORT_NAMES.values()) == set(registration.ENVS)
    for short, target in registration.TASK_SETS.items():
        module, func = target.split(":")
        ts = getattr(importlib.import_module(module), func)(seed=0)
        assert (len(ts.train), len(ts.test)) == (20, 10), short
        again = getattr(importlib.import_module(module), func)(seed=0)
        assert [t.task_id for t in ts.train] == [t.task_id for t in again.train]
        assert all(np.array_equal(a.descriptor, b.descriptor) for a, b in zip(ts.test, again.test, strict=True))
        other = getattr(importlib.import_module(module), func)(seed=1)
        assert not np.array_equal(ts.test[0].descriptor, other.test[0].descriptor)


def test_cable_rig_poses_span_the_rig_axes():
    ts = importlib.import_module("sim.mujoco.task_sets").widowx_cable(seed=0)
    rails = np.array([t.params["rail"] for t in ts.train + ts.test])
    rots = np.array([t.params["rotation"] for t in ts.train + ts.test])
    assert np.abs(rails).max() <= 0.01 and np.ptp(rails) > 0.01  # within 2 cm of rail travel
    assert np.abs(rots).max() <= np.radians(8) and np.ptp(rots) > np.radians(8)  # within 16 deg
    for split, n in ((ts.train, 20), (ts.test, 10)):  # every port, equally often to within one task
        counts = np.bincount([t.params["port"] for t in split], minlength=N_PORTS)
        assert counts.sum() == n and counts.max() - counts.min() <= 1, counts


@pytest.mark.parametrize("n", [0, 3, 10, 20])
def test_balanced_labels_hold_every_class_equally_often_in_random_order(n):
    orders = set()
    for seed in range(8):
        labels = balanced_labels(np.random.default_rng(seed), n, 4)
        counts = np.bincount(labels, minlength=4)
        assert len(labels) == n and counts.max() - counts.min() <= 1, counts
        orders.add(tuple(labels.tolist()))
    assert n < 2 or len(orders) > 1  # shuffled by the seed, not a fixed cycle
    with pytest.raises(ValueError, match="n_classes >= 1"):
        balanced_labels(np.random.default_rng(0), 4, 0)


def test_expert_inserts_into_correct_port_on_held_out_tasks(cable_env):
    env = cable_env
    successes = 0
    for i, task in enumerate(env.task_set.test):
        infos = run_expert(env, task, seed=100 + i)
        assert all(inf["sparse_reward"] == float(inf["success"]) for inf in infos)
        assert all(inf["latched_port"] in (-1, task.params["port"]) for inf in infos)
        successes += infos[-1]["success"]
        assert infos[-1]["port_at_tip"] == task.params["port"] and infos[-1]["at_correct_port"]
        if infos[-1]["success"]:  # latched: centred, square, >= 13 mm deep: more than centred on the opening
            assert infos[-1]["dense_reward"] > insertion_reward(np.zeros(3), 0.0)
    assert successes >= 0.9 * len(env.task_set.test)


def test_wrong_port_is_entered_but_never_succeeds(cable_env):
    env = cable_env
    for i, task in enumerate(env.task_set.test[:3]):
        wrong = (task.params["port"] + 1 + i) % N_PORTS
        decoy = dataclasses.replace(task, params={**task.params, "port": wrong})
        infos = run_expert(env, task, seed=7 + i, expert_task=decoy, stop=lambda inf, w=wrong: inf["latched_port"] == w)
        assert any(inf["latched_port"] == wrong for inf in infos), "plug never seated in the wrong port"
        assert not any(inf["success"] for inf in infos)
        assert infos[-1]["port_at_tip"] == wrong and not infos[-1]["at_correct_port"]
        assert all(inf["sparse_reward"] == 0.0 for inf in infos)
        assert infos[-1]["dense_reward"] < 0.0  # seated in a wrong port: worse than hovering over the right one


def test_shaped_reward_pays_for_centring_over_the_opening_and_only_at_the_correct_port():
    r = insertion_reward
    at_opening = [r(np.array([lat, 0.0, 0.0]), 0.0) for lat in (0.004, 0.002, 0.001, 0.0005, 0.0)]
    assert np.all(np.diff(at_opening) > 0.05)  # each step of the last 4 mm of centring is worth > 0.05
    seated, hover = r(np.array([0.0, 0.0, SEAT_DEPTH]), 0.0), r(np.array([0.0, 0.0, -0.02]), 0.0)
    assert seated > at_opening[-1] > hover
    assert r(np.array([0.0, 0.0, SEAT_DEPTH]), np.radians(8.0)) < seated - 0.1  # the router's yaw matters
    assert r(np.array([PORT_PITCH, 0.0, SEAT_DEPTH]), 0.0) < hover  # the next port, seated, pays less


@pytest.mark.parametrize("env_id", [CABLE, "meldbot/SawyerPeg-v0"])
def test_joint_and_velocity_limits_hold_under_any_command(env_id):
    env = gym.make(env_id).unwrapped
    sim_ = env.sim
    lo, hi, vmax = np.array(sim_.arm.lower), np.array(sim_.arm.upper), env.vmax
    rng = np.random.default_rng(0)
    env.reset(seed=3)
    worst_q, worst_v = 0.0, 0.0
    for _ in range(30):  # saturating, sign-flipping and absurdly large commands
        action = rng.choice([-1.0, 1.0], sim_.arm.n) * rng.choice([0.3, 1.0, 50.0, 1e6])
        for _ in range(env.ticks_per_step):
            sim_.run(np.clip(action, -1, 1) * vmax, 1)
            worst_q = max(worst_q, float(np.max(np.maximum(lo - sim_.q, sim_.q - hi))))
            worst_v = max(worst_v, float(np.max(np.abs(sim_.qdot) / vmax)))
        env.step(action)  # the env clips out-of-range actions too
    assert worst_v <= 1.0 + 1e-9
    assert worst_q <= 0.01  # rad: limit constraint is stiff (solreflimit 4 ms)
    assert np.all(np.isfinite(sim_.data.qpos))
    env.close()


def test_invalid_actions_and_options_are_rejected(cable_env):
    cable_env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        cable_env.step(np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        cable_env.step(np.array([0, np.nan, 0, 0, 0]))
    with pytest.raises(ValueError, match="reward_mode"):
        gym.make(CABLE, reward_mode="bogus")
    with pytest.raises(ValueError, match="Task"):
        cable_env.reset(options={"task": "train-00"})


def test_seeds_reproduce_and_differ(cable_env):
    def rollout(seed):
        obs, _ = cable_env.reset(seed=seed)
        traj = [obs]
        rng = np.random.default_rng(5)
        for _ in range(4):
            obs, reward, *_ = cable_env.step(rng.uniform(-0.3, 0.3, 5))
            traj += [obs, np.array([reward])]
        return np.concatenate(traj)

    a, b, c = rollout(11), rollout(11), rollout(12)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sparse_reward_mode_and_info_contract():
    env = gym.make(CABLE, reward_mode="sparse", control_hz=5.0, episode_steps=3).unwrapped
    obs, info = env.reset(seed=0)
    assert obs.shape == (17,) and obs.dtype == np.float32
    for step in range(3):
        obs, reward, terminated, truncated, info = env.step(np.zeros(5))
        assert reward == info["sparse_reward"] == 0.0 and not terminated
        assert truncated == (step == 2)
        assert info["task"].dtype == np.float32 and {"dense_reward", "success"} <= set(info)
    assert env.period == pytest.approx(0.2, abs=env.sim.servo_dt)
    env.close()


def _images_for(task, seed, domain_randomization=False, steps=2):
    env = gym.make(CABLE, image_obs=True, domain_randomization=domain_randomization).unwrapped
    obs, _ = env.reset(seed=seed, options={"task": task})
    frames = [obs]
    for k in range(steps):
        frames.append(env.step(np.full(5, 0.2 * (-1) ** k))[0])
    env.close()
    return frames


def test_goal_port_cannot_be_seen_in_images():
    ts = importlib.import_module("sim.mujoco.task_sets").widowx_cable(seed=0)
    base = ts.test[0]
    other_port = dataclasses.replace(base, params={**base.params, "port": (base.params["port"] + 2) % N_PORTS})
    a, b = _images_for(base, seed=4), _images_for(other_port, seed=4)
    assert a[0].shape == (64, 128, 3) and a[0].dtype == np.uint8
    assert a[0].std() > 10  # a real picture, not a blank frame
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa, fb), "images differ when only the correct port differs"
    # the rig pose, which the cameras may see, does change the picture
    moved = dataclasses.replace(base, params={**base.params, "rail": -base.params["rail"]})
    assert not np.array_equal(a[0], _images_for(moved, seed=4, steps=0)[0])


def test_domain_randomisation_is_seeded_and_keeps_ports_identical():
    ts = importlib.import_module("sim.mujoco.task_sets").widowx_cable(seed=0)
    base = ts.test[1]
    other_port = dataclasses.replace(base, params={**base.params, "port": (base.params["port"] + 1) % N_PORTS})
    a = _images_for(base, seed=9, domain_randomization=True, steps=0)[0]
    b = _images_for(other_port, seed=9, domain_randomization=True, steps=0)[0]
    c = _images_for(base, seed=10, domain_randomization=True, steps=0)[0]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("env_id,key", [("meldbot/SawyerReach-v0", None), ("meldbot/SawyerPeg-v0", "box")])
def test_sawyer_expert_solves_held_out_tasks(env_id, key):
    env = gym.make(env_id).unwrapped
    for i, task in enumerate(env.task_set.test[:3]):
        assert run_expert(env, task, seed=i, max_steps=25)[-1]["success"], task
    if key:  # the peg in a wrong box is no success
        task = env.task_set.test[0]
        decoy = dataclasses.replace(task, params={**task.params, key: (task.params[key] + 1) % 4})
        infos = run_expert(env, task, seed=0, max_steps=12, expert_task=decoy)
        assert not any(inf["success"] for inf in infos)
        assert infos[-1]["goal_distance"] > 0.1
    env.close()


@pytest.mark.parametrize("env_id,image_obs", [(CABLE, True), ("meldbot/SawyerPeg-v0", False)])
def test_gymnasium_env_checker_passes(env_id, image_obs):
    import warnings

    from gymnasium.utils.env_checker import check_env

    env = gym.make(env_id, image_obs=image_obs).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the state space is unbounded on purpose
        check_env(env, skip_render_check=True)
    env.close()


def test_blown_up_physics_cuts_the_episode_instead_of_teaching_a_teleport():
    import gymnasium as gym

    env = gym.make("meldbot/WidowXCable-v0")
    env.reset(seed=0)
    _, _, _, truncated, info = env.step(np.zeros(5, dtype=np.float32))
    assert not truncated and info["unstable"] is False
    env.unwrapped.sim.data.qvel[:] = 1e30  # MuJoCo detects the bad accelerations and resets the state
    _, _, _, truncated, info = env.step(np.zeros(5, dtype=np.float32))
    assert info["unstable"] is True and truncated
    env.close()
