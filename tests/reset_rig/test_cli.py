"""`meldbot rig ...` against the emulator and a fake sysfs."""

from meldbot.cli import main


def test_rig_status_goto_and_settings(emulator, capsys):
    assert main(["rig", "status", "--port", emulator.port]) == 0
    out = capsys.readouterr().out
    assert "GRBL 1.1h" in out and "settings match" in out and "not homed" in out
    assert main(["rig", "goto", "train-00", "--port", emulator.port]) == 0
    out = capsys.readouterr().out
    assert "task:     train-00" in out and "correct port port2" in out
    emulator.settings[120] = 50.0
    assert main(["rig", "settings", "--port", emulator.port]) == 1
    assert "$120 (X acceleration (units/s^2)): board 50, file 100" in capsys.readouterr().out
    assert main(["rig", "settings", "--apply", "--port", emulator.port]) == 0
    assert "settings now match" in capsys.readouterr().out
    assert emulator.settings[120] == 100.0


def test_rig_command_on_a_missing_port_is_one_clear_error(tmp_path, capsys):
    assert main(["rig", "status", "--port", str(tmp_path / "nope")]) == 1
    assert "cannot connect to the rig" in capsys.readouterr().out


def test_rig_sensor_watches_the_carrier(tmp_path, capsys):
    (tmp_path / "eth7").mkdir()
    (tmp_path / "eth7" / "carrier").write_text("1\n")
    assert main(["rig", "sensor", "--interface", "eth7", "--sysfs", str(tmp_path), "--duration", "2"]) == 0
    out = capsys.readouterr().out
    assert "raw UP" in out and "success YES" in out  # debounced on within the 2 s watch
