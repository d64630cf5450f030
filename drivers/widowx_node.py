"""ROS 2 node `widowx_driver`: glue around `drivers.widowx.WidowXArm`.

The control loop runs in its own thread at `loop_rate_hz` (publishing `joint_states` every cycle), so
a blocking service (`home`) or a slow subscriber never delays it; services run in a reentrant group
on a multi-threaded executor so `estop` is served even while `home` is in progress.
"""

from __future__ import annotations

import threading
import time

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node

from drivers.dynamixel_bus import BusError
from drivers.widowx import StartupError, WidowXArm, WidowXConfig
from meldbot import topics
from meldbot.node_support import declare_config, diagnostic_array, diagnostic_status, run_node


class WidowXNode(Node):
    def __init__(self):
        super().__init__("widowx_driver")
        self.cfg = declare_config(self, WidowXConfig)
        try:
            self.arm = WidowXArm(self.cfg)
        except (ValueError, FileNotFoundError) as exc:
            raise SystemExit(f"widowx_driver: {exc}") from exc
        group = ReentrantCallbackGroup()
        self.joint_pub = topics.create_publisher(self, topics.JOINT_STATES)
        self.diag_pub = topics.create_publisher(self, topics.DIAGNOSTICS)
        topics.create_subscription(self, topics.JOINT_VELOCITY_COMMANDS, self._on_command)
        topics.create_subscription(self, topics.GRIPPER_COMMANDS, self._on_gripper)
        for service, callback in ((topics.ARM_ESTOP, self._srv_estop), (topics.ARM_ENABLE, self._srv_enable),
                                  (topics.ARM_REBOOT, self._srv_reboot), (topics.ARM_HOME, self._srv_home)):
            self.create_service(service.type_class, service.name, callback, callback_group=group)
        self.create_timer(1.0, self._publish_diagnostics, callback_group=group)
        try:
            self.arm.start()
        except (StartupError, BusError) as exc:
            self.arm.close()
            raise SystemExit(f"widowx_driver: {exc}") from exc
        self.get_logger().info(f"WidowX up on {self.cfg.port}: joints {self.arm.command_names}, "
                               f"loop {self.cfg.loop_rate_hz} Hz, bus watchdog {self.cfg.bus_watchdog_ms} ms")
        self._stop = threading.Event()
        self._loop_errors = 0
        self.arm.loop_running = True
        self._thread = threading.Thread(target=self._loop, name="widowx-loop", daemon=True)
        self._thread.start()

    # --- loop -----------------------------------------------------------------------------------------
    def _loop(self):
        period = 1.0 / self.cfg.loop_rate_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                state = self.arm.step()
                if state is not None:
                    stamp = self.get_clock().now().nanoseconds * 1e-9
                    self.joint_pub.publish(topics.joint_state_msg(state.names, state.position, state.velocity,
                                                                  state.effort, stamp_s=stamp))
            except Exception as exc:  # e.g. the USB adapter vanished: report, keep trying
                self._loop_errors += 1
                self.arm.stats.last_error = f"loop: {exc}"
                self.get_logger().error(f"control loop: {exc}", throttle_duration_sec=2.0)
                time.sleep(0.2)
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()  # overran: do not try to catch up with a burst

    # --- callbacks ----------------------------------------------------------------------------------------
    def _on_command(self, msg):
        try:
            self.arm.command(topics.float_array(msg, self.arm.n, "velocity command"))
        except ValueError as exc:
            self.get_logger().warning(f"rejected velocity command: {exc}", throttle_duration_sec=1.0)

    def _on_gripper(self, msg):
        try:
            self.arm.command_gripper(float(topics.float_array(msg, 1, "gripper command")[0]))
        except ValueError as exc:
            self.get_logger().warning(f"rejected gripper command: {exc}", throttle_duration_sec=1.0)

    def _respond(self, response, fn):
        try:
            ok, message = fn()
        except (BusError, RuntimeError) as exc:
            ok, message = False, str(exc)
        response.success, response.message = bool(ok), message
        (self.get_logger().info if ok else self.get_logger().error)(message)
        return response

    def _srv_estop(self, request, response):
        return self._respond(response, lambda: (self.arm.estop(), (True, "e-stop: velocities zero, torque off"))[1])

    def _srv_enable(self, request, response):
        on = bool(request.data)
        return self._respond(response, lambda: (self.arm.enable(on), (True, f"torque {'on' if on else 'off'}"))[1])

    def _srv_reboot(self, request, response):
        return self._respond(response, lambda: (True, self.arm.reboot()))

    def _srv_home(self, request, response):
        return self._respond(response, self.arm.home)

    def _publish_diagnostics(self):
        level, message = self.arm.level()
        values = self.arm.diagnostics()
        values["loop_exceptions"] = self._loop_errors
        status = diagnostic_status(f"{self.get_namespace().strip('/') or 'arm'}/widowx_driver", level, message,
                                   values, hardware_id=self.cfg.port)
        self.diag_pub.publish(diagnostic_array(self, [status]))

    def shutdown_hook(self):
        """Stop the loop, send zero velocity (torque stays on: the arm holds its pose), close the port."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.arm.close()


def main(args=None) -> int:
    return run_node(lambda: WidowXNode(), executor_threads=4, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
