"""Camera capture threads on generated video files, pairing, stale detection, crops, unplug/replug."""

import time

import numpy as np
import pytest

from drivers.camera import Camera, CameraConfig, CameraError, Frame
from drivers.camera_pair import CameraCalibration, FramePairer, camera_info_fields, load_camera_calibration
from tests.support.camera_video import quadrant_frame, write_video


def calib(crop=(0, 0, 0, 0), size=(64, 64)):
    return {n: CameraCalibration(n, crop=crop, output_size=size) for n in ("scene", "wrist")}


@pytest.fixture
def video(tmp_path):
    return write_video(tmp_path / "scene.avi", frames=15, width=160, height=120, fps=30)


def test_camera_keeps_the_newest_frame_with_its_capture_time(video):
    opened_at = time.time()
    with Camera(CameraConfig(name="scene", source=str(video), width=160, height=120, fps=30)) as cam:
        first = cam.wait_frame(0, timeout=20)
        assert first is not None and first.image.shape == (120, 160, 3)
        later = cam.wait_frame(first.seq + 5, timeout=20)
        assert later.seq > first.seq + 5 and later.stamp > first.stamp
        # capture times are wall-clock (ROS header stamps), taken while the camera was open
        assert opened_at <= first.stamp and later.stamp <= time.time()
        assert cam.status.connected and not cam.status.settings_mismatch


def test_requested_settings_are_verified(video):
    cfg = CameraConfig(name="scene", source=str(video), width=640, height=480, fps=30)
    with Camera(cfg) as cam:
        assert cam.wait_frame(0, timeout=20) is not None
        assert cam.status.settings_mismatch == ["size 160x120 instead of 640x480"]
    strict = Camera(CameraConfig(name="scene", source=str(video), width=640, height=480, strict=True))
    with pytest.raises(CameraError, match="size 160x120 instead of 640x480"):
        strict.probe()
    assert Camera(CameraConfig(name="scene", source=str(video), width=160, height=120, strict=True)).probe() == []


def test_unplugged_camera_is_reported_then_reconnects(video, tmp_path):
    cfg = CameraConfig(name="wrist", source=str(video), width=160, height=120, reconnect_interval_s=0.1)
    with Camera(cfg) as cam:
        assert cam.wait_frame(0, timeout=20) is not None
        away = tmp_path / "unplugged.avi"
        video.rename(away)  # "unplug": when the file ends the camera cannot reopen it
        deadline = time.monotonic() + 30
        while cam.status.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not cam.status.connected and cam.status.disconnects == 1
        assert "not found" in cam.status.last_error
        seq = cam.latest().seq
        time.sleep(0.3)
        assert cam.latest().seq == seq  # no frames while unplugged
        away.rename(video)  # "replug"
        assert cam.wait_frame(seq, timeout=30) is not None
        assert cam.status.connected and cam.status.reconnects == 1


def frame(stamp, seq, w=160, h=120):
    return Frame(quadrant_frame(w, h), stamp, seq)


def test_pairing_within_tolerance_and_once_per_frame_combination():
    pairer = FramePairer(calib(), tolerance_s=0.02, stale_after_s=0.5)
    now = 100.0
    pair = pairer.update(frame(now - 0.030, 1), frame(now - 0.015, 1), now)
    assert pair is not None and pair.image.shape == (64, 128, 3)
    assert pair.stamp == pytest.approx(now - 0.030) and pair.skew == pytest.approx(0.015)
    assert pairer.update(frame(now - 0.030, 1), frame(now - 0.015, 1), now) is None  # nothing new
    # Too far apart: wait for a newer frame instead of pairing.
    assert pairer.update(frame(now - 0.060, 2), frame(now - 0.010, 2), now) is None
    assert "ms apart" in pairer.stats.status and pairer.stats.skewed == 1
    assert pairer.update(frame(now - 0.005, 3), frame(now - 0.010, 2), now) is not None
    assert pairer.stats.pairs == 2


def test_stale_frames_are_detected_and_never_paired():
    pairer = FramePairer(calib(), tolerance_s=0.02, stale_after_s=0.5)
    now = 50.0
    assert pairer.update(frame(now - 0.9, 1), frame(now - 0.9, 1), now) is None
    assert pairer.stats.stale_cameras == ["scene", "wrist"] and pairer.stats.status.startswith("stale")
    assert pairer.update(frame(now - 0.01, 2), None, now) is None
    assert pairer.stats.stale_cameras == ["wrist"] and "wrist no frame" in pairer.stats.status
    assert pairer.stats.pairs == 0


def test_crop_and_resize_select_the_calibrated_region():
    img = quadrant_frame(160, 120)  # TL red, TR green, BL blue, BR white (BGR)
    top_right = CameraCalibration("scene", crop=(80, 0, 80, 60), output_size=(32, 24))
    out = top_right.process(img)
    assert out.shape == (24, 32, 3)
    assert np.all(out == (0, 255, 0))  # RGB green
    bottom_left = CameraCalibration("wrist", crop=(0, 60, 80, 60))
    assert np.all(bottom_left.process(img) == (0, 0, 255))  # blue in RGB
    pairer = FramePairer({"scene": top_right, "wrist": CameraCalibration("wrist", crop=(0, 60, 80, 60),
                                                                        output_size=(32, 24))})
    pair = pairer.update(Frame(img, 10.0, 1), Frame(img, 10.0, 1), 10.0)
    assert np.all(pair.image[:, :32] == (0, 255, 0)) and np.all(pair.image[:, 32:] == (0, 0, 255))
    with pytest.raises(ValueError, match="camera scene: crop \\[100, 0, 80, 60\\] does not fit a 160x120"):
        CameraCalibration("scene", crop=(100, 0, 80, 60)).process(img)


def test_calibration_file_loads_and_names_bad_keys(tmp_path):
    cams = load_camera_calibration()
    assert cams["scene"].output_size == (64, 64) and cams["wrist"].crop == (80, 0, 480, 480)
    info = camera_info_fields(cams["scene"], 640, 480)
    assert info["k"][2] == 320 and len(info["p"]) == 12
    bad = tmp_path / "cams.yaml"
    bad.write_text("scene:\n  crop: [0, 0, 10, 10]\n  zoom: 2\n")
    with pytest.raises(ValueError, match=r"camera scene: unknown key\(s\) \['zoom'\]"):
        load_camera_calibration(bad)
