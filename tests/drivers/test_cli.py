"""`meldbot arm scan|check` on the emulated bus and `meldbot camera check` on generated videos."""

from meldbot.cli import main
from tests.support.camera_video import write_video


def test_arm_scan_lists_ids_models_and_errors(emulator, capsys):
    with emulator.lock:
        emulator.servo(4).latch_hardware_error(1 << 2)
    assert main(["arm", "scan", "--port", emulator.port, "--ids", "1-9"]) == 0
    out = capsys.readouterr().out
    lines = {int(line.split()[0]): line for line in out.splitlines() if line.strip()[:1].isdigit()}
    assert sorted(lines) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert "XL430-W250" in lines[7] and "XM430-W350" in lines[1] and "overheating" in lines[4]


def test_arm_check_reports_calibration_and_missing_servo(emulator, capsys):
    assert main(["arm", "check", "--port", emulator.port]) == 0
    out = capsys.readouterr().out
    assert "expected models" in out and "waist" in out and "OUTSIDE" not in out
    emulator.servo(6).faults.missing = True
    assert main(["arm", "check", "--port", emulator.port]) == 1
    assert "servo ID 6 (wrist_angle) did not answer" in capsys.readouterr().err


def test_camera_check_saves_one_frame_per_camera_and_the_pair(tmp_path, capsys):
    scene = write_video(tmp_path / "s.avi", frames=10, width=640, height=480)  # the calibration's crop fits 640x480
    wrist = write_video(tmp_path / "w.avi", frames=10, width=640, height=480)
    out = tmp_path / "check"
    assert main(["camera", "check", "--scene", str(scene), "--wrist", str(wrist), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"scene.png", "wrist.png", "pair.png"}
    assert "pair (policy input after crop/resize): 128x64" in capsys.readouterr().out
    assert main(["camera", "check", "--scene", str(tmp_path / "none.avi"), "--wrist", str(wrist),
                 "--out", str(out), "--timeout", "1"]) == 1
