"""The MuJoCo twin node on the contract topics: joint states, cameras, rewards, rig and task protocol."""

from __future__ import annotations

import time

import numpy as np
import pytest

from meldbot import topics
from sim.mujoco.task_sets import widowx_cable

pytestmark = pytest.mark.ros

ARM_JOINTS = ["waist", "shoulder", "elbow", "wrist_angle", "wrist_rotate"]


def test_twin_node_publishes_contract_and_obeys_task_protocol(ros_graph):
    from std_msgs.msg import String

    params = {"camera_rate_hz": 2.0, "image_height": 48, "image_width": 80, "command_timeout_s": 0.4}
    joints = ros_graph.subscribe(topics.JOINT_STATES, namespace="arm")
    pair = ros_graph.subscribe(topics.PAIRED_IMAGE, namespace="arm")
    wrist = ros_graph.subscribe(topics.WRIST_IMAGE, namespace="arm")
    info = ros_graph.subscribe(topics.SCENE_INFO, namespace="arm")
    success = ros_graph.subscribe(topics.SUCCESS, namespace="arm")
    shaped = ros_graph.subscribe(topics.SHAPED_REWARD, namespace="arm")
    sparse = ros_graph.subscribe(topics.SPARSE_REWARD, namespace="arm")
    rig = ros_graph.subscribe(topics.RIG_JOINT_STATES)
    current = ros_graph.subscribe(topics.TASK_CURRENT)
    proc = ros_graph.start_node("mujoco_twin", name="twin", namespace="arm", params=params)

    js = joints.wait(3, timeout=120)[-1]
    assert list(js.name)[:6] == ARM_JOINTS + ["gripper"]
    assert len(js.position) == len(js.name) == len(js.velocity)
    image = pair.wait(1, timeout=60)[0]
    assert (image.height, image.width, image.encoding) == (64, 128, "rgb8")  # the policy's observation
    assert topics.msg_to_image(image).std() > 5
    assert (wrist.wait(1, timeout=30)[0].width, info.wait(1, timeout=30)[0].k[0] > 0) == (80, True)
    assert success.wait(1, timeout=30)[0].data is False
    assert shaped.wait(1, timeout=30)[0].data < 0 and sparse.wait(1, timeout=30)[0].data == 0.0
    assert current.wait(1, timeout=30, predicate=lambda m: m.data == "train-00")

    # task protocol: the rig drives to the requested task's pose, then /task/current names it
    task = widowx_cable(seed=0).by_id("test-03")
    ros_graph.publisher(topics.TASK_REQUEST).publish(String(data="test-03"))
    current.wait(1, timeout=60, predicate=lambda m: m.data == "test-03")
    goal = [task.params["rail"], task.params["rotation"]]
    there = rig.wait(1, timeout=30, predicate=lambda m: np.allclose(m.position, goal, atol=1e-6))[0]
    assert list(there.name) == ["rail", "rotation"]
    assert any(abs(m.velocity[1]) > 0 for m in rig.messages)  # it moved there, it did not teleport

    # velocity commands move the arm; the watchdog stops it when they go stale
    cmd_pub = ros_graph.publisher(topics.JOINT_VELOCITY_COMMANDS, namespace="arm")
    start = np.array(joints.messages[-1].position[:5])
    for _ in range(10):
        cmd_pub.publish(topics.float_array_msg([0.3, 0, 0, 0, 0]))
        time.sleep(0.05)
    joints.clear()
    moved = joints.wait(1, timeout=30, predicate=lambda m: m.position[0] - start[0] > 0.05)
    assert moved
    time.sleep(1.0)  # longer than command_timeout_s
    joints.clear()
    still = joints.wait(5, timeout=30)
    assert max(abs(m.velocity[0]) for m in still[-3:]) < 0.02

    # a wrong-length command is rejected (zero), not applied
    for _ in range(5):
        cmd_pub.publish(topics.float_array_msg([5.0, 5.0]))
        time.sleep(0.05)
    joints.clear()
    assert max(abs(v) for m in joints.wait(5, timeout=30) for v in m.velocity[:5]) < 0.02
    from std_srvs.srv import SetBool, Trigger

    # estop: torque off, the WidowX sags under gravity; enable holds it again
    before = np.array(joints.messages[-1].position[:5])
    assert ros_graph.call(topics.ARM_ESTOP, Trigger.Request(), namespace="arm").success
    joints.clear()
    joints.wait(1, timeout=30, predicate=lambda m: np.abs(np.array(m.position[:5]) - before).max() > 0.05)
    assert "estop" in ros_graph.call(topics.ARM_HOME, Trigger.Request(), namespace="arm").message
    assert ros_graph.call(topics.ARM_ENABLE, SetBool.Request(data=True), namespace="arm").success

    reply = ros_graph.call(topics.ARM_HOME, Trigger.Request(), namespace="arm", timeout=60)
    assert reply.success and reply.message == "at home", reply.message
    home = np.array(joints.messages[-1].position[:5])
    assert abs(home[0] - start[0]) < 0.1
    reply = ros_graph.call(topics.RIG_HOME, Trigger.Request(), timeout=60)
    assert reply.success
    assert rig.wait(1, timeout=30, predicate=lambda m: np.allclose(m.position, [0.0, 0.0], atol=1e-6))
    assert proc.returncode is None, proc.output()[-2000:]


def test_twin_node_refuses_unknown_env(ros_graph):
    proc = ros_graph.start_node("mujoco_twin", name="twin", namespace="arm", params={"env": "ur5_cable"})
    assert proc.wait(timeout=120) == 2
    assert "env must be one of" in proc.output()


def test_sawyer_twin_names_rig_axes_and_ignores_unknown_tasks(ros_graph):
    from std_msgs.msg import String

    params = {"env": "sawyer_peg", "camera_rate_hz": 1.0, "image_height": 32, "image_width": 32,
              "pair_height": 32, "pair_width": 32}
    joints = ros_graph.subscribe(topics.JOINT_STATES, namespace="arm")
    rig = ros_graph.subscribe(topics.RIG_JOINT_STATES)
    current = ros_graph.subscribe(topics.TASK_CURRENT)
    proc = ros_graph.start_node("mujoco_twin", name="twin", namespace="arm", params=params)
    assert list(joints.wait(1, timeout=120)[0].name) == [f"right_j{i}" for i in range(7)]
    assert list(rig.wait(1, timeout=30)[0].name) == ["x", "y"]
    current.wait(1, timeout=30, predicate=lambda m: m.data == "train-00")
    request = ros_graph.publisher(topics.TASK_REQUEST)
    request.publish(String(data="no-such-task"))
    time.sleep(1.0)
    assert all(m.data != "no-such-task" for m in current.messages)
    request.publish(String(data="test-01"))
    current.wait(1, timeout=60, predicate=lambda m: m.data == "test-01")
    assert proc.returncode is None
    assert "no-such-task" in proc.output()
