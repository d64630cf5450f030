"""PERIL 2D families and PEARL's point robot: solvable by the expert, not by chance, goal hidden,
reproducible, strict about actions, contacts real."""

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401  (registers the ids)
from sim.pymunk2d import expert as ex
from sim.pymunk2d import families as fam
from sim.pymunk2d.registration import SHORT_NAMES
from sim.pymunk2d.task_sets import make_task_set

ALL = ["reach2d", "stick2d", "peg2d", "key2d", "point_robot"]


def make(short, **kw):
    return gym.make(SHORT_NAMES[short], **kw).unwrapped


def episode(env, task, seed, policy):
    env.reset(seed=seed, options={"task": task})
    ok = False
    for _ in range(env.episode_steps):
        _, _, terminated, truncated, info = env.step(policy(env))
        ok = ok or info["success"]
        assert not terminated
    assert truncated
    return ok


@pytest.mark.parametrize("short", ALL)
def test_expert_solves_held_out_tasks(short):
    env = make(short)
    results = [episode(env, task, seed, lambda e: e.expert_action()) for task in env.task_set.test
               for seed in (0, 1)]
    assert len(results) >= 20
    assert np.mean(results) >= 0.95, f"{short}: expert success {np.mean(results):.2f}"


@pytest.mark.parametrize("short", ALL)
def test_random_policy_rarely_succeeds(short):
    env = make(short)
    rng = np.random.default_rng(0)
    results = [episode(env, task, seed, lambda e: rng.uniform(e.action_space.low, e.action_space.high))
               for task in env.task_set.test for seed in (0, 1)]
    assert np.mean(results) <= 0.1, f"{short}: random success {np.mean(results):.2f}"


@pytest.mark.parametrize("short", ALL)
def test_goal_not_in_state_observation(short):
    env = make(short)
    first, second = env.task_set.test[0], env.task_set.test[1]
    assert not np.allclose(first.descriptor, second.descriptor)
    obs_a, info_a = env.reset(seed=5, options={"task": first})
    obs_b, info_b = env.reset(seed=5, options={"task": second})
    # Same seed, different hidden task: identical observation; only the privileged info differs.
    np.testing.assert_array_equal(obs_a, obs_b)
    assert not np.allclose(info_a["task"], info_b["task"])
    assert obs_a.shape == ((2,) if short == "point_robot" else (4,))


def test_reach_image_observation_hides_the_goal():
    env = make("reach2d", image_obs=True)
    a, _ = env.reset(seed=3, options={"task": env.task_set.test[0]})
    b, _ = env.reset(seed=3, options={"task": env.task_set.test[1]})
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("short", ALL)
def test_same_seed_same_actions_reproduce_exactly(short):
    actions = np.random.default_rng(1).uniform(-1, 1, size=(30, 3 if short != "point_robot" else 2)) * (
        0.1 if short == "point_robot" else 1.0)

    def run(seed):
        env = make(short)
        obs, _ = env.reset(seed=seed, options={"task": env.task_set.test[2]})
        out = [obs]
        for a in actions:
            obs, r, *_ = env.step(a)
            out += [obs, np.array([r])]
        return np.concatenate([np.ravel(o) for o in out])

    np.testing.assert_array_equal(run(7), run(7))
    if short != "point_robot":  # the point robot's start is deterministic (the origin), as in PEARL
        assert not np.array_equal(run(7), run(8))


