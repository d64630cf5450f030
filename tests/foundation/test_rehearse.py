"""`meldbot rehearse` from the command line: the launch file, every node, the table and the MCAP."""

import json
import sys

import pytest

from meldbot.mcap_schema import recorded_topic_counts

pytestmark = pytest.mark.ros


def test_rehearse_runs_launch_file_prints_table_and_records(ros_graph, tmp_path):
    out = tmp_path / "rehearsal"
    proc = ros_graph.start([sys.executable, "-m", "meldbot.cli", "rehearse", "--out-dir", str(out),
                            "--tasks", "train-00,test-00", "--episode-steps", "6"], "rehearse")
    assert proc.wait(400) == 0, proc.output()[-4000:]
    text = proc.output()
    assert "Trial summary" in text and "train-00" in text and "test-00" in text and "success" in text
    journal = json.loads((out / "journal.json").read_text())
    assert [len(t["episodes"]) for t in journal["trials"].values()] == [2, 2]
    counts = recorded_topic_counts(out / "rehearsal.mcap")
    for topic in ("/arm/joint_states", "/arm/camera_pair/image_raw", "/arm/velocity_controller/commands",
                  "/arm/success", "/arm/reward/sparse"):
        assert counts.get(topic, 0) > 0, f"{topic} missing from the recording: {counts}"


def test_policy_server_commands_zero_when_stopped(ros_graph, tmp_path):
    import time

    import numpy as np
    from std_srvs.srv import SetBool

    from meldbot import topics
    from tests.foundation.policies import export_counting_policy

    model = export_counting_policy(tmp_path / "p.ts")
    server = ros_graph.start_node("policy_server", namespace="arm", params={"model_path": str(model), "stale_after_s": 1e6})
    commands = ros_graph.subscribe(topics.JOINT_VELOCITY_COMMANDS, namespace="arm")
    obs_pub = ros_graph.publisher(topics.STATE_OBSERVATION, namespace="arm")
    ros_graph.call(topics.POLICY_ENABLE, SetBool.Request(data=True))
    deadline = time.monotonic() + 60
    while not any(np.any(m.data) for m in commands.messages):
        obs_pub.publish(topics.float_array_msg([0.0] * 4))
        time.sleep(0.05)
        assert time.monotonic() < deadline
    # Inputs never go stale (stale_after_s is huge), so only the shutdown itself can command zero.
    assert server.stop() == 0, server.output()[-4000:]  # SIGINT while commanding motion
    commands.wait(count=1, timeout=30, predicate=lambda m: not any(m.data))
