"""Pairing two cameras' newest frames, stale detection, and the crop/resize the policy sees.

The policy's image observation is scene|wrist side by side, each cropped (calibration YAML) and
resized (64x64 by default), taken within `tolerance_s` of each other; its stamp is the older capture.
A pair is emitted at most once per (scene, wrist) frame combination, never from a stale frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from drivers.camera import Frame
from drivers.paths import default_calibration

CAMERAS = ("scene", "wrist")


@dataclass(frozen=True)
class CameraCalibration:
    """Crop, output size and intrinsics of one camera."""

    name: str
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)  # x, y, width, height; zeros = whole frame
    output_size: tuple[int, int] = (64, 64)  # width, height
    camera_matrix: tuple[float, ...] = ()  # row-major 3x3 at the capture size; empty: unknown
    distortion: tuple[float, ...] = ()
    frame_id: str = ""

    def __post_init__(self):
        if len(self.crop) != 4 or any(v < 0 for v in self.crop):
            raise ValueError(f"camera {self.name}: crop must be 4 non-negative ints [x, y, width, height]")
        if len(self.output_size) != 2 or min(self.output_size) <= 0:
            raise ValueError(f"camera {self.name}: output_size must be [width, height] > 0")
        if self.camera_matrix and len(self.camera_matrix) != 9:
            raise ValueError(f"camera {self.name}: camera_matrix must have 9 values (row-major 3x3)")

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The crop as (x0, y0, x1, y1) inside a width x height frame; ValueError if it does not fit."""
        x, y, w, h = self.crop
        if w == 0 or h == 0:
            return 0, 0, width, height
        if x + w > width or y + h > height:
            raise ValueError(f"camera {self.name}: crop {list(self.crop)} does not fit a {width}x{height} frame")
        return x, y, x + w, y + h

    def process(self, bgr: np.ndarray) -> np.ndarray:
        """Crop, resize (area interpolation: no aliasing when shrinking) and convert BGR -> RGB."""
        x0, y0, x1, y1 = self.crop_box(bgr.shape[1], bgr.shape[0])
        roi = bgr[y0:y1, x0:x1]
        out = cv2.resize(roi, tuple(self.output_size), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def load_camera_calibration(path: str | Path = "") -> dict[str, CameraCalibration]:
    path = Path(path or default_calibration("cameras.yaml"))
    if not path.is_file():
        raise FileNotFoundError(f"camera calibration file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    out = {}
    for name in CAMERAS:
        entry = dict(data.get(name) or {})
        known = {"crop", "output_size", "camera_matrix", "distortion", "frame_id"}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"{path}: camera {name}: unknown key(s) {unknown} (known: {sorted(known)})")
        out[name] = CameraCalibration(
            name=name,
            crop=tuple(int(v) for v in entry.get("crop", (0, 0, 0, 0))),
            output_size=tuple(int(v) for v in entry.get("output_size", (64, 64))),
            camera_matrix=tuple(float(v) for v in entry.get("camera_matrix", ())),
            distortion=tuple(float(v) for v in entry.get("distortion", ())),
            frame_id=str(entry.get("frame_id", f"{name}_camera_optical_frame")),
        )
    return out


@dataclass
class Pair:
    image: np.ndarray  # RGB, H x (W_scene + W_wrist) x 3
    stamp: float  # the older capture time
    skew: float  # |scene - wrist| capture times, s
    seqs: tuple[int, int]


@dataclass
class PairStats:
    pairs: int = 0
    stale: int = 0  # updates refused because a frame was stale
    skewed: int = 0  # updates refused because the frames were too far apart
    status: str = "waiting for frames"
    max_skew: float = 0.0
    stale_cameras: list[str] = field(default_factory=list)


class FramePairer:
    """Decide when the newest scene and wrist frames make a publishable pair."""

    def __init__(self, calibration: dict[str, CameraCalibration], tolerance_s: float = 0.025,
                 stale_after_s: float = 0.5):
        if tolerance_s <= 0 or stale_after_s <= 0:
            raise ValueError("tolerance_s and stale_after_s must be positive")
        self.calib = calibration
        self.tolerance_s, self.stale_after_s = tolerance_s, stale_after_s
        self.stats = PairStats()
        self._last_seqs: tuple[int, int] | None = None

    def stale(self, frames: dict[str, Frame | None], now: float) -> list[str]:
        """Names of cameras with no frame or a frame older than `stale_after_s`."""
        return [n for n in CAMERAS if frames.get(n) is None or now - frames[n].stamp > self.stale_after_s]

    def update(self, scene: Frame | None, wrist: Frame | None, now: float) -> Pair | None:
        frames = {"scene": scene, "wrist": wrist}
        stale = self.stale(frames, now)
        self.stats.stale_cameras = stale
        if stale:
            self.stats.stale += 1
            ages = ", ".join(f"{n} {'no frame' if frames[n] is None else f'{now - frames[n].stamp:.2f}s old'}"
                             for n in stale)
            self.stats.status = f"stale: {ages}"
            return None
        seqs = (scene.seq, wrist.seq)
        if seqs == self._last_seqs:
            return None  # nothing new since the last pair
        skew = abs(scene.stamp - wrist.stamp)
        if skew > self.tolerance_s:
            # The older frame will be replaced by a newer one soon; wait for it.
            self.stats.skewed += 1
            self.stats.status = f"frames {skew * 1000:.0f} ms apart (tolerance {self.tolerance_s * 1000:.0f} ms)"
            return None
        self._last_seqs = seqs
        image = np.hstack([self.calib["scene"].process(scene.image), self.calib["wrist"].process(wrist.image)])
        self.stats.pairs += 1
        self.stats.max_skew = max(self.stats.max_skew, skew)
        self.stats.status = "ok"
        return Pair(image, min(scene.stamp, wrist.stamp), skew, seqs)


def camera_info_fields(calib: CameraCalibration, width: int, height: int) -> dict:
    """CameraInfo fields (K, D, R, P, size) for a capture of width x height."""
    if calib.camera_matrix:
        k = list(calib.camera_matrix)
    else:  # unknown intrinsics: a 60 degree horizontal field of view pinhole, centred
        f = width / (2.0 * np.tan(np.radians(30.0)))
        k = [f, 0.0, width / 2.0, 0.0, f, height / 2.0, 0.0, 0.0, 1.0]
    d = list(calib.distortion) or [0.0] * 5
    p = [k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    return {"width": width, "height": height, "distortion_model": "plumb_bob", "d": d, "k": k,
            "r": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], "p": p}
