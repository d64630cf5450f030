"""The rig core against the GRBL emulator: the issue's done-when behaviours."""

import threading
import time

import numpy as np
import pytest

from reset_rig.rig import (
    ALARM,
    DISCONNECTED,
    IDLE,
    RigError,
    RigNotReady,
    RigStopped,
    RigTravelError,
    load_task_table,
)
from reset_rig.settings import format_setting
from tests.reset_rig.conftest import make_rig


def wait_for(fn, timeout=20.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


def test_connect_homes_and_moves_arrive_at_the_commanded_pose(rig, emulator):
    snap = rig.connect()
    assert snap.state == IDLE and snap.homed and emulator.homings == 1
    task = rig.tasks["train-03"]
    snap = rig.goto_task("train-03")
    assert snap.task_id == "train-03"
    assert snap.rail_mm == pytest.approx(task.rail_mm, abs=1e-3)
    assert snap.rotation_deg == pytest.approx(task.rotation_deg, abs=1e-3)
    # the emulator's machine position is where the rig's origin mapping says it should be
    x, y, _ = emulator.mpos
    assert x == pytest.approx(rig.config.rail_origin_mpos_mm + task.rail_mm, abs=1e-3)
    assert y == pytest.approx(rig.config.rotation_origin_mpos_deg + task.rotation_deg, abs=1e-3)
    rig.move_to(10.0, -20.0)
    assert emulator.mpos[:2] == pytest.approx((-88.0, -65.0), abs=1e-3)


@pytest.mark.parametrize("rail, rot", [(90.5, 0.0), (-1.0, 0.0), (45.0, 40.01), (float("nan"), 0.0)])
def test_out_of_travel_target_is_refused_before_anything_is_sent(rig, emulator, rail, rot):
    rig.connect()
    before = bytes(emulator.received)
    with pytest.raises(RigTravelError, match="refused, nothing sent|not a finite"):
        rig.move_to(rail, rot)
    time.sleep(0.05)
    assert bytes(emulator.received) == before  # not one byte, not even a status query
    assert rig.state == IDLE


def test_alarm_mid_move_is_reported_and_blocks_moves_until_homed(emulator):
    rig = make_rig(emulator.port, rehome_after_alarm=False)
    rig.connect()
    emulator.trip_limit_during_next_move(0.5, axis="X")
    with pytest.raises(RigError, match="ALARM:1 \\(Hard limit"):
        rig.move_to(80.0, 0.0)
    snap = rig.snapshot()
    assert snap.state == ALARM and snap.alarm_code == 1 and not snap.homed
    sent = len(emulator.lines)
    with pytest.raises(RigNotReady, match="home it first"):
        rig.move_to(50.0, 0.0)
    with pytest.raises(RigNotReady, match="unlock refused"):
        rig.unlock()  # a hard limit loses position: $X would be unsafe
    assert len(emulator.lines) == sent  # nothing was sent for the refused move or unlock
    assert rig.tick().state == ALARM  # automatic re-homing is off: it stays blocked
    rig.home()  # soft reset (GRBL demanded it), then $H
    assert emulator.lines[-1] == "$H" and emulator.boots >= 2
    assert rig.move_to(50.0, 0.0).state == IDLE
    assert emulator.mpos[0] == pytest.approx(-48.0, abs=1e-3)
    rig.close()


def test_unattended_rig_rehomes_after_a_position_losing_alarm_a_bounded_number_of_times(rig, emulator):
    rig.connect()
    for attempt in (1, 2):
        emulator.trip_limit_during_next_move(0.5)
        with pytest.raises(RigError, match="ALARM:1"):
            rig.move_to(80.0, 0.0)
        with pytest.raises(RigNotReady):
            rig.move_to(50.0, 0.0)  # blocked until homed
        assert rig.tick().state == IDLE and rig.auto_rehomes == attempt  # supervision re-homed it
    emulator.trip_limit_during_next_move(0.5)
    with pytest.raises(RigError, match="ALARM:1"):
        rig.move_to(80.0, 0.0)
    assert rig.tick().state == ALARM  # a third alarm in a row: wait for a person
    rig.home()
    assert rig.move_to(50.0, 0.0).state == IDLE and rig.auto_rehomes == 0


def test_homing_failure_is_an_alarm(rig, emulator):
    rig.connect()
    emulator.fail_next_homing(9)
    with pytest.raises(RigError, match="ALARM:9 \\(Homing fail"):
        rig.home()
    assert rig.state == ALARM and not rig.homed
    rig.home()
    assert rig.state == IDLE


def test_unplugged_link_is_detected_and_recovered_with_rehoming(rig, emulator):
    rig.connect()
    rig.goto_task("train-01")
    emulator.unplug()
    wait_for(lambda: rig.tick().state == DISCONNECTED)
    assert rig.snapshot().rail_mm is None  # position not claimed while disconnected
    with pytest.raises(RigNotReady, match="disconnected"):
        rig.move_to(50.0, 0.0)
    emulator.replug()
    wait_for(lambda: rig.tick().state == IDLE)
    assert rig.homed and emulator.homings == 2 and emulator.lines[-1] == "$H"
    assert rig.goto_task("train-01").task_id == "train-01"


def test_board_that_stops_answering_is_reopened_and_rehomed(rig, emulator):
    rig.connect()
    emulator.mute()
    wait_for(lambda: rig.tick().state == DISCONNECTED)
    boots = emulator.boots
    wait_for(lambda: rig.tick().state == IDLE)
    assert emulator.boots == boots + 1 and emulator.homings == 2


def test_garbled_move_ack_is_resolved_by_resending_the_absolute_target(rig, emulator):
    rig.connect()
    emulator.garble_next_reply("ok")
    snap = rig.goto_task("train-04")
    assert snap.task_id == "train-04"
    moves = [x for x in emulator.lines if x.startswith("G90")]
    assert len(moves) == 2 and moves[0] == moves[1]  # outcome unknown -> same absolute target again
    assert emulator.mpos[0] == pytest.approx(-98.0 + rig.tasks["train-04"].rail_mm, abs=1e-3)


def test_stop_holds_then_resets_keeping_position(rig, emulator):
    rig.connect()
    result = {}

    def move():
        try:
            rig.move_to(90.0, 40.0)
        except RigStopped as exc:
            result["stopped"] = exc

    emulator.time_scale = 1.0  # a real-speed 5 s move: the stop surely lands mid-way, however loaded the machine
    t = threading.Thread(target=move)
    t.start()
    wait_for(lambda: emulator.state == "Run" and emulator.mpos[0] > -97.0)  # under way
    assert rig.stop() == "feed hold sent"
    t.join(20)
    assert "stopped" in result and rig.state == IDLE and rig.homed
    x = emulator.mpos[0]
    assert -98.0 < x < -8.0  # stopped part way
    assert "\x18" in emulator.received_text() and "!" in emulator.received_text()
    emulator.time_scale = 25.0
    assert rig.move_to(20.0, 0.0).state == IDLE  # position kept: no re-homing needed


def test_settings_mismatch_refuses_to_move(emulator):
    emulator.settings[110] = 3000.0  # someone changed the rail max rate on the board
    rig = make_rig(emulator.port)
    try:
        snap = rig.connect()
        assert snap.state == ALARM and "$110" in snap.message and "--apply" in snap.message
        assert "$H" not in emulator.lines
        with pytest.raises(RigNotReady):
            rig.move_to(10.0, 0.0)
    finally:
        rig.close()
    emulator.settings[110] = 1200.0
    rig = make_rig(emulator.port)
    try:
        assert rig.connect().state == IDLE
        rig.driver.command(format_setting(110, 1200))
    finally:
        rig.close()


def test_travel_config_outside_grbl_soft_limits_is_rejected():
    with pytest.raises(ValueError, match="outside its soft limits"):
        make_rig("/dev/null", rail_max_mm=99.0)


def test_task_table_has_20_train_10_test_spanning_2cm_16deg():
    tasks = load_task_table()
    train = [t for t in tasks.values() if t.split == "train"]
    test = [t for t in tasks.values() if t.split == "test"]
    assert len(train) == 20 and len(test) == 10
    rails = [t.rail_mm for t in tasks.values()]
    rots = [t.rotation_deg for t in tasks.values()]
    assert max(rails) - min(rails) <= 20.0 and max(rails) - min(rails) > 15.0
    assert max(rots) - min(rots) <= 16.0 and max(rots) - min(rots) > 12.0


def test_task_table_matches_the_mujoco_cable_twin():
    cable = pytest.importorskip("sim.mujoco.cable")
    ts = cable.make_task_set(seed=0)
    tasks = load_task_table()
    for t in ts.train + ts.test:
        rig_task = tasks[t.task_id]
        assert rig_task.rail_mm == pytest.approx(50.0 + 1000 * t.params["rail"], abs=1e-3)
        assert rig_task.rotation_deg == pytest.approx(np.degrees(t.params["rotation"]), abs=1e-3)
        assert rig_task.port == f"port{t.params['port']}"


def test_soft_limit_alarm_keeps_position_so_unlock_is_allowed(rig, emulator):
    rig.connect()
    rig.move_to(30.0, 0.0)
    with pytest.raises(Exception, match="ALARM:2"):
        rig.driver.command("G90 G53 G1 X5 F100")  # beyond GRBL's soft limit, bypassing the rig's check
    snap = rig.poll()
    assert snap.state == ALARM and snap.alarm_code == 2 and snap.homed
    homings = emulator.homings
    assert rig.unlock().state == IDLE  # soft reset (Reset to continue), then $X: no re-homing needed
    assert emulator.lines[-1] == "$X" and emulator.homings == homings
    assert rig.move_to(31.0, 0.0).rail_mm == pytest.approx(31.0, abs=1e-3)


def test_work_position_reports_are_converted_with_wco(emulator):
    emulator.settings[10] = 0  # report WPos (+ WCO every 10th report)
    rig = make_rig(emulator.port, check_settings=False)
    try:
        rig.connect()
        snap = rig.goto_task("test-02")
        assert snap.rail_mm == pytest.approx(rig.tasks["test-02"].rail_mm, abs=1e-3)
        assert rig.driver.last_status.wpos is not None
    finally:
        rig.close()


def test_garbled_settings_dump_at_connect_is_not_trusted_then_reconnect_succeeds(rig, emulator):
    emulator.garble_next_reply("$100=")
    with pytest.raises(RigNotReady, match="garbled"):
        rig.connect()
    assert rig.state == DISCONNECTED and "$H" not in emulator.lines
    wait_for(lambda: rig.tick().state == IDLE)
    assert rig.homed and rig.settings_ok


def test_stop_during_homing_aborts_it_and_requires_homing_again(emulator):
    emulator.time_scale = 1.0  # homing takes seconds: the stop lands mid-cycle
    rig = make_rig(emulator.port, home_on_connect=False)
    try:
        rig.connect()
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("error", _catch(rig.home)))
        t.start()
        wait_for(lambda: emulator.state == "Home")
        assert rig.stop() == "homing aborted (soft reset)"
        t.join(20)
        assert "ALARM:6" in str(result["error"]) and rig.state == ALARM and not rig.homed
    finally:
        rig.close()


def _catch(fn):
    try:
        fn()
    except RigError as exc:
        return exc
    return None
