"""The harness itself: two separate processes exchange contract messages on an isolated domain."""

import fcntl
import signal
import sys
import time

from meldbot import topics
from tests.support.fastdds_shm import clean_zombies, zombie_files
from tests.support.ros_graph import NodeProcess


def test_message_flows_between_processes_on_isolated_domain(ros_graph):
    # A child process publishes joint states through the contract; the test collects them.
    script = (
        "import rclpy, time\n"
        "from meldbot import topics\n"
        "rclpy.init()\n"
        "n = rclpy.create_node('talker', namespace='arm')\n"
        "pub = topics.create_publisher(n, topics.JOINT_STATES)\n"
        "for i in range(400):\n"
        "    pub.publish(topics.joint_state_msg(['j1'], [i * 0.01], [0.5], stamp_s=i))\n"
        "    time.sleep(0.05)\n"
    )
    collector = ros_graph.subscribe(topics.JOINT_STATES, namespace="arm")
    proc = ros_graph.start([sys.executable, "-c", script], "talker")
    msgs = collector.wait(count=3, timeout=60)
    assert list(msgs[0].name) == ["j1"]
    assert msgs[-1].position[0] > msgs[0].position[0]
    assert proc.returncode is None  # still running: the fixture stops it
    assert ros_graph.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert ros_graph.env["ROS_DOMAIN_ID"] == str(ros_graph.domain_id)


def test_shared_memory_of_dead_dds_processes_is_removed_and_live_ones_kept(tmp_path):
    names = ["fastdds_0123456789abcdef", "fastdds_0123456789abcdef_el",  # a dead participant's segment
             "fastdds_fedcba9876543210", "fastdds_fedcba9876543210_el",  # a live one's
             "fastdds_port7411", "fastdds_port7411_el", "sem.fastdds_port7411_mutex",  # a dead port
             "fastdds_port7413",  # a port without its lock file: not ours to judge
             "fastdds_notes.txt", "other_program_el"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    with open(tmp_path / "fastdds_fedcba9876543210_el", "ab") as live_lock:
        fcntl.flock(live_lock, fcntl.LOCK_EX)
        removed = clean_zombies(tmp_path)
    assert sorted(p.name for p in removed) == sorted(names[:2] + names[4:7])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:4] + names[7:])


def test_a_killed_node_leaves_no_shared_memory_behind(ros_graph):
    before = set(zombie_files())
    script = ("import rclpy, time\nfrom meldbot import topics\nrclpy.init()\n"
              "n = rclpy.create_node('doomed', namespace='arm')\n"
              "pub = topics.create_publisher(n, topics.JOINT_STATES)\ntime.sleep(600)\n")
    proc = ros_graph.start([sys.executable, "-c", script], "doomed")
    ros_graph.wait_for_publisher(topics.JOINT_STATES, namespace="arm")  # its participant is up
    proc.signal(signal.SIGKILL)
    proc.wait(30)
    left = set(zombie_files()) - before
    ros_graph.close()
    assert left, "the kill left no shared memory: Fast DDS did not use its SHM transport here"
    assert not set(zombie_files()) & left


def test_a_node_deaf_to_sigint_is_aborted_with_its_tracebacks_in_the_log(tmp_path):
    script = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(600)\n"
    proc = NodeProcess([sys.executable, "-c", script], {"PYTHONFAULTHANDLER": "1"}, tmp_path / "deaf.log")
    deadline = time.monotonic() + 30
    while "up" not in proc.output():
        assert time.monotonic() < deadline, proc.output()
        time.sleep(0.05)
    assert proc.stop(timeout=1) == -signal.SIGABRT
    log = proc.output()
    assert "Fatal Python error: Aborted" in log and 'File "<string>", line 4' in log  # where it hung: the sleep
