"""The simulated graph over DDS: twin + policy server + recorder + trial runner as separate processes."""

import json
import signal
import time

import pytest

from belief.policy_file import save_policy
from belief.untrained import untrained_policy
from meldbot import topics
from meldbot.mcap_schema import recorded_topic_counts

pytestmark = pytest.mark.ros
JOINTS = ["shoulder", "elbow", "wrist"]


@pytest.fixture
def untrained_ts(tmp_path):
    module, meta = untrained_policy(JOINTS, velocity_limit=1.5)
    return save_policy(module, meta, tmp_path / "untrained.ts")


def start_sim_and_policy(ros_graph, policy):
    ros_graph.start_node("pymunk_twin", name="twin", namespace="arm")
    ros_graph.start_node("policy_server", name="policy_server", namespace="arm",
                         params={"model_path": str(policy), "joint_names": JOINTS})


def start_trial_runner(ros_graph, journal, tasks="train-00,test-00,test-01", steps=8):
    return ros_graph.start_node("trial_runner", params={
        "tasks": tasks, "episodes_per_trial": 2, "episode_steps": steps, "journal": str(journal)})


def test_twin_publishes_contract_topics_and_obeys_task_protocol(ros_graph):
    from std_msgs.msg import String

    ros_graph.start_node("pymunk_twin", name="twin", namespace="arm")
    states = ros_graph.subscribe(topics.JOINT_STATES, namespace="arm")
    pair = ros_graph.subscribe(topics.PAIRED_IMAGE, namespace="arm")
    current = ros_graph.subscribe(topics.TASK_CURRENT)
    msg = states.wait(count=2)[-1]
    assert list(msg.name) == JOINTS and len(msg.velocity) == 3
    image = topics.msg_to_image(pair.wait(count=1)[0])
    assert image.shape == (64, 128, 3)
    ros_graph.publisher(topics.TASK_REQUEST).publish(String(data="test-03"))
    current.wait(count=1, predicate=lambda m: m.data == "test-03")


def test_twin_moves_under_velocity_commands(ros_graph):
    ros_graph.start_node("pymunk_twin", name="twin", namespace="arm")
    states = ros_graph.subscribe(topics.JOINT_STATES, namespace="arm")
    start = states.wait(count=1)[0].position[0]
    pub = ros_graph.publisher(topics.JOINT_VELOCITY_COMMANDS, namespace="arm")
    deadline = time.monotonic() + 60
    while states.messages[-1].position[0] < start + 0.2:
        pub.publish(topics.float_array_msg([0.5, 0.0, 0.0]))
        time.sleep(0.05)
        assert time.monotonic() < deadline, "shoulder did not move under a velocity command"


def test_rehearsal_graph_runs_trials_and_records_mcap(ros_graph, tmp_path, untrained_ts):
    start_sim_and_policy(ros_graph, untrained_ts)
    recorder = ros_graph.start_node("mcap_recorder", name="recorder", namespace="arm",
                                    params={"output": str(tmp_path / "run.mcap")})
    runner = start_trial_runner(ros_graph, tmp_path / "journal.json", tasks="train-00,test-00")
    assert runner.wait(300) == 0, runner.output()
    assert "Trial summary" in runner.output()
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert all(t["complete"] and len(t["episodes"]) == 2 for t in journal["trials"].values())
    assert all(e["steps"] == 8 for t in journal["trials"].values() for e in t["episodes"])
    assert recorder.stop() == 0, recorder.output()[-4000:]
    recorded = {t for t, n in recorded_topic_counts(tmp_path / "run.mcap").items() if n}
    assert {"/arm/joint_states", "/arm/camera_pair/image_raw", "/arm/velocity_controller/commands",
            "/arm/success", "/task/current"} <= recorded


def test_trial_runner_killed_mid_trial_resumes_without_losing_finished_episodes(ros_graph, tmp_path, untrained_ts):
    journal_path = tmp_path / "journal.json"
    start_sim_and_policy(ros_graph, untrained_ts)
    runner = start_trial_runner(ros_graph, journal_path)

    def journal():
        try:
            return json.loads(journal_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    # Wait until the first trial is complete and the second has one finished episode, then kill -9.
    deadline = time.monotonic() + 300
    while True:
        j = journal()
        if j and j["trials"]["train-00"]["complete"] and j["trials"]["test-00"]["episodes"]:
            break
        assert runner.returncode is None, runner.output()
        assert time.monotonic() < deadline, "trial runner made no progress"
        time.sleep(0.1)
    runner.signal(signal.SIGKILL)
    runner.wait(60)
    before = journal()

    resumed = start_trial_runner(ros_graph, journal_path)
    assert resumed.wait(300) == 0, resumed.output()
    after = journal()
    assert after["trials"]["train-00"] == before["trials"]["train-00"]  # finished trial untouched
    kept = after["trials"]["test-00"]["interrupted_attempts"][0]
    assert kept == before["trials"]["test-00"]["episodes"]  # the finished episode was kept
    assert all(t["complete"] for t in after["trials"].values())
    assert "resuming" in resumed.output()
