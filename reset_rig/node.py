"""reset_rig node: the GRBL reset rig on ROS 2, and the task protocol the trial runner speaks.

- ``/task/request`` (String, latched): the rig moves to that task's pose, then publishes the id on
  ``/task/current`` (latched). The rig keeps pursuing the last requested task: after a reconnect or a
  homing it goes back there and re-publishes. A manual command or ``stop`` hands control to the operator
  until the next request.
- ``/reset_rig/joint_states``: rail (m) and rotation (rad), once the rig is homed (position known).
- ``/reset_rig/commands`` (Float64MultiArray [rail m, rotation rad]): a target pose; refused with an
  error before anything is sent if outside the configured travel.
- services ``/reset_rig/home``, ``/reset_rig/stop``, ``/reset_rig/goto_task`` (Trigger).
- ``/diagnostics``: idle / moving (ok), alarm / disconnected (error); ``/reset_rig/probe`` (Bool).

All serial work runs on one worker thread; the ROS callbacks only queue jobs (and `stop` sends its
feed hold directly, so it never waits behind a move).
"""

from __future__ import annotations

import math
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from meldbot import topics
from meldbot.node_support import declare_config, diagnostic_array, diagnostic_status, run_node
from reset_rig.rig import DISCONNECTED, IDLE, Rig, RigConfig, RigError, RigTravelError

DIAG_LEVEL = {IDLE: "ok", "moving": "ok", "alarm": "error", DISCONNECTED: "error"}


@dataclass
class RigNodeConfig(RigConfig):
    publish_rate_hz: float = 20.0
    diagnostics_period_s: float = 1.0
    rail_joint: str = "rig_rail"
    rotation_joint: str = "rig_rotation"
    service_timeout_s: float = 300.0


