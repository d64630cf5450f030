"""Test harness: run meldbot nodes as real processes on an isolated DDS domain and observe them.

Each test gets its own ROS_DOMAIN_ID (reserved with a lock file, so concurrent pytest runs on one
machine never share a domain) and ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, so no discovery traffic
leaves loopback. Waits take generous timeouts that bound a hang; no assertion depends on speed.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from meldbot import topics
from meldbot.executables import command_for, isolated_ros_env, ros_args
from tests.support.fastdds_shm import clean_zombies

LOCK_DIR = Path("/tmp/meldbot-test-domains")
DOMAIN_RANGE = range(11, 101)


class DomainLease:
    """An exclusive ROS_DOMAIN_ID for the life of one test."""

    def __init__(self):
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        start = os.getpid() % len(DOMAIN_RANGE)
        for i in range(len(DOMAIN_RANGE)):
            domain = DOMAIN_RANGE[(start + i) % len(DOMAIN_RANGE)]
            fh = open(LOCK_DIR / f"{domain}.lock", "w")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            self.domain_id, self._fh = domain, fh
            return
        raise RuntimeError("no free ROS domain id for the test")

    def release(self):
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()


class Collector:
    """Messages received on one subscription, with blocking waits."""

    def __init__(self):
        self.messages: list = []
        self._cond = threading.Condition()

    def _on_message(self, msg):
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def wait(self, count: int = 1, timeout: float = 60.0, predicate: Callable | None = None, start: int = 0) -> list:
        """Block until `count` messages (matching `predicate`, from index `start` on) arrived.

        AssertionError on timeout.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                matching = [m for m in self.messages[start:] if predicate is None or predicate(m)]
                if len(matching) >= count:
                    return matching
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"got {len(matching)} of {count} expected messages in {timeout}s")
                self._cond.wait(left)

    def clear(self):
        with self._cond:
            self.messages.clear()


class NodeProcess:
    """A node (or any command) running as a child process, output captured to a log file."""

    def __init__(self, argv: list[str], env: dict, log_path: Path, cwd: Path | None = None):
        self.argv, self.log_path = argv, log_path
        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True)

    @property
    def returncode(self):
        return self.popen.poll()

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float = 120.0) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{self.argv[:3]} still running after {timeout}s; log:\n{self.output()[-3000:]}") \
                from exc

    def signal(self, sig=signal.SIGINT):
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGINT; if it does not end, SIGABRT (the log gets every thread's traceback), then SIGKILL.

        Returns the exit code (0 for a clean end on SIGINT).
        """
        if self.popen.poll() is None:
            self.signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                # PYTHONFAULTHANDLER (set in the harness env) dumps where a hung node is stuck on SIGABRT
                os.killpg(self.popen.pid, signal.SIGABRT)
                try:
                    self.popen.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                    self.popen.wait()
        self._log.close()
        return self.popen.returncode


class RosGraph:
    """Start nodes in an isolated domain; subscribe, publish and call services from the test."""

    def __init__(self, workdir: Path):
        self.lease = DomainLease()
        self.domain_id = self.lease.domain_id
        self.workdir = Path(workdir)
        self.env = {**isolated_ros_env(self.domain_id), "PYTHONFAULTHANDLER": "1"}
        self.processes: list[NodeProcess] = []
        self._node = None
        self._closed = False

    # --- processes -----------------------------------------------------------------------------
    def start_node(self, exec_name: str, name: str | None = None, namespace: str | None = None,
                   params: dict | None = None, params_files=(), remaps=()) -> NodeProcess:
        argv = command_for(exec_name) + ros_args(name, namespace, params_files, params, remaps)
        return self.start(argv, name or exec_name)

    def start(self, argv: list[str], label: str, env: dict | None = None) -> NodeProcess:
        log = self.workdir / f"{label.replace('/', '_')}-{len(self.processes)}.log"
        proc = NodeProcess(argv, {**self.env, **(env or {})}, log)
        self.processes.append(proc)
        return proc

    # --- in-test ROS node ------------------------------------------------------------------------
    @property
    def node(self):
        if self._node is None:
            import rclpy
            from rclpy.context import Context
            from rclpy.executors import SingleThreadedExecutor

            self._context = Context()
            rclpy.init(context=self._context, domain_id=self.domain_id)
            self._node = rclpy.create_node("meldbot_test_probe", context=self._context)
            self._executor = SingleThreadedExecutor(context=self._context)
            self._executor.add_node(self._node)
            self._spin = threading.Thread(target=self._spin_loop, daemon=True)
            self._spin.start()
        return self._node

    def _spin_loop(self):
        while self._context.ok():
            try:
                self._executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down mid-spin
                break

    def subscribe(self, topic: topics.Topic, namespace: str = "", raw: bool = False) -> Collector:
        collector = Collector()
        name = _resolve(topic.name, namespace)
        self.node.create_subscription(topic.type_class, name, collector._on_message,
                                      topics.qos_profile(topic.qos), raw=raw)
        return collector

    def publisher(self, topic: topics.Topic, namespace: str = ""):
        return self.node.create_publisher(topic.type_class, _resolve(topic.name, namespace),
                                          topics.qos_profile(topic.qos))

    def wait_for_publisher(self, topic: topics.Topic, namespace: str = "", timeout: float = 60.0):
        name = _resolve(topic.name, namespace)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.node.count_publishers(name) > 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"no publisher on {name} after {timeout}s")

    def call(self, service: topics.Service, request=None, namespace: str = "", timeout: float = 60.0):
        client = self.node.create_client(service.type_class, _resolve(service.name, namespace))
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise AssertionError(f"service {client.srv_name} not available after {timeout}s")
            future = client.call_async(request if request is not None else service.type_class.Request())
            deadline = time.monotonic() + timeout
            while not future.done():
                if time.monotonic() > deadline:
                    raise AssertionError(f"service {client.srv_name} did not answer in {timeout}s")
                time.sleep(0.02)
            return future.result()
        finally:
            self.node.destroy_client(client)

    def close(self):
        """Stop every process, then the probe node; again later is a no-op."""
        if self._closed:
            return
        self._closed = True
        for proc in reversed(self.processes):
            proc.stop()
        if self._node is not None:
            self._context.shutdown()
            self._spin.join(timeout=5)
            self._executor.shutdown()
            self._node.destroy_node()
        if any(proc.returncode in (-signal.SIGKILL, -signal.SIGABRT) for proc in self.processes):
            clean_zombies()  # a killed node could not remove its shared memory: the next test must not meet it
        self.lease.release()


def _resolve(name: str, namespace: str) -> str:
    if name.startswith("/") or not namespace:
        return name if name.startswith("/") else "/" + name
    return "/" + namespace.strip("/") + "/" + name
