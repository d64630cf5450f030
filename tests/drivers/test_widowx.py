"""The WidowX driver core against the pty emulator: bytes on the wire, safety, start-up checks, faults."""

import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from drivers.widowx import StartupError
from tests.support import dynamixel_emulator as dx

RAD_S_PER_UNIT = 0.229 * 2 * math.pi / 60  # e-Manual: Goal Velocity LSB 0.229 rpm
ARM_IDS = [1, 2, 4, 6, 7]  # waist, shoulder, elbow, wrist_angle, wrist_rotate


def counts(rad: float) -> float:
    return rad * 4096 / (2 * math.pi) + 2048


def last_sync_write(emu, address):
    emu.drain()
    writes = emu.log.of(dx.SYNC_WRITE, address)
    assert writes, f"no SYNC_WRITE at address {address} on the wire"
    return writes[-1]


def run(arm, seconds: float, command=None, period: float = 0.01):
    """Step the arm in real time for `seconds`, re-sending `command` each cycle."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if command is not None:
            arm.command(command)
        arm.step()
        time.sleep(period)


def test_crc_and_stuffing_agree_with_the_sdk():
    from dynamixel_sdk import PacketHandler

    sdk = PacketHandler(2.0)
    rng = np.random.default_rng(0)
    for n in (1, 7, 64):
        data = bytes(rng.integers(0, 256, n, dtype=np.uint8))
        assert dx.crc16(data) == sdk.updateCRC(0, list(data), n)
    # e-Manual example: PING to ID 1 is FF FF FD 00 01 03 00 01 19 4E
    assert dx.build_packet(1, dx.PING) == bytes.fromhex("fffffd0001030001194e")
    body = bytes([dx.WRITE, 104, 0, 0xFF, 0xFF, 0xFD, 0x00])
    assert dx.stuff(body) == bytes([dx.WRITE, 104, 0, 0xFF, 0xFF, 0xFD, 0xFD, 0x00])
    assert dx.unstuff(dx.stuff(body)) == body


def test_velocity_commands_reach_goal_velocity_registers_in_servo_units(make_arm, emulator):
    order = ["elbow", "waist", "wrist_rotate", "shoulder", "wrist_angle"]
    arm = make_arm(joint_names=order)
    cmd = {"elbow": -0.3, "waist": 0.5, "wrist_rotate": 1.0, "shoulder": 0.25, "wrist_angle": -0.1}
    arm.command([cmd[n] for n in order])
    arm.step()
    packet = last_sync_write(emulator, 104)
    # Raw bytes: header, broadcast ID, SYNC_WRITE, CRC over everything before it.
    assert packet.raw[:5] == b"\xff\xff\xfd\x00\xfe" and packet.raw[7] == dx.SYNC_WRITE
    assert dx.crc16(packet.raw[:-2]) == int.from_bytes(packet.raw[-2:], "little")
    address, values = dx.parse_sync_write(packet.params)
    assert address == 104 and sorted(values) == ARM_IDS
    by_id = {1: "waist", 2: "shoulder", 4: "elbow", 6: "wrist_angle", 7: "wrist_rotate"}
    for servo_id, name in by_id.items():
        expected = int(cmd[name] / RAD_S_PER_UNIT)  # 0.5 rad/s -> 20 units
        assert int.from_bytes(values[servo_id], "little", signed=True) == expected, name
        assert emulator.servo(servo_id).goal_velocity == expected
    # Shadows follow their primary through Secondary ID without being addressed.
    assert emulator.servo(3).goal_velocity == emulator.servo(2).goal_velocity
    assert emulator.servo(5).goal_velocity == emulator.servo(4).goal_velocity
    assert all(emulator.servo(i).ram[dx.A_OP_MODE] == 1 for i in (1, 2, 3, 4, 5, 6, 7))
    assert emulator.servo(8).ram[dx.A_OP_MODE] == 16  # gripper in PWM mode
    assert all(emulator.servo(i).watchdog == 5 for i in range(1, 9))  # 100 ms = 5 x 20 ms


def test_velocity_is_clamped_to_the_joint_limit(make_arm, emulator):
    arm = make_arm()
    arm.command([50.0, -50.0, 0, 0, 0])
    arm.step()
    _, values = dx.parse_sync_write(last_sync_write(emulator, 104).params)
    assert int.from_bytes(values[1], "little", signed=True) == int(2.0 / RAD_S_PER_UNIT)
    assert int.from_bytes(values[2], "little", signed=True) == -int(2.0 / RAD_S_PER_UNIT)
    with pytest.raises(ValueError, match="5 finite values"):
        arm.command([0.1, float("nan"), 0, 0, 0])


def test_position_limit_stops_motion_and_allows_backing_off(make_arm, emulator):
    arm = make_arm()
    hi = arm.hi[2]  # elbow upper limit, rad
    with emulator.lock:
        emulator.servo(4).position = counts(hi - 0.15)
        emulator.servo(5).position = counts(hi - 0.15)
    run(arm, 1.5, [0, 0, 1.0, 0, 0])
    elbow = arm.state.position[2]
    assert elbow <= hi - arm.cfg.limit_margin_rad + 0.01
    assert elbow > hi - 0.15 + 0.05  # it did move toward the limit first
    assert emulator.servo(4).goal_velocity == 0 and arm.stats.limit_stops > 0
    run(arm, 0.3, [0, 0, -0.5, 0, 0])  # moving away from the limit is allowed
    assert emulator.servo(4).goal_velocity < 0


def test_command_watchdog_zeroes_velocity(make_arm, emulator):
    arm = make_arm(command_timeout_s=0.2)
    t0 = time.monotonic()
    arm.command([0.5, 0, 0, 0, 0], now=t0)
    arm.step(now=t0 + 0.1)
    assert emulator.servo(1).goal_velocity == int(0.5 / RAD_S_PER_UNIT)
    arm.step(now=t0 + 0.35)  # no fresh command for longer than the timeout
    assert emulator.servo(1).goal_velocity == 0
    assert arm.stats.command_timeouts == 1


def test_bus_watchdog_stops_the_arm_when_the_loop_stalls_and_driver_rearms(make_arm, emulator):
    arm = make_arm(bus_watchdog_ms=100, health_every=1)
    run(arm, 0.3, [0.5, 0, 0, 0, 0])
    assert emulator.servo(1).velocity > 5
    # The host stops talking: the servos' own watchdog must stop them.
    assert emulator.wait_for(lambda e: e.servo(1).watchdog == -1, timeout=10)
    assert emulator.wait_for(lambda e: abs(e.servo(1).velocity) < 0.5, timeout=10)
    assert emulator.servo(1).goal_velocity == 0
    # Goal values are read-only in Bus Watchdog Error: a WRITE is answered with a data range error.
    with emulator.lock:
        assert emulator.servo(1).write(dx.A_GOAL_VEL, (10).to_bytes(4, "little")) == dx.ERR_DATA_RANGE
    # The loop resumes: the health read sees the error, the driver clears and re-arms it, motion needs a new command.
    run(arm, 0.2)
    assert arm.stats.watchdog_recoveries >= 1
    assert emulator.servo(1).watchdog == 5 and emulator.servo(1).goal_velocity == 0
    run(arm, 0.2, [0.5, 0, 0, 0, 0])
    assert emulator.servo(1).goal_velocity > 0


def test_estop_disables_torque_and_ignores_commands_until_enabled(make_arm, emulator):
    arm = make_arm()
    run(arm, 0.1, [0.5, 0.2, 0, 0, 0])
    arm.estop()
    assert not any(emulator.servo(i).torque for i in range(1, 9))
    assert all(emulator.servo(i).goal_velocity == 0 for i in ARM_IDS)
    run(arm, 0.1, [0.5, 0.2, 0, 0, 0])
    assert emulator.servo(1).goal_velocity == 0 and not emulator.servo(1).torque
    ok, message = arm.home()
    assert not ok and "enable" in message
    arm.enable(True)
    assert all(emulator.servo(i).torque for i in range(1, 9))
    run(arm, 0.1, [0.5, 0, 0, 0, 0])
    assert emulator.servo(1).goal_velocity > 0


def test_missing_servo_fails_startup_naming_the_id(make_arm, emulator):
    emulator.servo(5).faults.missing = True
    with pytest.raises(StartupError, match=r"servo ID 5 \(elbow shadow\) did not answer a ping"):
        make_arm()
    assert not any(s.torque for s in emulator.servos.values())


def test_startup_waits_out_pings_missed_beyond_the_loop_retries(make_arm, emulator):
    # more missed replies than the loop's 1 + 2 tries (a servo still booting, a host reading late)
    emulator.servo(2).faults.no_reply = 5
    arm = make_arm()
    assert arm.started and emulator.servo(2).faults.no_reply == 0


def test_wrong_model_fails_startup_naming_the_id(emulator, make_arm):
    emulator.servos[7] = dx.EmulatedServo(7, "XM430-W350")
    with pytest.raises(StartupError, match=r"servo ID 7 \(wrist_rotate\) is a XM430-W350 \(model 1020\), "
                                           r"expected XL430-W250 \(model 1060\)"):
        make_arm()


def test_misconfigured_shadow_fails_startup(emulator, make_arm):
    emulator.servo(3).ram[dx.A_SECONDARY_ID] = 255
    with pytest.raises(StartupError, match="shadow servo ID 3 of shoulder has Secondary ID 255, expected 2"):
        make_arm()


def test_transient_read_errors_are_retried_and_counted_without_stopping_the_loop(make_arm, emulator):
    arm = make_arm()
    before = arm.bus.stats.retries
    states = []
    for k in range(30):
        if k == 5:
            emulator.servo(4).faults.no_reply = 1
        if k == 10:
            emulator.servo(6).faults.corrupt_crc = 1
        arm.command([0.3, 0, 0, 0, 0])
        states.append(arm.step())
    assert all(s is not None for s in states)  # every cycle still produced a state
    assert arm.bus.stats.retries - before >= 2
    assert arm.bus.stats.errors["timeout"] >= 1 and arm.bus.stats.errors["corrupt"] >= 1
    assert arm.stats.read_failures == 0
    # A longer outage: reads fail after their retries, the loop reports it, commands zero, and recovers.
    emulator.servo(2).faults.no_reply = 3
    assert arm.step() is None
    assert arm.stats.read_failures == 1 and emulator.servo(1).goal_velocity == 0
    arm.command([0.3, 0, 0, 0, 0])
    assert arm.step() is not None and emulator.servo(1).goal_velocity > 0
    assert "sync read" in arm.diagnostics()["last_error"]


def test_hardware_error_is_reported_and_reboot_recovers(make_arm, emulator):
    arm = make_arm()
    arm.step()
    with emulator.lock:
        emulator.servo(4).latch_hardware_error(1 << 5)  # overload
    arm.step()  # the status packet's alert bit triggers a Hardware Error Status read
    assert arm.hardware_errors == {4: 32}
    level, message = arm.level()
    assert level == "error" and "4" in message
    assert arm.diagnostics()["hardware_error[elbow]"] == "overload"
    assert "rebooted servo ID(s) [4]" == arm.reboot()
    assert not arm.hardware_errors and emulator.servo(4).torque and emulator.servo(4).hardware_error == 0


def test_home_moves_to_the_home_pose(make_arm, emulator):
    arm = make_arm(home_speed=1.5, home_gain=4.0)
    with emulator.lock:
        emulator.servo(1).position = counts(0.4)
    ok, message = arm.home(timeout=15)
    assert ok, message
    assert np.allclose(arm.state.position[:5], arm.calib.home, atol=0.05)


def test_gripper_effort_becomes_goal_pwm(make_arm, emulator):
    arm = make_arm()
    arm.command_gripper(0.5)
    arm.step()
    _, values = dx.parse_sync_write(last_sync_write(emulator, 100).params)
    assert int.from_bytes(values[8], "little", signed=True) == round(0.5 * 0.35 * 885)


DRIVER_SCRIPT = """
import sys, time
from drivers.widowx import WidowXArm, WidowXConfig
arm = WidowXArm(WidowXConfig(port=sys.argv[1], bus_watchdog_ms=100))
arm.start()
print("RUNNING", flush=True)
while True:
    arm.command([0.6, 0, 0, 0, 0])
    arm.step()
    time.sleep(0.01)
