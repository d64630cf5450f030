"""Pymunk twin node: a simulated arm on exactly the topics a real arm, its cameras and rig use.

Hosts the foundation's planar peg arm (`family: planar_peg`, the default) or any 2D task family of
`sim.pymunk2d` (reach2d, stick2d, peg2d, key2d, multi2d). Arm namespace: joint_states,
velocity_controller/commands (held until the watchdog expires, as the driver does), home/estop/enable
services, scene/wrist/paired camera images, observation/state (2D families: the env observation
followed by the joint positions), reward/sparse, reward/shaped, success. Task protocol:
/task/request -> move the fixture -> /task/current.

2D families advance one env control step (0.1 s) per tick, so what the twin does equals the in-process
env's `step_joint_velocities`; with `lockstep: true` the twin steps exactly once per received command
(no timer), which makes a replay bit-identical to the in-process env for the same seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node

from meldbot import topics
from meldbot.node_support import declare_config, run_node


@dataclass
class PymunkTwinConfig:
    family: str = "planar_peg"  # planar_peg | reach2d | stick2d | peg2d | key2d | multi2d
    physics_rate_hz: float = 50.0  # planar_peg tick rate (2D families tick at their control rate, 10 Hz)
    camera_rate_hz: float = 10.0
    command_timeout_s: float = 0.5  # watchdog: no command for this long -> zero velocity
    task_seed: int = 0
    seed: int = 0  # 2D families: the k-th episode since start-up starts from a pose seeded with seed + k
    initial_task: str = "train-00"  # 2D families accept "train-00" or "peg2d-train-00"
    frame_id: str = "twin_base"
    lockstep: bool = False  # 2D families: step once per received command instead of on a timer


class PymunkTwinNode(Node):
    def __init__(self):
        super().__init__("pymunk_twin")
        self.config = cfg = declare_config(self, PymunkTwinConfig)
        from sim.pymunk2d.twin_backends import make_backend

        try:
            self.sim = make_backend(cfg.family, task_seed=cfg.task_seed, initial_task=cfg.initial_task, seed=cfg.seed)
        except (ValueError, KeyError) as exc:
            raise SystemExit(f"pymunk_twin: {exc.args[0] if exc.args else exc}") from exc
        self.lockstep = bool(cfg.lockstep and self.sim.tick_dt is not None)
        self.task_id = cfg.initial_task or self.sim.task_id
        self.n_joints = len(self.sim.joint_names)
        self.command = np.zeros(self.n_joints)
        self.command_time = -np.inf
        self.torque_enabled = True
        published = [topics.JOINT_STATES, topics.SCENE_IMAGE, topics.WRIST_IMAGE, topics.PAIRED_IMAGE,
                     topics.SPARSE_REWARD, topics.SHAPED_REWARD, topics.SUCCESS, topics.TASK_CURRENT]
        if self.sim.has_state_observation:
            published.append(topics.STATE_OBSERVATION)
        self.pubs = {t: topics.create_publisher(self, t) for t in published}
        topics.create_subscription(self, topics.JOINT_VELOCITY_COMMANDS, self._on_command)
        topics.create_subscription(self, topics.TASK_REQUEST, self._on_task_request)
        topics.create_service(self, topics.ARM_HOME, self._on_home)
        topics.create_service(self, topics.ARM_ESTOP, self._on_estop)
        topics.create_service(self, topics.ARM_ENABLE, self._on_enable)
        self._ticks = 0
        self.tick_dt = self.sim.tick_dt or 1.0 / cfg.physics_rate_hz
        self._camera_every = max(1, round(1.0 / (self.tick_dt * cfg.camera_rate_hz)))
        if not self.lockstep:
            self.create_timer(self.tick_dt, self._on_tick)
        self._publish_task_current()
        self.get_logger().info(f"hosting {cfg.family}, task {self.task_id}, "
                               f"{'lockstep' if self.lockstep else f'{1 / self.tick_dt:.0f} Hz'}")

    # --- inputs --------------------------------------------------------------------------------
    def _on_command(self, msg):
        try:
            self.command = topics.float_array(msg, self.n_joints, "joint velocity command")
        except ValueError as exc:
            self.get_logger().error(f"rejected command: {exc}", throttle_duration_sec=2.0)
            self.command = np.zeros(self.n_joints)
            return
        self.command_time = time.monotonic()
        if self.lockstep:
            self._advance(self.command if self.torque_enabled else np.zeros(self.n_joints))

    def _set_task(self, task_id: str) -> bool:
        try:
            self.sim.set_task(task_id)
        except KeyError as exc:
            self.get_logger().error(str(exc.args[0]))
            return False
        self.task_id = task_id
        return True

    def _on_task_request(self, msg):
        if self._set_task(msg.data):
            self._publish_task_current()
            if self.lockstep:
                self._publish_state()

    def _publish_task_current(self):
        from std_msgs.msg import String

        self.pubs[topics.TASK_CURRENT].publish(String(data=self.task_id))

    def _on_home(self, request, response):
        self.sim.home()
        self.command = np.zeros(self.n_joints)
        if self.lockstep:
            self._publish_state()
        response.success, response.message = True, "at home"
        return response

    def _on_estop(self, request, response):
        self.command = np.zeros(self.n_joints)
        self.torque_enabled = False
        response.success, response.message = True, "zeroed and torque disabled"
        return response

    def _on_enable(self, request, response):
        self.torque_enabled = bool(request.data)
        response.success, response.message = True, f"torque {'enabled' if request.data else 'disabled'}"
        return response

    # --- physics and outputs -------------------------------------------------------------------
    def _on_tick(self):
        fresh = time.monotonic() - self.command_time <= self.config.command_timeout_s
        self._advance(self.command if (fresh and self.torque_enabled) else np.zeros(self.n_joints))

    def _advance(self, command):
        self.sim.step(command, self.tick_dt)
        self._publish_state()
        self._ticks += 1

    def _publish_state(self):
        from std_msgs.msg import Bool, Float64

        now = self.get_clock().now().nanoseconds * 1e-9
        self.pubs[topics.JOINT_STATES].publish(topics.joint_state_msg(
            self.sim.joint_names, self.sim.joint_positions(), self.sim.joint_velocities(), stamp_s=now))
        if self.sim.has_state_observation:
            self.pubs[topics.STATE_OBSERVATION].publish(topics.float_array_msg(self.sim.state_observation(),
                                                                               "observation"))
        self.pubs[topics.SPARSE_REWARD].publish(Float64(data=self.sim.sparse_reward()))
        self.pubs[topics.SHAPED_REWARD].publish(Float64(data=self.sim.shaped_reward()))
        self.pubs[topics.SUCCESS].publish(Bool(data=self.sim.success()))
        if self._ticks % self._camera_every == 0:
            pair = self.sim.render_pair()
            half = pair.shape[1] // 2
            frame = self.config.frame_id
            self.pubs[topics.PAIRED_IMAGE].publish(topics.image_to_msg(pair, now, frame))
            self.pubs[topics.SCENE_IMAGE].publish(topics.image_to_msg(pair[:, :half].copy(), now, frame))
            self.pubs[topics.WRIST_IMAGE].publish(topics.image_to_msg(pair[:, half:].copy(), now, frame))


def main(args=None) -> int:
    return run_node(PymunkTwinNode, args=args)
