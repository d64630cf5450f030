"""One camera read in its own thread, keeping only the newest frame and its capture time.

Sources: a V4L2 device index ("0"), a device path (/dev/video2 or the stable
/dev/v4l/by-path/...-video-index0 name, which survives replugging into the same USB port), or a
video file (played at its frame rate and restarted at its end, so tests and rehearsals behave like a
live camera). MJPG, size and fps are requested and then read back: a device that silently ignores
them is reported (or refused with `strict`). A camera that stops delivering (unplugged, file gone)
is reported as disconnected and reopened every `reconnect_interval_s` until it comes back.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from drivers.rate import RateMeter

log = logging.getLogger("meldbot.camera")


class CameraError(RuntimeError):
    pass


@dataclass
class CameraConfig:
    name: str = "camera"
    source: str = "0"
    width: int = 640
    height: int = 480
    fps: float = 30.0
    fourcc: str = "MJPG"
    strict: bool = False  # refuse a device that does not accept size/fps/fourcc
    reconnect_interval_s: float = 1.0
    loop_file: bool = True  # a file source restarts at its end (reopened from disk, like a replug)

    def __post_init__(self):
        if self.width <= 0 or self.height <= 0 or self.fps <= 0:
            raise ValueError(f"camera {self.name}: width, height and fps must be positive")
        if len(self.fourcc) != 4:
            raise ValueError(f"camera {self.name}: fourcc must be 4 characters, got '{self.fourcc}'")


@dataclass
class Frame:
    image: np.ndarray  # BGR as OpenCV delivers it
    stamp: float  # capture time, seconds since the epoch (time.time(), the ROS system clock)
    seq: int  # 1, 2, ... per camera across reconnects


@dataclass
class CameraStatus:
    connected: bool = False
    frames: int = 0
    disconnects: int = 0
    reconnects: int = 0
    last_error: str = ""
    settings_mismatch: list[str] = field(default_factory=list)
    fps: float = 0.0  # measured over the last second


def source_kind(source: str) -> str:
    """'index', 'device' or 'file'."""
    if source.isdigit():
        return "index"
    try:
        if stat.S_ISCHR(os.stat(source).st_mode):
            return "device"
    except OSError:
        pass
    return "device" if source.startswith("/dev/") else "file"


class Camera:
    """A capture thread around cv2.VideoCapture."""

    def __init__(self, config: CameraConfig):
        self.cfg = config
        self.kind = source_kind(config.source)
        self.status = CameraStatus()
        self._cap: cv2.VideoCapture | None = None
        self._latest: Frame | None = None
        self._seq = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._period = 1.0 / config.fps
        self._rate = RateMeter()

    # --- opening ----------------------------------------------------------------------------------
    def _open(self) -> cv2.VideoCapture:
        cfg = self.cfg
        if self.kind == "file":
            if not os.path.isfile(cfg.source):
                raise CameraError(f"camera {cfg.name}: video file {cfg.source} not found")
            cap = cv2.VideoCapture(cfg.source)
        else:
            target = int(cfg.source) if self.kind == "index" else cfg.source
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"camera {cfg.name}: cannot open {cfg.source}")
        if self.kind == "file":
            file_fps = cap.get(cv2.CAP_PROP_FPS)
            self._period = 1.0 / (file_fps if file_fps and file_fps > 0 else cfg.fps)
        else:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*cfg.fourcc))
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
            cap.set(cv2.CAP_PROP_FPS, cfg.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver queue would otherwise deliver old frames
            self._period = 0.0  # the device paces itself
        self.status.settings_mismatch = self._verify(cap)
        if self.status.settings_mismatch:
            msg = f"camera {cfg.name} ({cfg.source}): " + "; ".join(self.status.settings_mismatch)
            if cfg.strict:
                cap.release()
                raise CameraError(msg)
            log.warning(msg)
        return cap

    def _verify(self, cap) -> list[str]:
        """Read back what the device/file actually delivers and list differences from the request."""
        cfg = self.cfg
        out = []
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if (width, height) != (cfg.width, cfg.height):
            out.append(f"size {width}x{height} instead of {cfg.width}x{cfg.height}")
        fps = cap.get(cv2.CAP_PROP_FPS)
        if fps and abs(fps - cfg.fps) > 0.5:
            out.append(f"{fps:g} fps instead of {cfg.fps:g}")
        if self.kind != "file":
            code = int(cap.get(cv2.CAP_PROP_FOURCC))
            got = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
            if got.upper() != cfg.fourcc.upper():
                out.append(f"pixel format '{got}' instead of '{cfg.fourcc}'")
        return out

    def probe(self) -> list[str]:
        """Open once, verify the settings and release: the mismatches (CameraError if it cannot open,
        or if `strict` and a setting was not taken)."""
        cap = self._open()
        cap.release()
        return list(self.status.settings_mismatch)

    # --- thread -----------------------------------------------------------------------------------------
    def start(self) -> Camera:
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.cfg.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _disconnect(self, reason: str):
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self.status.connected:
            self.status.connected = False
            self.status.disconnects += 1
            log.warning("camera %s disconnected: %s", self.cfg.name, reason)
        self.status.last_error = reason

    def _run(self):
        next_t = time.monotonic()
        while not self._stop.is_set():
            if self._cap is None:
                try:
                    self._cap = self._open()
                except CameraError as exc:
                    self._disconnect(str(exc))
                    self._stop.wait(self.cfg.reconnect_interval_s)
                    continue
                if self.status.disconnects:
                    self.status.reconnects += 1
                    log.warning("camera %s reconnected", self.cfg.name)
                self.status.connected = True
                next_t = time.monotonic()
            ok, image = self._cap.read()
            if not ok or image is None:
                if self.kind == "file" and self.cfg.loop_file:
                    self._cap.release()  # end of file: reopen from disk (a missing file = unplugged)
                    self._cap = None
                    try:
                        self._cap = self._open()
                        continue
                    except CameraError as exc:
                        self._disconnect(str(exc))
                        continue
                self._disconnect(f"camera {self.cfg.name}: no frame from {self.cfg.source}")
                continue
            if self._period:  # a file plays at its frame rate, like a live camera
                next_t += self._period
                delay = next_t - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_t = time.monotonic()
            stamp = time.time()
            with self._cond:
                self._seq += 1
                self._latest = Frame(image, stamp, self._seq)
                self.status.frames += 1
                self._cond.notify_all()
            self.status.fps = self._rate.tick(time.monotonic())

    # --- consumers ----------------------------------------------------------------------------------------
    def latest(self) -> Frame | None:
        with self._cond:
            return self._latest

    def wait_frame(self, after_seq: int = 0, timeout: float = 5.0) -> Frame | None:
        """The newest frame with seq > after_seq, waiting up to `timeout`; None if none came."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._latest is None or self._latest.seq <= after_seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._latest
