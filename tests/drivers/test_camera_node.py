"""The `dual_camera` node as a real process on two generated video files."""

import numpy as np
import pytest

from meldbot import topics
from meldbot.executables import SOURCE_ROOT
from tests.support.camera_video import write_video

pytestmark = pytest.mark.ros


def test_dual_camera_node_publishes_raw_info_and_pairs(ros_graph, tmp_path):
    scene = write_video(tmp_path / "scene.avi", frames=30, width=160, height=120)
    wrist = write_video(tmp_path / "wrist.avi", frames=30, width=160, height=120)
    calib = tmp_path / "cameras.yaml"
    calib.write_text("scene: {crop: [80, 0, 80, 60], output_size: [64, 64]}\n"
                     "wrist: {crop: [0, 60, 80, 60], output_size: [64, 64]}\n")
    pairs = ros_graph.subscribe(topics.PAIRED_IMAGE, namespace="arm")
    raw = ros_graph.subscribe(topics.SCENE_IMAGE, namespace="arm")
    info = ros_graph.subscribe(topics.WRIST_INFO, namespace="arm")
    ros_graph.start_node("dual_camera", namespace="arm", params_files=[SOURCE_ROOT / "config" / "dual_camera.yaml"],
                         params={
        "scene_source": str(scene), "wrist_source": str(wrist), "width": 160, "height": 120,
        "calibration": str(calib), "pair_tolerance_s": 0.05})
    msg = pairs.wait(count=3, timeout=90)[-1]
    assert (msg.height, msg.width, msg.encoding) == (64, 128, "rgb8")
    image = topics.msg_to_image(msg)
    # Interior of each half (the bottom rows of the generated video carry a frame counter bar).
    assert np.abs(image[8:56, 8:56].astype(int) - (0, 255, 0)).max() < 40  # scene crop: green quadrant
    assert np.abs(image[8:48, 72:120].astype(int) - (0, 0, 255)).max() < 40  # wrist crop: blue quadrant
    first = raw.wait(count=1, timeout=30)[0]
    assert (first.height, first.width) == (120, 160)
    assert info.wait(count=1, timeout=30)[0].width == 160
