"""The rig and success-sensor nodes as real processes: the task protocol the trial runner uses."""

import math
import time

import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from std_msgs.msg import String

from meldbot import topics
from reset_rig.rig import load_task_table

pytestmark = pytest.mark.ros

RIG_PARAMS = dict(poll_period_s=0.02, reconnect_period_s=0.2, response_timeout_s=1.0, boot_timeout_s=2.0,
                  publish_rate_hz=20.0)


def test_rig_node_answers_task_requests_and_publishes_joint_states(ros_graph, emulator):
    tasks = load_task_table()
    current = ros_graph.subscribe(topics.TASK_CURRENT)
    joints = ros_graph.subscribe(topics.RIG_JOINT_STATES)
    diags = ros_graph.subscribe(topics.DIAGNOSTICS)
    node = ros_graph.start_node("reset_rig", params={"port": emulator.port, **RIG_PARAMS})
    request = ros_graph.publisher(topics.TASK_REQUEST)
    request.publish(String(data="train-03"))  # latched: the node sees it whenever it comes up

    current.wait(1, timeout=90, predicate=lambda m: m.data == "train-03")
    task = tasks["train-03"]
    assert emulator.mpos[0] == pytest.approx(-98.0 + task.rail_mm, abs=1e-3)
    msg = joints.wait(1, timeout=30, predicate=lambda m: abs(m.position[0] - task.rail_mm / 1000) < 1e-6)[-1]
    assert list(msg.name) == ["rig_rail", "rig_rotation"]
    assert msg.position[1] == pytest.approx(math.radians(task.rotation_deg), abs=1e-6)  # SI on the wire
    diags.wait(1, timeout=30, predicate=lambda m: any(s.name == "reset_rig" and s.message.startswith("idle")
                                                     for s in m.status))

    # an out-of-travel command is refused before anything reaches GRBL
    ros_graph.wait_for_publisher(topics.RIG_JOINT_STATES)
    cmd = ros_graph.publisher(topics.RIG_COMMANDS)
    lines_before = len(emulator.lines)
    cmd.publish(topics.float_array_msg([0.2, 0.0]))  # rail 200 mm: beyond the 90 mm travel
    time.sleep(1.0)
    assert len(emulator.lines) == lines_before
    assert node.returncode is None

    # the next trial's task: same protocol again
    request.publish(String(data="test-05"))
    current.wait(1, timeout=60, predicate=lambda m: m.data == "test-05")
    assert emulator.mpos[1] == pytest.approx(-45.0 + tasks["test-05"].rotation_deg, abs=1e-3)
    reply = ros_graph.call(topics.RIG_GOTO_TASK, timeout=60)
    assert reply.success, reply.message
    assert "refused, nothing sent" in node.output()


def test_rig_node_recovers_from_disconnect_and_alarm_and_returns_to_the_requested_task(ros_graph, emulator):
    current = ros_graph.subscribe(topics.TASK_CURRENT)
    ros_graph.start_node("reset_rig", params={"port": emulator.port, "rehome_after_alarm": False, **RIG_PARAMS})
    request = ros_graph.publisher(topics.TASK_REQUEST)
    request.publish(String(data="train-07"))
    current.wait(1, timeout=90, predicate=lambda m: m.data == "train-07")
    current.clear()
    emulator.unplug()
    current.wait(1, timeout=30, predicate=lambda m: m.data == "")  # withdrawn while the pose is unknown
    emulator.replug()
    current.wait(1, timeout=60, predicate=lambda m: m.data == "train-07")
    assert emulator.homings == 2

    # a hard limit mid-move: reported as an alarm, the task is not announced, moves wait for homing
    diags = ros_graph.subscribe(topics.DIAGNOSTICS)
    emulator.trip_limit_during_next_move(0.5)
    request.publish(String(data="train-08"))
    alarm = diags.wait(1, timeout=60, predicate=lambda m: any("ALARM:1 (Hard limit" in s.message for s in m.status))
    assert alarm[0].status[0].level == DiagnosticStatus.ERROR
    assert all(m.data != "train-08" for m in current.messages)
    reply = ros_graph.call(topics.RIG_HOME, timeout=60)
    assert reply.success, reply.message
    current.wait(1, timeout=60, predicate=lambda m: m.data == "train-08")  # resumes the requested task
    assert emulator.mpos[0] == pytest.approx(-98.0 + load_task_table()["train-08"].rail_mm, abs=1e-3)


def test_success_node_publishes_debounced_success_from_carrier(ros_graph, tmp_path):
    sysfs = tmp_path / "net"
    (sysfs / "eth1").mkdir(parents=True)
    (sysfs / "eth1" / "carrier").write_text("0\n")
    success = ros_graph.subscribe(topics.SUCCESS, namespace="arm")
    reward = ros_graph.subscribe(topics.SPARSE_REWARD, namespace="arm")
    ros_graph.start_node("success_sensor", namespace="arm",
                         params={"interface": "eth1", "sysfs_net": str(sysfs), "debounce_on_s": 0.1})
    success.wait(1, timeout=60)
    assert not any(m.data for m in success.messages)
    (sysfs / "eth1" / "carrier").write_text("1\n")
    success.wait(1, timeout=30, predicate=lambda m: m.data)
    reward.wait(1, timeout=30, predicate=lambda m: m.data == 1.0)
