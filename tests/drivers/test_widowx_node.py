"""The `widowx_driver` node as a real process on the emulated bus: commands in, registers and joint_states out."""

import math
import signal

import pytest

from meldbot import topics
from meldbot.executables import SOURCE_ROOT
from tests.support import dynamixel_emulator as dx

pytestmark = pytest.mark.ros

RAD_S_PER_UNIT = 0.229 * 2 * math.pi / 60


def test_driver_node_commands_to_registers_joint_states_estop_and_dead_host(ros_graph, emulator):
    states = ros_graph.subscribe(topics.JOINT_STATES, namespace="arm")
    diagnostics = ros_graph.subscribe(topics.DIAGNOSTICS)
    proc = ros_graph.start_node("widowx_driver", name="widowx_driver", namespace="arm",
                                params_files=[SOURCE_ROOT / "config" / "widowx_driver.yaml"],
                                params={"port": emulator.port, "command_timeout_s": 0.5})
    first = states.wait(count=3, timeout=90)[0]
    assert list(first.name) == ["waist", "shoulder", "elbow", "wrist_angle", "wrist_rotate", "gripper"]

    # Commands in -> Goal Velocity registers, in servo units.
    pub = ros_graph.publisher(topics.JOINT_VELOCITY_COMMANDS, namespace="arm")
    expected = int(0.4 / RAD_S_PER_UNIT)

    def commanded(e):
        pub.publish(topics.float_array_msg([0.4, 0.0, 0.0, 0.0, 0.0]))
        return e.servo(1).goal_velocity == expected

    assert emulator.wait_for(commanded, timeout=30, poll=0.05), proc.output()[-2000:]
    # joint_states out: the waist moves in rad.
    states.clear()
    assert emulator.wait_for(lambda e: commanded(e) and e.servo(1).position > 2048 + 60, timeout=30, poll=0.05)
    moving = states.wait(count=2, timeout=30, predicate=lambda m: m.position[0] > 0.05)
    assert moving[-1].velocity[0] > 0.1
    diag = diagnostics.wait(count=1, timeout=30)[0]
    keys = {kv.key for kv in diag.status[0].values}
    assert {"loop_rate_hz", "bus_retries", "temperature_C[waist]"} <= keys

    # e-stop disables torque on every servo.
    from std_srvs.srv import SetBool

    response = ros_graph.call(topics.ARM_ESTOP, namespace="arm", timeout=30)
    assert response.success, response.message
    assert not any(emulator.servo(i).torque for i in range(1, 9))
    response = ros_graph.call(topics.ARM_ENABLE, SetBool.Request(data=True), namespace="arm", timeout=30)
    assert response.success and emulator.servo(1).torque
    # home: the driver's own P-loop brings every joint to the calibrated pose before answering.
    response = ros_graph.call(topics.ARM_HOME, namespace="arm", timeout=60)
    assert response.success, response.message
    home = states.wait(count=1, timeout=30, predicate=lambda m: abs(m.position[1] + 0.3) < 0.05)[-1]
    assert abs(home.position[0]) < 0.05 and abs(home.position[2] - 0.3) < 0.05

    # Dead host: kill -9 the driver while it commands motion; only the Bus Watchdog can stop the arm.
    assert emulator.wait_for(commanded, timeout=30, poll=0.05)
    proc.signal(signal.SIGKILL)
    proc.wait(30)
    assert emulator.wait_for(lambda e: e.servo(1).watchdog == -1 and abs(e.servo(1).velocity) < 0.5, timeout=10)
    assert all(emulator.servo(i).goal_velocity == 0 for i in (1, 2, 4, 6, 7))
    assert emulator.log.of(dx.SYNC_READ)  # the node read state over the same bus


def test_driver_node_refuses_to_start_with_a_missing_servo(ros_graph, emulator):
    emulator.servo(4).faults.missing = True
    proc = ros_graph.start_node("widowx_driver", namespace="arm", params={"port": emulator.port})
    assert proc.wait(60) == 2
    assert "servo ID 4 (elbow) did not answer a ping" in proc.output()