def _make_node():
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.node import Node
    from std_msgs.msg import Bool, String

    class RigNode(Node):
        def __init__(self):
            super().__init__("reset_rig")
            self.cfg = declare_config(self, RigNodeConfig)
            try:
                rig_cfg = RigConfig(**{k: getattr(self.cfg, k) for k in RigConfig.__dataclass_fields__})
                self.rig = Rig(rig_cfg)
            except (ValueError, FileNotFoundError) as exc:
                raise SystemExit(f"reset_rig: {exc}") from exc
            self._jobs: queue.Queue = queue.Queue()
            self._closing = threading.Event()
            self._lock = threading.Lock()
            self._last_request: str | None = None
            self._desired: str | None = None  # the task the rig should be at (None: operator control)
            self._failed: tuple[str, int] | None = None  # (task, home_count) of the last failed attempt
            self._published_task: str | None = None
            self._last_diag_state = DISCONNECTED  # the start state: only changes are logged
            self._String, self._Bool = String, Bool

            self.pub_joints = topics.create_publisher(self, topics.RIG_JOINT_STATES)
            self.pub_current = topics.create_publisher(self, topics.TASK_CURRENT)
            self.pub_diag = topics.create_publisher(self, topics.DIAGNOSTICS)
            self.pub_probe = topics.create_publisher(self, topics.RIG_PROBE)
            topics.create_subscription(self, topics.TASK_REQUEST, self._on_task_request)
            topics.create_subscription(self, topics.RIG_COMMANDS, self._on_command)
            group = ReentrantCallbackGroup()  # services wait on the worker; they must not block each other
            for service, cb in ((topics.RIG_HOME, self._srv_home), (topics.RIG_STOP, self._srv_stop),
                                (topics.RIG_GOTO_TASK, self._srv_goto)):
                self.create_service(service.type_class, service.name, cb, callback_group=group)
            self.create_timer(1.0 / self.cfg.publish_rate_hz, self._publish)
            self.create_timer(self.cfg.diagnostics_period_s, lambda: self._publish_diagnostics(force=True))
            self._worker = threading.Thread(target=self._work, daemon=True, name="reset-rig-worker")
            self._worker.start()
            self.get_logger().info(f"reset rig on {self.cfg.port}: {len(self.rig.tasks)} tasks, travel rail "
                                   f"[{self.cfg.rail_min_mm:g}, {self.cfg.rail_max_mm:g}] mm, rotation "
                                   f"[{self.cfg.rotation_min_deg:g}, {self.cfg.rotation_max_deg:g}] deg")

        # --- worker ----------------------------------------------------------------------------
        def _work(self):
            while not self._closing.is_set():
                try:
                    fn, fut = self._jobs.get(timeout=self.cfg.poll_period_s)
                except queue.Empty:
                    try:
                        self.rig.tick()
                        self._pursue_task()
                    except Exception as exc:  # the worker must outlive any surprise; diagnostics show the state
                        self.get_logger().error(f"rig supervision: {type(exc).__name__}: {exc}")
                    continue
                try:
                    fut.set_result(fn())
                except Exception as exc:  # the caller reports it
                    fut.set_exception(exc)

        def _submit(self, fn) -> Future:
            fut: Future = Future()
            self._jobs.put((fn, fut))
            return fut

        def _pursue_task(self):
            with self._lock:
                desired = self._desired
            if desired is None:
                return
            snap = self.rig.snapshot()
            if snap.state != IDLE or snap.task_id == desired or self._failed == (desired, self.rig.home_count):
                return
            try:
                self.rig.goto_task(desired)
                self.get_logger().info(f"task '{desired}' in place")
            except RigError as exc:
                self.get_logger().error(f"cannot set task '{desired}': {exc}")
                if isinstance(exc, RigTravelError) or desired not in self.rig.tasks:
                    with self._lock:
                        self._desired = None  # can never succeed: do not retry
                else:
                    self._failed = (desired, self.rig.home_count)  # retry after the next homing

        # --- callbacks ---------------------------------------------------------------------------
        def _on_task_request(self, msg):
            task_id = msg.data.strip()
            if task_id not in self.rig.tasks:
                self.get_logger().error(f"/task/request '{task_id}' is not in the rig's task table "
                                        f"({len(self.rig.tasks)} tasks: {', '.join(sorted(self.rig.tasks)[:4])}...)")
                return
            with self._lock:
                self._last_request = self._desired = task_id
                self._failed = None
            self.get_logger().info(f"task requested: '{task_id}'")

        def _on_command(self, msg):
            try:
                rail_m, rot_rad = topics.float_array(msg, 2, "reset_rig command")
                rail_mm, rot_deg = rail_m * 1000.0, math.degrees(rot_rad)
                self.rig.check_target(rail_mm, rot_deg)
            except ValueError as exc:
                self.get_logger().error(f"rig command refused, nothing sent: {exc}")
                return
            with self._lock:
                self._desired = None  # the operator took over until the next /task/request
            fut = self._submit(lambda: self.rig.move_to(rail_mm, rot_deg))
            fut.add_done_callback(lambda f: f.exception() and self.get_logger().error(f"rig command: {f.exception()}"))

        def _wait(self, fut: Future, response):
            try:
                fut.result(timeout=self.cfg.service_timeout_s)
                response.success = True
                response.message = self.rig.snapshot().message
            except Exception as exc:
                response.success, response.message = False, str(exc)
            return response

        def _srv_home(self, request, response):
            def job():
                count = self.rig.home_count
                if self.rig.state == DISCONNECTED:
                    self.rig.connect()  # homes too when home_on_connect
                if self.rig.home_count == count:
                    self.rig.home()
            return self._wait(self._submit(job), response)

        def _srv_stop(self, request, response):
            with self._lock:
                self._desired = None
            response.message = self.rig.stop()
            response.success = True
            return response

        def _srv_goto(self, request, response):
            with self._lock:
                task_id = self._last_request
                self._desired = task_id
                self._failed = None
            if task_id is None:
                response.success, response.message = False, "no task requested on /task/request yet"
                return response
            return self._wait(self._submit(lambda: self.rig.goto_task(task_id)), response)

        # --- publishing --------------------------------------------------------------------------
        def _publish(self):
            snap = self.rig.snapshot()
            now = self.get_clock().now().nanoseconds * 1e-9
            if snap.rail_mm is not None:
                self.pub_joints.publish(topics.joint_state_msg(
                    [self.cfg.rail_joint, self.cfg.rotation_joint],
                    [snap.rail_mm / 1000.0, math.radians(snap.rotation_deg)], stamp_s=now))
            if snap.state != DISCONNECTED:
                self.pub_probe.publish(self._Bool(data=snap.probe))
            if snap.task_id != self._published_task and (snap.task_id is not None or snap.state != IDLE):
                # Announce a task once in place; withdraw it ("") when the rig leaves that pose.
                self._published_task = snap.task_id
                self.pub_current.publish(self._String(data=snap.task_id or ""))
            self._publish_diagnostics(force=False)

        def _publish_diagnostics(self, force: bool):
            snap = self.rig.snapshot()
            if not force and snap.state == self._last_diag_state:
                return
            if snap.state != self._last_diag_state:
                if DIAG_LEVEL[snap.state] == "ok":  # rclpy wants one severity per call site
                    self.get_logger().info(f"rig {snap.state}: {snap.message}")
                else:
                    self.get_logger().error(f"rig {snap.state}: {snap.message}")
            self._last_diag_state = snap.state
            values = {"state": snap.state, "homed": snap.homed, "grbl_state": snap.grbl_state,
                      "rail_mm": "" if snap.rail_mm is None else f"{snap.rail_mm:.3f}",
                      "rotation_deg": "" if snap.rotation_deg is None else f"{snap.rotation_deg:.3f}",
                      "alarm": snap.alarm_code or "", "task": snap.task_id or "", "requested": self._desired or "",
                      "port": self.cfg.port, "settings": self.rig.settings_label(),
                      "probe": snap.probe}
            status = diagnostic_status("reset_rig", DIAG_LEVEL[snap.state], f"{snap.state}: {snap.message}",
                                       values, hardware_id=f"grbl:{self.cfg.port}")
            self.pub_diag.publish(diagnostic_array(self, [status]))

        def shutdown_hook(self):
            self._closing.set()
            self.rig.stop()
            self._worker.join(timeout=5)
            self.rig.close()

    return RigNode()


def main() -> int:
    return run_node(_make_node, executor_threads=4)
