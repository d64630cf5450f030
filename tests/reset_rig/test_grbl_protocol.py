"""GRBL 1.1 protocol: parsing, message meanings, and the driver against the pty emulator."""

import pytest

from reset_rig.grbl import (
    GrblAlarm,
    GrblCommandError,
    GrblProtocolError,
    alarm_message,
    classify,
    error_message,
    move_line,
    parse_status,
)
from reset_rig.settings import compare_settings, format_setting, load_settings_file


def test_parse_status_mpos_pins_buffer_and_hold_substate():
    s = parse_status("<Hold:0|MPos:-10.500,-45.000,0.000|Bf:15,128|FS:0,0|Pn:XP>")
    assert (s.state, s.substate) == ("Hold", 0)
    assert s.mpos == (-10.5, -45.0, 0.0)
    assert s.buffer == (15, 128)
    assert s.probe and "X" in s.pins


def test_parse_status_wpos_plus_wco_gives_machine_position():
    s = parse_status("<Idle|WPos:1.000,2.000,0.000|FS:0,0|WCO:-50.000,-40.000,0.000>")
    assert s.mpos is None and s.machine_position() == (-49.0, -38.0, 0.0)
    later = parse_status("<Run|WPos:2.000,2.000,0.000|FS:500,0>")
    assert later.machine_position(s.wco) == (-48.0, -38.0, 0.0)


@pytest.mark.parametrize("line", ["<Idle|MPos:1.0,x,0>", "<Idle|FS:0,0>", "<Walk|MPos:0,0,0>", "o\ufffd",
                                  "okk", "Ok", "error:", "ALARM:x", "Grbl 1.1h"])
def test_malformed_lines_are_garbled_never_ok(line):
    assert classify(line)[0] == "garbled"


def test_known_lines_classified():
    assert classify("ok") == ("ok", None)
    assert classify("error:9") == ("error", 9)
    assert classify("ALARM:1") == ("alarm", 1)
    assert classify("Grbl 1.1h ['$' for help]") == ("banner", "1.1h")
    assert classify("[MSG:'$H'|'$X' to unlock]")[0] == "info"
    assert classify("$110=1200.000")[0] == "info"


def test_error_and_alarm_messages_carry_the_meaning():
    assert "G-code lock" in error_message(9)
    assert "Hard limit" in alarm_message(1) and "Re-homing" in alarm_message(1)
    assert "Homing fail" in alarm_message(9)
    assert GrblAlarm(1).loses_position and not GrblAlarm(2).loses_position


def test_move_line_is_absolute_machine_coordinates():
    assert move_line({"Y": -38.0391, "X": -47.128}, feed=1000) == "G90 G53 G1 X-47.128 Y-38.039 F1000"
    assert move_line({"X": 0.0}, rapid=True) == "G90 G53 G0 X0"
    with pytest.raises(ValueError, match="non-finite"):
        move_line({"X": float("nan")}, feed=100)
    with pytest.raises(ValueError, match="axis"):
        move_line({"A": 1.0}, feed=100)


def test_banner_on_open_then_locked_until_homed(emulator, driver):
    d = driver
    assert d.version == "1.1h"
    # the open reset the board; on a loaded machine the banner can land before pyserial's input flush on
    # open, and then the driver's soft reset asks for it again (a second boot)
    assert emulator.boots in (1, 2) and "Grbl 1.1h" in " ".join(emulator.sent)
    assert d.status().state == "Alarm"
    with pytest.raises(GrblCommandError, match="error:9 \\(G-code lock"):
        d.command("G90 G53 G1 X-10 F100")
    d.home()
    s = d.status()
    assert s.state == "Idle" and s.mpos[:2] == (-98.0, -88.0)  # -$13x + $27, per grbl limits.c


def test_garbled_ok_is_not_taken_as_ok(emulator, driver):
    d = driver
    emulator.garble_next_reply("ok")
    with pytest.raises(GrblProtocolError, match="outcome unknown"):
        d.command("$G")
    assert any("\ufffd" in line for line in d.garbled)
    # the link is still usable: the next command gets its own, intact ok
    assert d.command("$G")[0].startswith("[GC:")


def test_character_counting_stream_keeps_grbl_buffer_within_128_bytes(emulator, driver):
    d = driver
    d.home()
    # 40 short moves: more than the 15-block planner; GRBL answers ok as blocks enter the planner
    lines = [move_line({"X": -98 + (i % 2) * 0.5, "Y": -88 + i * 0.1}, feed=5000) for i in range(40)]
    d.stream(lines, timeout_s=10.0)
    assert emulator.overflows == 0
    assert [x for x in emulator.lines if x.startswith("G90")] == lines


def test_settings_read_and_compared_with_versioned_file(emulator, driver):
    expected = load_settings_file()
    d = driver
    assert compare_settings(d.read_settings(), expected) == []
    d.command(format_setting(100, 80.0))
    diffs = compare_settings(d.read_settings(), expected)
    assert [x.number for x in diffs] == [100]
    assert "X steps/unit" in str(diffs[0]) and "board 80" in str(diffs[0])
