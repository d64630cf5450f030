"""The Pymunk twin node hosting a 2D family over DDS: contract topics, task protocol, and the same
trajectory as the in-process env for the same seed and joint velocities."""

import time

import numpy as np
import pytest

from meldbot import topics
from sim.pymunk2d.env import Planar2DEnv

pytestmark = pytest.mark.ros
NS = "arm"


def start_twin(ros_graph, **params):
    return ros_graph.start_node("pymunk_twin", name="twin", namespace=NS, params=params)


def wait_matched(pub, timeout=60.0):
    deadline = time.monotonic() + timeout
    while pub.get_subscription_count() == 0:
        assert time.monotonic() < deadline, "the twin never subscribed to the commands"
        time.sleep(0.05)


def test_twin_replays_the_in_process_env_exactly(ros_graph):
    seed, task_id = 3, "key2d-test-02"
    twin = start_twin(ros_graph, family="key2d", initial_task=task_id, seed=seed, lockstep=True)
    states = ros_graph.subscribe(topics.JOINT_STATES, namespace=NS)
    observations = ros_graph.subscribe(topics.STATE_OBSERVATION, namespace=NS)
    shaped = ros_graph.subscribe(topics.SHAPED_REWARD, namespace=NS)
    commands = ros_graph.publisher(topics.JOINT_VELOCITY_COMMANDS, namespace=NS)
    wait_matched(commands)
    for topic in (topics.JOINT_STATES, topics.STATE_OBSERVATION, topics.SHAPED_REWARD):
        ros_graph.wait_for_publisher(topic, namespace=NS)
    time.sleep(0.5)  # discovery is symmetric but not simultaneous: let our subscriptions match too

    env = Planar2DEnv("key2d")
    env.reset(seed=seed, options={"task": env.task_set.by_id(task_id)})
    rng = np.random.default_rng(0)
    expected_q, expected_obs, expected_r = [], [], []
    for k in range(15):
        qd = rng.uniform(-1.5, 1.5, size=3)
        commands.publish(topics.float_array_msg(qd))
        states.wait(count=k + 1, timeout=60)  # lockstep: one step per command
        _, reward, _, _, _ = env.step_joint_velocities(qd)
        expected_q.append(env.arm.joint_positions())
        expected_obs.append(np.concatenate([env.state_observation().astype(np.float64), env.arm.joint_positions()]))
        expected_r.append(reward)
    got_q = np.array([m.position for m in states.wait(count=15)])
    np.testing.assert_array_equal(got_q, np.array(expected_q))
    np.testing.assert_array_equal(np.array([m.data for m in shaped.wait(count=15)]), expected_r)
    got_obs = np.array([m.data for m in observations.wait(count=15)])
    np.testing.assert_array_equal(got_obs, np.array(expected_obs))
    assert twin.returncode is None


def test_twin_hosts_a_family_on_the_contract_topics(ros_graph):
    from std_msgs.msg import String

    start_twin(ros_graph, family="peg2d", initial_task="test-01")
    current = ros_graph.subscribe(topics.TASK_CURRENT)
    pair = ros_graph.subscribe(topics.PAIRED_IMAGE, namespace=NS)
    obs = ros_graph.subscribe(topics.STATE_OBSERVATION, namespace=NS)
    states = ros_graph.subscribe(topics.JOINT_STATES, namespace=NS)
    assert list(states.wait(count=2)[-1].name) == ["shoulder", "elbow", "wrist"]
    assert len(obs.wait(count=1)[0].data) == 7
    assert topics.msg_to_image(pair.wait(count=1)[0]).shape == (64, 128, 3)
    current.wait(count=1, predicate=lambda m: m.data == "test-01")
    ros_graph.publisher(topics.TASK_REQUEST).publish(String(data="peg2d-test-05"))
    current.wait(count=1, predicate=lambda m: m.data == "peg2d-test-05")
    assert ros_graph.call(topics.ARM_HOME, namespace=NS).success


def test_twin_refuses_an_unknown_family_clearly(ros_graph):
    twin = start_twin(ros_graph, family="juggle2d")
    assert twin.wait(60) == 2
    assert "unknown twin family 'juggle2d'" in twin.output()


def test_trial_runner_runs_trials_on_a_2d_family(ros_graph, tmp_path):
    """The foundation's graph (policy server + trial runner) drives a 2D family twin unchanged."""
    import json

    from belief.policy_file import save_policy
    from belief.untrained import untrained_policy

    joints = ["shoulder", "elbow", "wrist"]
    module, meta = untrained_policy(joints, velocity_limit=2.0)
    policy = save_policy(module, meta, tmp_path / "untrained.ts")
    start_twin(ros_graph, family="stick2d")
    ros_graph.start_node("policy_server", name="policy_server", namespace=NS,
                         params={"model_path": str(policy), "joint_names": joints})
    runner = ros_graph.start_node("trial_runner", params={
        "tasks": "test-00,stick2d-test-01", "episodes_per_trial": 1, "episode_steps": 5,
        "journal": str(tmp_path / "journal.json")})
    assert runner.wait(300) == 0, runner.output()
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert set(journal["trials"]) == {"test-00", "stick2d-test-01"}
    assert all(t["complete"] and len(t["episodes"]) == 1 for t in journal["trials"].values())
