"""Policy server: refuses mismatching models, keeps/resets belief, commands zero on stale or NaN."""

import numpy as np
import pytest

from belief.policy_file import LoadedPolicy
from meldbot import topics
from policy_server.core import PolicyRunner, PolicyServerConfig, PolicySpecError, check_spec
from tests.foundation.policies import counting_metadata, export_counting_policy


@pytest.fixture
def policy_ts(tmp_path):
    return LoadedPolicy(export_counting_policy(tmp_path / "p.ts"))


def test_spec_check_names_each_mismatch():
    config = PolicyServerConfig(joint_names=["waist", "shoulder", "elbow"], control_rate_hz=10.0)
    with pytest.raises(PolicySpecError) as err:
        check_spec(counting_metadata(obs_topic="camera/depth", rate=5.0), config)
    text = str(err.value)
    assert "camera/depth" in text and "not a topic of the contract" in text
    assert "['shoulder', 'elbow', 'wrist']" in text and "waist" in text
    assert "5.0 Hz" in text and "10.0 Hz" in text


def test_image_topic_requires_uint8_rgb():
    with pytest.raises(PolicySpecError, match="uint8 HxWx3"):
        check_spec(counting_metadata(obs_topic="camera_pair/image_raw", shape=(64, 128), dtype="uint8"),
                   PolicyServerConfig())


def test_belief_carries_across_ticks_and_resets(policy_ts):
    runner = PolicyRunner(policy_ts, PolicyServerConfig(autostart=True))
    runner.observe(np.ones(4, dtype=np.float32), arrival_s=0.0)
    for t in range(3):
        result = runner.tick(now_s=0.1 * t)
        assert result.status == "ok"
        np.testing.assert_allclose(result.command, [1.0, 1.0, 1.0])  # 0.5 * scale 2.0
    assert runner.state[0] == 3.0  # three steps remembered (episode boundaries do not reset it)
    runner.reset_belief()
    assert runner.state[0] == 0.0


def test_stale_and_missing_observation_command_zero(policy_ts):
    runner = PolicyRunner(policy_ts, PolicyServerConfig(autostart=True, stale_after_s=0.5))
    assert runner.tick(now_s=0.0).status == "no_observation"
    runner.observe(np.ones(4, dtype=np.float32), arrival_s=10.0)
    assert runner.tick(now_s=10.2).status == "ok"
    stale = runner.tick(now_s=11.0)
    assert stale.status == "stale" and not stale.command.any()


def test_nonfinite_model_output_commands_zero_and_keeps_belief(policy_ts):
    runner = PolicyRunner(policy_ts, PolicyServerConfig(autostart=True))
    runner.observe(np.ones(4, dtype=np.float32), arrival_s=0.0)
    runner.tick(now_s=0.0)
    runner.reward = 99.0  # the test policy returns NaN for this reward
    result = runner.tick(now_s=0.1)
    assert result.status == "nonfinite" and not result.command.any()
    assert runner.state[0] == 1.0  # the poisoned step did not touch the belief


def test_wrong_observation_shape_commands_zero(policy_ts):
    runner = PolicyRunner(policy_ts, PolicyServerConfig(autostart=True))
    runner.observe(np.ones(7, dtype=np.float32), arrival_s=0.0)
    result = runner.tick(now_s=0.0)
    assert result.status == "bad_observation" and "[7]" in result.detail


def test_disabled_server_commands_nothing(policy_ts):
    runner = PolicyRunner(policy_ts, PolicyServerConfig(autostart=False))
    runner.observe(np.ones(4, dtype=np.float32), arrival_s=0.0)
    assert runner.tick(0.0).status == "disabled"


@pytest.mark.ros
def test_node_refuses_mismatching_model_with_clear_error(ros_graph, tmp_path):
    model = export_counting_policy(tmp_path / "p.ts", joints=["a", "b", "c"])
    proc = ros_graph.start_node("policy_server", namespace="arm", params={"model_path": str(model)})
    assert proc.wait(60) == 2
    out = proc.output()
    assert "refusing model" in out and "['a', 'b', 'c']" in out and "Traceback" not in out


