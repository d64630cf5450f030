"""ROS 2 node `dual_camera`: scene + wrist cameras, each in its own capture thread.

Publishes `scene_camera/image_raw` + `camera_info`, `wrist_camera/image_raw` + `camera_info` (each new
frame, stamped with its capture time) and `camera_pair/image_raw` (scene|wrist after crop/resize,
stamp = the older capture) whenever the newest frames are within the pairing tolerance, all with
sensor QoS. Stale or unplugged cameras are reported on `/diagnostics` and reconnected.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
from rclpy.node import Node

from drivers.camera import Camera, CameraConfig, CameraError
from drivers.camera_pair import CAMERAS, FramePairer, camera_info_fields, load_camera_calibration
from meldbot import topics
from meldbot.node_support import declare_config, diagnostic_array, diagnostic_status, run_node


@dataclass
class DualCameraConfig:
    scene_source: str = "0"  # index, /dev/v4l/by-path/... name, or a video file
    wrist_source: str = "2"  # UVC cameras expose two nodes each (video + metadata): the 2nd camera is 2
    width: int = 640
    height: int = 480
    fps: float = 30.0
    fourcc: str = "MJPG"
    strict: bool = False  # refuse to start when a camera ignores size/fps/fourcc
    calibration: str = ""  # empty: the package's calibration/cameras.yaml
    pair_tolerance_s: float = 0.025
    stale_after_s: float = 0.5
    poll_rate_hz: float = 100.0
    publish_raw: bool = True
    reconnect_interval_s: float = 1.0

    def camera(self, name: str) -> CameraConfig:
        return CameraConfig(name=name, source=getattr(self, f"{name}_source"), width=self.width,
                            height=self.height, fps=self.fps, fourcc=self.fourcc, strict=self.strict,
                            reconnect_interval_s=self.reconnect_interval_s)


class DualCameraNode(Node):
    def __init__(self):
        super().__init__("dual_camera")
        self.cfg = declare_config(self, DualCameraConfig)
        try:
            self.calib = load_camera_calibration(self.cfg.calibration)
            self.pairer = FramePairer(self.calib, self.cfg.pair_tolerance_s, self.cfg.stale_after_s)
            self.cams = {n: Camera(self.cfg.camera(n)) for n in CAMERAS}
            if self.cfg.strict:  # refuse to start on a camera that is missing or ignores the settings
                for cam in self.cams.values():
                    cam.probe()
        except (ValueError, FileNotFoundError, CameraError) as exc:
            raise SystemExit(f"dual_camera: {exc}") from exc
        self.image_pubs = {"scene": topics.create_publisher(self, topics.SCENE_IMAGE),
                           "wrist": topics.create_publisher(self, topics.WRIST_IMAGE)}
        self.info_pubs = {"scene": topics.create_publisher(self, topics.SCENE_INFO),
                          "wrist": topics.create_publisher(self, topics.WRIST_INFO)}
        self.pair_pub = topics.create_publisher(self, topics.PAIRED_IMAGE)
        self.diag_pub = topics.create_publisher(self, topics.DIAGNOSTICS)
        self._published = {n: 0 for n in CAMERAS}
        self.latency = []  # capture -> publish, s (last 100 pairs)
        for cam in self.cams.values():
            cam.start()
        self.create_timer(1.0 / self.cfg.poll_rate_hz, self._poll)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(f"cameras: scene={self.cfg.scene_source} wrist={self.cfg.wrist_source} "
                               f"{self.cfg.width}x{self.cfg.height}@{self.cfg.fps:g} {self.cfg.fourcc}")

    def _poll(self):
        frames = {n: cam.latest() for n, cam in self.cams.items()}
        for name, frame in frames.items():
            if frame is None or frame.seq == self._published[name]:
                continue
            self._published[name] = frame.seq
            if self.cfg.publish_raw:
                rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
                calib = self.calib[name]
                self.image_pubs[name].publish(topics.image_to_msg(rgb, frame.stamp, calib.frame_id))
                self.info_pubs[name].publish(self._camera_info(name, rgb.shape[1], rgb.shape[0], frame.stamp))
        try:
            pair = self.pairer.update(frames["scene"], frames["wrist"], time.time())
        except ValueError as exc:  # crop does not fit the frames delivered: report, keep the raw topics
            self.pairer.stats.status = str(exc)
            self.get_logger().error(str(exc), throttle_duration_sec=5.0)
            return
        if pair is not None:
            self.pair_pub.publish(topics.image_to_msg(pair.image, pair.stamp, "camera_pair"))
            self.latency = (self.latency + [time.time() - max(frames["scene"].stamp, frames["wrist"].stamp)])[-100:]

    def _camera_info(self, name: str, width: int, height: int, stamp: float):
        from sensor_msgs.msg import CameraInfo

        msg = CameraInfo()
        msg.header.stamp = topics.stamp_from_seconds(stamp)
        msg.header.frame_id = self.calib[name].frame_id
        for key, value in camera_info_fields(self.calib[name], width, height).items():
            setattr(msg, key, value)
        return msg

    def _publish_diagnostics(self):
        statuses = []
        for name, cam in self.cams.items():
            s = cam.status
            level = "ok" if s.connected else "error"
            msg = f"{s.fps:.1f} fps" if s.connected else f"disconnected: {s.last_error}"
            if s.settings_mismatch and s.connected:
                level, msg = "warn", msg + "; " + "; ".join(s.settings_mismatch)
            statuses.append(diagnostic_status(f"{self._ns()}/{name}_camera", level, msg, {
                "source": cam.cfg.source, "frames": s.frames, "fps": f"{s.fps:.1f}",
                "disconnects": s.disconnects, "reconnects": s.reconnects}, hardware_id=cam.cfg.source))
        p = self.pairer.stats
        lat = sorted(self.latency)
        statuses.append(diagnostic_status(f"{self._ns()}/camera_pair", "ok" if p.status == "ok" else "warn",
                                          p.status, {"pairs": p.pairs, "stale_updates": p.stale,
                                                     "skewed_updates": p.skewed,
                                                     "max_skew_ms": f"{p.max_skew * 1000:.1f}",
                                                     "latency_p50_ms": f"{lat[len(lat) // 2] * 1000:.1f}"
                                                     if lat else "n/a"}))
        self.diag_pub.publish(diagnostic_array(self, statuses))

    def _ns(self) -> str:
        return self.get_namespace().strip("/") or "arm"

    def shutdown_hook(self):
        for cam in self.cams.values():
            cam.stop()


def main(args=None) -> int:
    return run_node(lambda: DualCameraNode(), args=args)


if __name__ == "__main__":
    raise SystemExit(main())
