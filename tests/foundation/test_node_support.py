"""Typed-dataclass parameters: defaults declared, overrides applied, empty lists allowed."""

from dataclasses import dataclass, field

import pytest
import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter

from meldbot.node_support import config_from_dict, declare_config


@dataclass
class ExampleConfig:
    rate_hz: float = 5.0
    name: str = "arm"
    joints: list[str] = field(default_factory=lambda: ["a", "b"])
    gains: list[float] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)


@pytest.fixture
def make_node():
    ctx = Context()
    rclpy.init(context=ctx, domain_id=0)
    nodes = []

    def make(overrides=None):
        node = rclpy.create_node("cfg_test", context=ctx, start_parameter_services=False,
                                 parameter_overrides=[Parameter(k, value=v) for k, v in (overrides or {}).items()])
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()
    rclpy.shutdown(context=ctx)


def test_defaults_including_empty_lists(make_node):
    config = declare_config(make_node(), ExampleConfig)
    assert config == ExampleConfig()


def test_overrides_and_int_to_float_coercion(make_node):
    config = declare_config(make_node({"rate_hz": 10, "joints": ["x"], "gains": [1.0, 2.0]}), ExampleConfig)
    assert config.rate_hz == 10.0 and isinstance(config.rate_hz, float)
    assert config.joints == ["x"] and config.gains == [1.0, 2.0] and config.ids == []


def test_config_from_dict_names_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['rat_hz'\]"):
        config_from_dict(ExampleConfig, {"rat_hz": 3.0}, "robot.yaml")


def test_wrong_type_names_the_parameter(make_node):
    with pytest.raises(SystemExit, match=r"parameter 'rate_hz' must be a number, got 'fast'"):
        declare_config(make_node({"rate_hz": "fast"}), ExampleConfig)


def test_run_node_waits_for_the_shutdown_messages_to_be_acknowledged(monkeypatch):
    """The shutdown hook's last messages (the final zero command) are acked before the node goes."""
    import signal

    from meldbot import node_support

    order = []
    monkeypatch.setattr(node_support, "_wait_for_acks", lambda node, timeout: order.append(("acks", timeout)))

    def make():
        node = rclpy.create_node("ack_test", start_parameter_services=False)
        node.done = True  # spin loop ends at once
        node.shutdown_hook = lambda: order.append("hook")
        destroy = node.destroy_node
        node.destroy_node = lambda: (order.append("destroy"), destroy())[1]
        return node

    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        assert node_support.run_node(make, args=[]) == 0
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    assert order == ["hook", ("acks", node_support.SHUTDOWN_ACK_TIMEOUT_S), "destroy"]


def test_a_sigint_during_a_callback_lets_it_finish_then_stops_the_node(monkeypatch):
    """A signal only asks the spin loop to stop (raised inside a callback or a finalizer it could be lost or
    cut the callback short): the callback finishes, the shutdown hook runs, the caller's Ctrl-C is back."""
    import os
    import signal
    import time

    from meldbot import node_support

    order = []
    monkeypatch.setattr(node_support, "_wait_for_acks", lambda node, timeout: None)

    def make():
        node = rclpy.create_node("sigint_callback_test", start_parameter_services=False)

        def tick():
            timer.cancel()
            order.append("signalled")
            os.kill(os.getpid(), signal.SIGINT)
            order.append("callback finished")

        timer = node.create_timer(0.01, tick)
        node.shutdown_hook = lambda: order.append("hook")
        return node

    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        assert node_support.run_node(make, args=[]) == 0
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):  # a SIGTERM after the loop is not swallowed by its stop flag
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):
                time.sleep(0.01)
    finally:
        signal.signal(signal.SIGTERM, sigterm)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert order == ["signalled", "callback finished", "hook"]


NODE_STARTED_WITH_SIGINT_IGNORED = """
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a process started by nohup or a script's background job has it
import rclpy
from meldbot.node_support import run_node
def make():
    node = rclpy.create_node("sigint_test", start_parameter_services=False)
    print("up", flush=True)
    return node
sys.exit(run_node(make))
"""


def test_a_node_started_with_sigint_ignored_still_stops_cleanly_on_sigint(ros_graph):
    """Ctrl-C / ros2 launch's SIGINT stops a node even when its parent ignored SIGINT (inherited)."""
    import sys
    import time

    proc = ros_graph.start([sys.executable, "-c", NODE_STARTED_WITH_SIGINT_IGNORED], "sigint_test")
    deadline = time.monotonic() + 60
    while "up" not in proc.output():
        assert proc.returncode is None and time.monotonic() < deadline, proc.output()[-2000:]
        time.sleep(0.1)
    assert proc.stop() == 0, proc.output()[-2000:]


def test_wait_for_acks_waits_on_every_publisher_and_names_the_unacknowledged(capsys):
    from meldbot import node_support

    class FakePublisher:
        def __init__(self, topic_name, acked):
            self.topic_name, self.acked, self.waited_ns = topic_name, acked, None

        def wait_for_all_acked(self, timeout):
            self.waited_ns = timeout.nanoseconds
            return self.acked

    pubs = [FakePublisher("/arm/velocity_controller/commands", False), FakePublisher("/diagnostics", True)]
    node_support._wait_for_acks(type("FakeNode", (), {"publishers": pubs})(), 0.5)
    assert [p.waited_ns for p in pubs] == [500_000_000, 500_000_000]
    err = capsys.readouterr().err
    assert "/arm/velocity_controller/commands: final messages not acknowledged within 0.5 s" in err
    assert "/diagnostics" not in err