@pytest.mark.ros
def test_node_refuses_missing_model_file(ros_graph, tmp_path):
    proc = ros_graph.start_node("policy_server", namespace="arm", params={"model_path": str(tmp_path / "none.ts")})
    assert proc.wait(60) == 2
    assert "policy file not found" in proc.output()


@pytest.mark.ros
def test_node_steps_when_enabled_and_zeroes_when_input_goes_stale(ros_graph, tmp_path):
    import time

    from std_srvs.srv import SetBool

    model = export_counting_policy(tmp_path / "p.pt2")  # the torch.export container
    ros_graph.start_node("policy_server", namespace="arm", params={"model_path": str(model), "stale_after_s": 0.5})
    commands = ros_graph.subscribe(topics.JOINT_VELOCITY_COMMANDS, namespace="arm")
    obs_pub = ros_graph.publisher(topics.STATE_OBSERVATION, namespace="arm")
    ros_graph.call(topics.POLICY_ENABLE, SetBool.Request(data=True))
    # Feed observations until we see real (non-zero) commands.
    deadline = time.monotonic() + 60
    while not any(np.any(m.data) for m in commands.messages):
        obs_pub.publish(topics.float_array_msg([0.1, 0.2, 0.3, 0.4]))
        time.sleep(0.05)
        assert time.monotonic() < deadline, "policy never commanded motion"
    moving = [m for m in commands.messages if np.any(m.data)][0]
    np.testing.assert_allclose(moving.data, [1.0, 1.0, 1.0])
    # Stop the camera: the next commands must be zero.
    n = len(commands.messages)
    assert commands.wait(count=1, timeout=60, predicate=lambda m: not any(m.data), start=n)
    ros_graph.call(topics.POLICY_ENABLE, SetBool.Request(data=False))


def test_episode_start_clears_previous_action_and_reward_but_keeps_belief(policy_ts):
    runner = PolicyRunner(policy_ts, PolicyServerConfig(autostart=False))
    runner.set_enabled(True)
    runner.observe(np.ones(4, dtype=np.float32), arrival_s=0.0)
    runner.tick(now_s=0.0)
    runner.reward = 1.0
    assert runner.prev_action.any()
    runner.set_enabled(False)  # episode 1 ends
    runner.set_enabled(True)  # episode 2 of the same trial
    assert not runner.prev_action.any() and runner.reward == 0.0
    assert runner.state[0] == 1.0  # the belief remembers episode 1


@pytest.mark.parametrize("filters_final_frame", [False, True])
def test_episode_end_filters_the_final_frame_only_when_the_model_asks(tmp_path, filters_final_frame):
    """MELD (extra.filter_final_frame) sees the frame after the last action, with its reward, as in training."""
    path = export_counting_policy(tmp_path / "p.ts", extra={"filter_final_frame": filters_final_frame})
    runner = PolicyRunner(LoadedPolicy(path), PolicyServerConfig(autostart=False, stale_after_s=1.0))
    runner.set_enabled(True)
    runner.observe(np.ones(4, dtype=np.float32), arrival_s=0.0)
    runner.tick(now_s=0.0)
    runner.set_enabled(False, now_s=0.1)  # no frame since the last step: nothing to filter
    assert runner.state[0] == 1.0
    runner.set_enabled(True)
    runner.tick(now_s=0.2)
    runner.observe(np.full(4, 3.0, dtype=np.float32), arrival_s=0.3)  # the frame after the last action
    runner.reward = 1.0
    runner.set_enabled(False, now_s=0.4)
    assert runner.state[0] == (3.0 if filters_final_frame else 2.0)
    assert runner.state[1] == (3.0 if filters_final_frame else 1.0)
    runner.set_enabled(True)
    assert not runner.prev_action.any() and runner.reward == 0.0


def test_export_to_unknown_container_is_refused_and_writes_nothing(tmp_path):
    from belief.policy_file import save_policy
    from tests.foundation.policies import CountingPolicy, counting_metadata

    with pytest.raises(ValueError, match=r"must end in \.ts .* or \.pt2 .*policy\.onnx"):
        save_policy(CountingPolicy(), counting_metadata(), tmp_path / "policy.onnx")
    assert list(tmp_path.iterdir()) == []
