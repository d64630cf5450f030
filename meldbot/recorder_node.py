"""MCAP recorder node: records contract topics (serialized CDR, as received) to an .mcap that opens in Foxglove.

Topics are contract names resolved in the node's namespace like any subscription (``joint_states`` in
``/arm`` records ``/arm/joint_states``). Messages are written as they arrive, without deserializing.
The file is written as ``NAME.mcap.part`` and renamed to ``NAME.mcap`` when closed cleanly, so a
finished recording is never confused with one cut short (MCAP readers can still recover a .part).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from mcap.writer import CompressionType, Writer
from rclpy.node import Node

from meldbot import topics
from meldbot.mcap_schema import full_definition
from meldbot.node_support import declare_config, run_node

DEFAULT_TOPICS = [
    topics.JOINT_STATES.name, topics.JOINT_VELOCITY_COMMANDS.name, topics.PAIRED_IMAGE.name,
    topics.SCENE_IMAGE.name, topics.WRIST_IMAGE.name, topics.SPARSE_REWARD.name, topics.SHAPED_REWARD.name,
    topics.SUCCESS.name, topics.TASK_REQUEST.name, topics.TASK_CURRENT.name, topics.RIG_JOINT_STATES.name,
    topics.DIAGNOSTICS.name,
]


@dataclass
class RecorderConfig:
    output: str = "runs/recording.mcap"
    topics: list[str] = field(default_factory=lambda: list(DEFAULT_TOPICS))
    chunk_size: int = 1 << 20


class McapRecorder:
    """Plain MCAP writing of ROS 2 CDR messages (no ROS needed to use it)."""

    def __init__(self, path: str | os.PathLike, chunk_size: int = 1 << 20):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(self.path.name + ".part")
        self._fh = open(self.partial, "wb")
        self._writer = Writer(self._fh, chunk_size=chunk_size, compression=CompressionType.LZ4)
        self._writer.start(profile="ros2", library="meldbot")
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._sequence = 0
        self.counts: dict[str, int] = {}

    def add_channel(self, topic_name: str, msg_type: str) -> int:
        if msg_type not in self._schemas:
            self._schemas[msg_type] = self._writer.register_schema(
                name=msg_type, encoding="ros2msg", data=full_definition(msg_type).encode())
        channel = self._writer.register_channel(topic=topic_name, message_encoding="cdr",
                                                schema_id=self._schemas[msg_type])
        self._channels[topic_name] = channel
        self.counts[topic_name] = 0
        return channel

    def write(self, topic_name: str, data: bytes, log_time_ns: int | None = None):
        now = time.time_ns() if log_time_ns is None else log_time_ns
        self._writer.add_message(channel_id=self._channels[topic_name], log_time=now, publish_time=now,
                                 data=data, sequence=self._sequence)
        self._sequence += 1
        self.counts[topic_name] += 1

    def close(self):
        self._writer.finish()
        self._fh.close()
        os.replace(self.partial, self.path)


class RecorderNode(Node):
    def __init__(self):
        super().__init__("mcap_recorder")
        self.config = declare_config(self, RecorderConfig)
        self.recorder = McapRecorder(self.config.output, self.config.chunk_size)
        for name in self.config.topics:
            try:
                topic = topics.topic_by_name(name)
            except KeyError as exc:
                raise SystemExit(f"mcap_recorder: {exc.args[0]}") from exc
            resolved = self.resolve_topic_name(topic.name)
            self.recorder.add_channel(resolved, topic.msg_type)
            topics_qos = topics.qos_profile(topic.qos)
            self.create_subscription(topic.type_class, topic.name,
                                     lambda data, r=resolved: self.recorder.write(r, data), topics_qos, raw=True)
        self.get_logger().info(f"recording {len(self.config.topics)} topics to {self.config.output}")

    def shutdown_hook(self):
        self.recorder.close()
        summary = ", ".join(f"{k}={v}" for k, v in self.recorder.counts.items() if v)
        print(f"mcap_recorder: wrote {self.config.output} ({summary})", flush=True)


def main(args=None) -> int:
    return run_node(RecorderNode, args=args)
