"""The real robot's trial graph (launch/widowx_trials.launch.yaml) with every device emulated.

Driver on the emulated Dynamixel bus (pty), cameras on video files, reset rig on the emulated GRBL
board (pty), success sensor on a copy of sysfs: the same launch file, nodes and driver code as on the
robot. The trial runner must move the rig to each task, run the episodes through the policy server,
and record success only where the link came up.
"""

import json
import sys
import time

import pytest

from belief.policy_file import save_policy
from belief.untrained import untrained_policy
from meldbot.mcap_schema import recorded_topic_counts
from reset_rig.rig import load_task_table
from tests.support.camera_video import write_video
from tests.support.dynamixel_emulator import DynamixelBusEmulator, parse_sync_write, widowx250_servos
from tests.support.grbl_emulator import GrblEmulator

pytestmark = pytest.mark.ros
WIDOWX_JOINTS = ["waist", "shoulder", "elbow", "wrist_angle", "wrist_rotate"]
SYNC_WRITE, GOAL_VELOCITY = 0x83, 104


@pytest.fixture
def devices(tmp_path):
    bus = DynamixelBusEmulator(widowx250_servos()).start()
    grbl = GrblEmulator(time_scale=25.0).start()
    try:
        yield bus, grbl
    finally:
        bus.stop()
        grbl.stop()


def test_trials_on_emulated_hardware_move_rig_drive_servos_and_record_success(ros_graph, tmp_path, devices):
    bus, grbl = devices
    scene, wrist = (write_video(tmp_path / "scene.avi", width=640, height=480),
                    write_video(tmp_path / "wrist.avi", width=640, height=480))
    carrier = tmp_path / "net" / "eth1" / "carrier"
    carrier.parent.mkdir(parents=True)
    carrier.write_text("0\n")
    module, meta = untrained_policy(WIDOWX_JOINTS, [3.14159] * 5, control_rate_hz=3.3, env="widowx_cable")
    policy = save_policy(module, meta, tmp_path / "policy.ts")
    out = tmp_path / "trials"
    launch = ros_graph.start([sys.executable, "-m", "meldbot.cli", "launch", "launch/widowx_trials.launch.yaml",
                              f"policy:={policy}", f"out_dir:={out}", "tasks:=test-00,test-01", "episode_steps:=6",
                              f"port:={bus.port}", f"rig_port:={grbl.port}", f"scene:={scene}", f"wrist:={wrist}",
                              f"sysfs_net:={tmp_path / 'net'}"], "widowx_trials")

    # The link comes up (plug seated) once the first trial is over: only the second trial succeeds.
    journal_path = out / "journal.json"
    deadline = time.monotonic() + 400
    while True:
        if journal_path.exists() and json.loads(journal_path.read_text())["trials"]["test-00"]["complete"]:
            carrier.write_text("1\n")
            break
        assert launch.returncode is None, launch.output()[-4000:]
        assert time.monotonic() < deadline, launch.output()[-4000:]
        time.sleep(0.05)
    assert launch.wait(400) == 0, launch.output()[-4000:]

    trials = json.loads(journal_path.read_text())["trials"]
    assert [e["success"] for e in trials["test-00"]["episodes"]] == [False, False]
    assert trials["test-01"]["episodes"][-1]["success"] is True
    assert "Trial summary" in launch.output()
    # The rig was driven to the last task's pose (machine coordinates of the emulated board).
    task = load_task_table()["test-01"]
    assert grbl.mpos[0] == pytest.approx(-98.0 + task.rail_mm, abs=1e-3)
    assert grbl.mpos[1] == pytest.approx(-45.0 + task.rotation_deg, abs=1e-3)
    # The policy's commands reached the servos' Goal Velocity registers.
    writes = [parse_sync_write(i.params) for i in bus.log.of(SYNC_WRITE, address=GOAL_VELOCITY)]
    assert any(int.from_bytes(v, "little", signed=True) != 0 for _, values in writes for v in values.values())
    counts = recorded_topic_counts(out / "trials.mcap")
    for topic in ("/arm/joint_states", "/arm/camera_pair/image_raw", "/arm/velocity_controller/commands",
                  "/arm/success", "/reset_rig/joint_states", "/task/current"):
        assert counts.get(topic, 0) > 0, f"{topic} not recorded: {counts}"
