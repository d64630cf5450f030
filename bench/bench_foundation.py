"""Foundation benchmarks.

1. Policy server step latency: one control tick of the server core (spec-checked numpy in, safety
   checks, numpy out) vs calling the exported TorchScript module directly with ready tensors.
2. Camera image round trip over DDS (publish -> echo process -> back) vs an in-process copy of the
   same image into a message, for the policy's 64x128 pair and a full 480x640 camera frame.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPEATS = 300


def _percentiles(samples_s):
    arr = np.asarray(samples_s) * 1e3
    return np.percentile(arr, 50), np.percentile(arr, 99)


def bench_policy_step():
    import torch

    from belief.policy_file import LoadedPolicy, save_policy
    from belief.untrained import untrained_policy
    from policy_server.core import PolicyRunner, PolicyServerConfig

    joints = ["shoulder", "elbow", "wrist"]
    with tempfile.TemporaryDirectory() as tmp:
        module, meta = untrained_policy(joints, 1.5)
        path = save_policy(module, meta, Path(tmp) / "p.ts")
        policy = LoadedPolicy(path)
        runner = PolicyRunner(policy, PolicyServerConfig(joint_names=joints, autostart=True))
        image = np.random.default_rng(0).integers(0, 255, (64, 128, 3), dtype=np.uint8)
        scripted = policy._module
        obs_t, act_t = torch.from_numpy(image.copy()), torch.zeros(3)
        rew_t, state_t = torch.zeros(1), torch.from_numpy(policy.initial_state())
        direct, served = [], []
        with torch.inference_mode():
            for _ in range(20):
                scripted.step(obs_t, act_t, rew_t, state_t)
            for _ in range(REPEATS):
                t0 = time.perf_counter()
                scripted.step(obs_t, act_t, rew_t, state_t)
                direct.append(time.perf_counter() - t0)
        for i in range(REPEATS):
            runner.observe(image, arrival_s=float(i))
            t0 = time.perf_counter()
            runner.tick(now_s=float(i))
            served.append(time.perf_counter() - t0)
    d50, d99 = _percentiles(direct)
    s50, s99 = _percentiles(served)
    print(f"policy step, direct TorchScript call : p50 {d50:7.3f} ms  p99 {d99:7.3f} ms")
    print(f"policy step, server tick             : p50 {s50:7.3f} ms  p99 {s99:7.3f} ms")
    print(f"  server / direct                    : p50 x{s50 / d50:5.2f}  p99 x{s99 / d99:5.2f}")
    print(f"  at 10 Hz the tick uses {100 * s99 / 100.0:.2f}% of the control period (p99)")


ECHO = """
import rclpy
from meldbot import topics
rclpy.init()
node = rclpy.create_node('image_echo')
pub = node.create_publisher(topics.WRIST_IMAGE.type_class, 'echo', topics.qos_profile(topics.QosKind.STATE))
node.create_subscription(topics.SCENE_IMAGE.type_class, 'ping', pub.publish, topics.qos_profile(topics.QosKind.STATE))
rclpy.spin(node)
"""


def bench_image_round_trip():
    import threading

    from meldbot import topics
    from tests.support.ros_graph import RosGraph

    with tempfile.TemporaryDirectory() as tmp:
        graph = RosGraph(Path(tmp))
        try:
            graph.start([sys.executable, "-c", ECHO], "echo")
            node = graph.node
            qos = topics.qos_profile(topics.QosKind.STATE)
            got = threading.Event()
            node.create_subscription(topics.WRIST_IMAGE.type_class, "/echo", lambda _m: got.set(), qos)
            pub = node.create_publisher(topics.SCENE_IMAGE.type_class, "/ping", qos)
            deadline = time.monotonic() + 60
            while node.count_subscribers("/ping") == 0 or node.count_publishers("/echo") == 0:
                time.sleep(0.05)
                if time.monotonic() > deadline:
                    raise RuntimeError("echo process did not come up")
            for shape in [(64, 128, 3), (480, 640, 3)]:
                image = np.random.default_rng(1).integers(0, 255, shape, dtype=np.uint8)
                copies, trips = [], []
                for _ in range(REPEATS):
                    t0 = time.perf_counter()
                    msg = topics.image_to_msg(image, 0.0)
                    topics.msg_to_image(msg).copy()
                    copies.append(time.perf_counter() - t0)
                for i in range(REPEATS // 3 + 5):
                    msg = topics.image_to_msg(image, 0.0)
                    got.clear()
                    t0 = time.perf_counter()
                    pub.publish(msg)
                    if not got.wait(10):
                        raise RuntimeError("an image was not echoed back within 10 s")
                    if i >= 5:  # skip discovery/warm-up trips
                        trips.append(time.perf_counter() - t0)
                c50, c99 = _percentiles(copies)
                r50, r99 = _percentiles(trips)
                label = f"{shape[0]}x{shape[1]}"
                print(f"image {label:>7}, in-process msg copy : p50 {c50:7.3f} ms  p99 {c99:7.3f} ms")
                print(f"image {label:>7}, DDS round trip      : p50 {r50:7.3f} ms  p99 {r99:7.3f} ms"
                      f"   (x{r50 / c50:6.1f} the copy at p50)")
        finally:
            graph.close()


def main():
    bench_policy_step()
    bench_image_round_trip()


if __name__ == "__main__":
    main()