"""


def test_killed_driver_process_leaves_the_arm_stopped_by_the_bus_watchdog(emulator, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER_SCRIPT, emulator.port], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout.readline().strip() == "RUNNING"
        assert emulator.wait_for(lambda e: e.servo(1).velocity > 10, timeout=20)
        proc.send_signal(signal.SIGKILL)  # no shutdown hook, no zero velocity: only the servo watchdog
        proc.wait(10)
        assert emulator.wait_for(lambda e: e.servo(1).watchdog == -1 and abs(e.servo(1).velocity) < 0.5, 10)
        with emulator.lock:
            p0 = emulator.servo(1).position
        time.sleep(0.3)
        emulator.update()
        assert abs(emulator.servo(1).position - p0) < 2  # counts: it stays stopped
        assert all(emulator.servo(i).goal_velocity == 0 for i in ARM_IDS)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()


def test_lost_port_is_reported_then_reopened_and_rearmed(make_arm, emulator):
    arm = make_arm(reconnect_interval_s=0.2)
    run(arm, 0.1, [0.3, 0, 0, 0, 0])
    arm.bus.port.ser.close()  # the adapter vanishes under the driver (USB pulled)
    assert arm.step() is None
    assert arm.bus.port_lost and arm.bus.stats.errors["port"] >= 1
    deadline = time.monotonic() + 10
    state = None
    while state is None and time.monotonic() < deadline:
        state = arm.step()
        time.sleep(0.02)
    assert state is not None and arm.stats.reconnects == 1
    assert emulator.servo(1).goal_velocity == 0  # re-armed with zero: motion needs a fresh command
    run(arm, 0.1, [0.3, 0, 0, 0, 0])
    assert emulator.servo(1).goal_velocity == int(0.3 / RAD_S_PER_UNIT) and emulator.servo(1).watchdog == 5
