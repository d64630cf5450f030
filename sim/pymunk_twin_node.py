"""Pymunk twin node: the planar peg arm on exactly the topics a real arm, its cameras and rig use.

Arm namespace: joint_states, velocity_controller/commands (held until the watchdog expires, as the
driver does), home/estop/enable services, scene/wrist/paired camera images, reward/sparse,
reward/shaped, success. Task protocol: /task/request -> move the slot -> /task/current.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node

from meldbot import topics
from meldbot.node_support import declare_config, run_node
from sim.planar_arm import JOINT_NAMES, PlanarPegArm, make_task_set


@dataclass
class PymunkTwinConfig:
    physics_rate_hz: float = 50.0  # joint_states rate; each tick advances physics by 1/rate s
    camera_rate_hz: float = 10.0
    command_timeout_s: float = 0.5  # watchdog: no command for this long -> zero velocity
    task_seed: int = 0
    initial_task: str = "train-00"
    frame_id: str = "twin_base"


class PymunkTwinNode(Node):
    def __init__(self):
        super().__init__("pymunk_twin")
        self.config = declare_config(self, PymunkTwinConfig)
        self.arm = PlanarPegArm()
        self.task_set = make_task_set(seed=self.config.task_seed)
        self._set_task(self.config.initial_task)
        self.arm.reset_arm()
        self.command = np.zeros(len(JOINT_NAMES))
        self.command_time = -np.inf
        self.torque_enabled = True
        self.pubs = {t: topics.create_publisher(self, t) for t in (
            topics.JOINT_STATES, topics.SCENE_IMAGE, topics.WRIST_IMAGE, topics.PAIRED_IMAGE,
            topics.SPARSE_REWARD, topics.SHAPED_REWARD, topics.SUCCESS, topics.TASK_CURRENT)}
        topics.create_subscription(self, topics.JOINT_VELOCITY_COMMANDS, self._on_command)
        topics.create_subscription(self, topics.TASK_REQUEST, self._on_task_request)
        topics.create_service(self, topics.ARM_HOME, self._on_home)
        topics.create_service(self, topics.ARM_ESTOP, self._on_estop)
        topics.create_service(self, topics.ARM_ENABLE, self._on_enable)
        self._ticks = 0
        self._camera_every = max(1, round(self.config.physics_rate_hz / self.config.camera_rate_hz))
        self.create_timer(1.0 / self.config.physics_rate_hz, self._on_tick)
        self._publish_task_current()

    # --- inputs --------------------------------------------------------------------------------
    def _on_command(self, msg):
        try:
            self.command = topics.float_array(msg, len(JOINT_NAMES), "joint velocity command")
        except ValueError as exc:
            self.get_logger().error(f"rejected command: {exc}", throttle_duration_sec=2.0)
            self.command = np.zeros(len(JOINT_NAMES))
            return
        self.command_time = time.monotonic()

    def _set_task(self, task_id: str) -> bool:
        try:
            task = self.task_set.by_id(task_id)
        except KeyError as exc:
            self.get_logger().error(str(exc.args[0]))
            return False
        self.arm.set_task(task)
        self.task_id = task_id
        return True

    def _on_task_request(self, msg):
        if self._set_task(msg.data):
            self._publish_task_current()

    def _publish_task_current(self):
        from std_msgs.msg import String

        self.pubs[topics.TASK_CURRENT].publish(String(data=self.task_id))

    def _on_home(self, request, response):
        self.arm.reset_arm()
        self.command = np.zeros(len(JOINT_NAMES))
        response.success, response.message = True, "at home"
        return response

    def _on_estop(self, request, response):
        self.command = np.zeros(len(JOINT_NAMES))
        self.torque_enabled = False
        response.success, response.message = True, "zeroed and torque disabled"
        return response

    def _on_enable(self, request, response):
        self.torque_enabled = bool(request.data)
        response.success, response.message = True, f"torque {'enabled' if request.data else 'disabled'}"
        return response

    # --- physics and outputs -------------------------------------------------------------------
    def _on_tick(self):
        from std_msgs.msg import Bool, Float64

        fresh = time.monotonic() - self.command_time <= self.config.command_timeout_s
        command = self.command if (fresh and self.torque_enabled) else np.zeros(len(JOINT_NAMES))
        self.arm.step(command, 1.0 / self.config.physics_rate_hz)
        now = self.get_clock().now().nanoseconds * 1e-9
        state = self.arm.state()
        self.pubs[topics.JOINT_STATES].publish(
            topics.joint_state_msg(JOINT_NAMES, state.positions, state.velocities, stamp_s=now))
        success = self.arm.success()
        self.pubs[topics.SPARSE_REWARD].publish(Float64(data=1.0 if success else 0.0))
        self.pubs[topics.SHAPED_REWARD].publish(Float64(data=self.arm.shaped_reward()))
        self.pubs[topics.SUCCESS].publish(Bool(data=success))
        if self._ticks % self._camera_every == 0:
            pair = self.arm.render_pair()
            half = pair.shape[1] // 2
            frame = self.config.frame_id
            self.pubs[topics.PAIRED_IMAGE].publish(topics.image_to_msg(pair, now, frame))
            self.pubs[topics.SCENE_IMAGE].publish(topics.image_to_msg(pair[:, :half].copy(), now, frame))
            self.pubs[topics.WRIST_IMAGE].publish(topics.image_to_msg(pair[:, half:].copy(), now, frame))
        self._ticks += 1


def main(args=None) -> int:
    return run_node(PymunkTwinNode, args=args)
