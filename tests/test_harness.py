"""The harness itself: two separate processes exchange contract messages on an isolated domain."""

import sys

from meldbot import topics


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
