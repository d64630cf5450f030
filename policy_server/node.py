"""Policy server node: runs an exported belief policy on the arm's topics at the control rate.

Subscribes the observation topic the model declares (paired camera image or state vector) and its
reward topic; publishes joint velocities on velocity_controller/commands. /policy/enable starts and
stops an episode, /policy/reset_belief starts a new trial. Run it in the arm's namespace.
"""

from __future__ import annotations

import time

import numpy as np
from rclpy.node import Node

from belief.policy_file import LoadedPolicy
from meldbot import topics
from meldbot.node_support import declare_config, diagnostic_array, diagnostic_status, run_node
from policy_server.core import PolicyRunner, PolicyServerConfig, PolicySpecError


class PolicyServerNode(Node):
    def __init__(self):
        super().__init__("policy_server")
        config = declare_config(self, PolicyServerConfig)
        if not config.model_path:
            raise SystemExit("policy_server: parameter 'model_path' is required (an exported .ts or .pt2 policy)")
        try:
            policy = LoadedPolicy(config.model_path)
            self.runner = PolicyRunner(policy, config)
        except (FileNotFoundError, ValueError, PolicySpecError) as exc:
            raise SystemExit(f"policy_server: {exc}") from exc
        meta = self.runner.meta
        self.obs_topic = topics.topic_by_name(meta.observation.topic)
        self._obs_is_image = self.obs_topic.msg_type == "sensor_msgs/msg/Image"
        topics.create_subscription(self, self.obs_topic, self._on_observation)
        topics.create_subscription(self, topics.topic_by_name(meta.reward_topic), self._on_reward)
        self.command_pub = topics.create_publisher(self, topics.JOINT_VELOCITY_COMMANDS)
        self.diag_pub = topics.create_publisher(self, topics.DIAGNOSTICS)
        topics.create_service(self, topics.POLICY_ENABLE, self._on_enable)
        topics.create_service(self, topics.POLICY_RESET_BELIEF, self._on_reset)
        self.create_timer(1.0 / self.runner.rate_hz, self._on_tick)
        self.create_timer(1.0, self._publish_diagnostics)
        self._last_status = None
        self.get_logger().info(
            f"loaded {meta.algo} policy {config.model_path} (v{meta.model_version}): "
            f"{meta.observation.topic} {meta.observation.shape} -> {meta.action.joint_names} at {self.runner.rate_hz} Hz")

    def _on_observation(self, msg):
        try:
            obs = topics.msg_to_image(msg) if self._obs_is_image else np.asarray(msg.data, dtype=np.float32)
        except ValueError as exc:
            self.get_logger().error(f"dropping observation on {self.obs_topic.name}: {exc}", throttle_duration_sec=5.0)
            return
        self.runner.observe(obs, time.monotonic())

    def _on_reward(self, msg):
        self.runner.reward = float(msg.data)

    def _on_enable(self, request, response):
        self.runner.set_enabled(request.data, time.monotonic())
        if not request.data:
            self.command_pub.publish(topics.float_array_msg(self.runner.zero))
        response.success, response.message = True, "stepping" if request.data else "stopped, zero commanded"
        return response

    def _on_reset(self, request, response):
        self.runner.reset_belief()
        response.success, response.message = True, "belief reset to the model's initial state"
        return response

    def _on_tick(self):
        result = self.runner.tick(time.monotonic())
        if result.status == "disabled":
            return
        self.command_pub.publish(topics.float_array_msg(result.command))
        if result.status != "ok" and result.status != self._last_status:
            self.get_logger().warn(f"commanding zero: {result.status} ({result.detail})")
        self._last_status = result.status

    def _publish_diagnostics(self):
        lat = np.asarray(self.runner.latencies_s[-200:]) * 1e3
        level = "ok" if self._last_status in (None, "ok") else "warn"
        values = dict(self.runner.counts, enabled=self.runner.enabled,
                      step_ms_p50=f"{np.percentile(lat, 50):.2f}" if lat.size else "n/a")
        self.diag_pub.publish(diagnostic_array(self, [
            diagnostic_status(f"{self.get_fully_qualified_name()}", level, str(self._last_status or "idle"), values)]))

    def shutdown_hook(self):
        self.command_pub.publish(topics.float_array_msg(self.runner.zero))


def main(args=None) -> int:
    return run_node(PolicyServerNode, args=args)