@pytest.mark.parametrize("short", ALL)
def test_invalid_actions_rejected_with_clear_errors(short):
    env = make(short)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(env.action_space.shape))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(5))
    bad = np.zeros(env.action_space.shape)
    bad[0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        env.step(bad)
    with pytest.raises(ValueError, match="task"):
        env.reset(options={"task": "peg2d-test-00"})


def test_wrong_family_task_rejected():
    env = make("peg2d")
    with pytest.raises(ValueError, match="cannot host"):
        env.reset(options={"task": make_task_set("key2d").test[0]})


def push_in(env, tilt, steps=60):
    """Line up in front of the hole with the peg tilted by `tilt` rad, then push along the axis."""
    fx = env.fixture
    angle = fx.params["angle"]
    info = {}
    for k in range(steps):
        ee = env.arm.ee_pose()
        target = fx.world(-0.03 if k < 25 else 0.09, 0.0)
        _, _, _, _, info = env.step(ex._to_action(env, target, angle + tilt, ee, 0.5))
    return info


def test_tilted_peg_jams_on_the_hole_edge():
    env = make("peg2d")
    task = env.task_set.test[0]
    env.reset(seed=0, options={"task": task})
    assert push_in(env, 0.0)["success"]
    env.reset(seed=0, options={"task": task})
    info = push_in(env, 0.3)
    depth, _ = env.fixture.local(env.arm.ee_pose())
    assert not info["success"] and depth < fam.PEG_SUCCESS_DEPTH / 2  # stuck at the mouth


def test_key_must_be_turned_to_the_hidden_angle():
    env = make("key2d")
    task = env.task_set.test[0]
    env.reset(seed=0, options={"task": task})
    fx = env.fixture
    for k in range(40):  # line up, insert, never turn
        ee = env.arm.ee_pose()
        target = fx.world(-0.03 if k < 20 else 0.075, 0.0)
        _, _, _, _, info = env.step(ex._to_action(env, target, fx.params["angle"], ee, 0.5))
    assert fx.unlatched and not info["success"]
    assert info["dense_reward"] < -0.5 * abs(task.params["turn"]) + 0.02
    for _ in range(20):
        _, _, _, _, info = env.step(env.expert_action())
    assert info["success"] and abs(fx.turn() - task.params["turn"]) < fam.KEY_TURN_TOLERANCE


def test_stick_presses_a_spring_loaded_button():
    env = make("stick2d")
    env.reset(seed=0, options={"task": env.task_set.test[0]})
    presses = []
    for _ in range(60):
        env.step(env.expert_action())
        presses.append(env.fixture.press())
    assert max(presses) >= fam.STICK_SUCCESS_PRESS
    assert min(presses) > -1e-3 and max(presses) <= fam.STICK_TRAVEL + 1e-3  # the groove bounds travel


def test_point_robot_rewards_follow_pearl():
    env = make("point_robot", reward_mode="sparse")
    task = env.task_set.test[0]
    env.reset(seed=0, options={"task": task})
    goal = np.asarray(task.params["goal"])
    _, r, _, _, info = env.step(np.array([0.05, 0.05]))
    assert r == 0.0 and info["dense_reward"] == pytest.approx(-np.linalg.norm(goal - [0.05, 0.05]))
    for _ in range(19):
        _, r, _, _, info = env.step(env.expert_action())
    assert info["success"] and r == pytest.approx(1.0 + info["dense_reward"])
    assert np.linalg.norm(goal) == pytest.approx(1.0) and goal[1] >= 0  # on the unit upper half circle
    _, _, _, _, info = env.step(np.array([5.0, 5.0]))  # clipped to the box, like PEARL's squashed policy
    assert np.allclose(env.position, goal + [0.1, 0.1])


def test_task_sets_are_seeded_disjoint_and_sized_as_peril():
    for short in ("reach2d", "stick2d", "peg2d", "key2d"):
        ts = make_task_set(short, seed=0)
        assert (len(ts.train), len(ts.test)) == (40, 10)
        ids = [t.task_id for t in ts.train + ts.test]
        assert len(set(ids)) == 50
        again = make_task_set(short, seed=0)
        assert all(np.array_equal(a.descriptor, b.descriptor) for a, b in zip(ts.test, again.test, strict=True))
        other = make_task_set(short, seed=1)
        assert not np.array_equal(ts.test[0].descriptor, other.test[0].descriptor)
        assert ts.by_id(ts.test[3].task_id) is ts.test[3]
    multi = make_task_set("multi2d")
    assert {t.family for t in multi.train} == set(fam.FAMILIES) and len(multi.test) == 40
    assert all(t.descriptor.shape == (fam.DESCRIPTOR_SIZE,) for t in multi.train)
    pts = make_task_set("point_robot")
    assert (len(pts.train), len(pts.test)) == (80, 20)


def test_multi_family_env_switches_tools():
    env = make("multi2d")
    for task in make_task_set("multi2d").test[::10]:
        assert episode(env, task, 0, lambda e: e.expert_action())


def test_gymnasium_env_checker_passes():
    from gymnasium.utils.env_checker import check_env

    for short in ALL:
        check_env(make(short), skip_render_check=True)
        check_env(make(short, image_obs=True), skip_render_check=True)
