"""success_sensor node: debounced insertion success as `success` (Bool) and `reward/sparse` (Float64).

Started in the arm namespace (names are relative), like a twin publishing the same signals. Reads the
carrier of the configured NIC(s) every ``poll_period_s``; publishes at ``publish_rate_hz`` and at once
on a change. Listens to ``/task/current`` (which port is correct) and, with ``use_probe``, to
``/reset_rig/probe``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from meldbot import topics
from meldbot.node_support import declare_config, diagnostic_array, diagnostic_status, run_node
from reset_rig.success_sensor import SensorError, SuccessSensor, SuccessSensorConfig, task_ports_from_table


@dataclass
class SuccessNodeConfig(SuccessSensorConfig):
    publish_rate_hz: float = 10.0
    diagnostics_period_s: float = 1.0
    probe_stale_s: float = 1.0  # a probe reading older than this counts as unknown


def _make_node():
    from rclpy.node import Node
    from std_msgs.msg import Bool, Float64

    class SuccessNode(Node):
        def __init__(self):
            super().__init__("success_sensor")
            try:
                self.cfg = declare_config(self, SuccessNodeConfig)
                sensor_cfg = SuccessSensorConfig(**{k: getattr(self.cfg, k)
                                                    for k in SuccessSensorConfig.__dataclass_fields__})
                ports = task_ports_from_table(self.cfg.tasks_file) if self.cfg.port_interfaces else {}
                self.sensor = SuccessSensor(sensor_cfg, ports)
                self.sensor.read_raw()  # fail at start-up on a missing interface, not on the first trial
            except (ValueError, FileNotFoundError, SensorError) as exc:
                raise SystemExit(f"success_sensor: {exc}") from exc
            self._Bool, self._Float64 = Bool, Float64
            self.pub_success = topics.create_publisher(self, topics.SUCCESS)
            self.pub_reward = topics.create_publisher(self, topics.SPARSE_REWARD)
            self.pub_diag = topics.create_publisher(self, topics.DIAGNOSTICS)
            topics.create_subscription(self, topics.TASK_CURRENT, lambda m: self.sensor.set_task(m.data))
            self._probe_at = 0.0
            if self.cfg.use_probe:
                topics.create_subscription(self, topics.RIG_PROBE, self._on_probe)
            self._last = None
            self._last_publish = 0.0
            self._error = ""
            self.create_timer(self.cfg.poll_period_s, self._poll)
            self.create_timer(self.cfg.diagnostics_period_s, self._diagnostics)
            source = self.cfg.interface or self.cfg.port_interfaces or "probe"
            self.get_logger().info(f"success sensor on {source}"
                                   f"{' + probe' if self.cfg.use_probe and source != 'probe' else ''}")

        def _on_probe(self, msg):
            self._probe_at = time.monotonic()
            self.sensor.set_probe(bool(msg.data))

        def _poll(self):
            now = time.monotonic()
            if self.cfg.use_probe and now - self._probe_at > self.cfg.probe_stale_s:
                self.sensor.set_probe(None)
            try:
                reading = self.sensor.sample(now)
                self._error = ""
            except SensorError as exc:  # NIC unplugged from the computer: report, publish no success
                if exc.args[0] != self._error:
                    self.get_logger().error(str(exc))
                self._error = str(exc)
                return
            changed = self._last is None or reading.success != self._last.success
            self._last = reading
            if changed or now - self._last_publish >= 1.0 / self.cfg.publish_rate_hz:
                self._last_publish = now
                self.pub_success.publish(self._Bool(data=reading.success))
                self.pub_reward.publish(self._Float64(data=1.0 if reading.success else 0.0))
                if changed:
                    self.get_logger().info(f"success -> {reading.success} (sources {reading.sources})")

        def _diagnostics(self):
            r = self._last
            if self._error:
                status = diagnostic_status("success_sensor", "error", self._error)
            else:
                values = {"success": r.success if r else "", "raw": r.raw if r else "", "task": self.sensor.task_id or ""}
                values.update({k: "" if v is None else v for k, v in (r.sources if r else {}).items()})
                status = diagnostic_status("success_sensor", "warn" if r and r.note else "ok",
                                           (r.note if r and r.note else "reading"), values)
            self.pub_diag.publish(diagnostic_array(self, [status]))

        def shutdown_hook(self):
            self.pub_success.publish(self._Bool(data=False))

    return SuccessNode()


def main() -> int:
    return run_node(_make_node)
