"""The versioned GRBL settings file (reset_rig/firmware/grbl_settings.yaml) and the `$$` check against it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from reset_rig.grbl import SETTING_NAMES

DEFAULT_SETTINGS_FILE = Path(__file__).resolve().parent / "firmware" / "grbl_settings.yaml"


@dataclass(frozen=True)
class GrblSettingsFile:
    version: int
    firmware: str
    rail_axis: str
    rotation_axis: str
    settings: dict[int, float]
    tolerance: float = 0.0005
    path: str = ""

    def axis_index(self, axis: str) -> int:
        return "XYZ".index(axis)

    def travel(self, axis: str) -> float:
        """Max travel of a GRBL axis ($130 + index), in its units."""
        return self.settings[130 + self.axis_index(axis)]

    def homed_position(self, axis: str) -> float:
        """Machine position GRBL sets after `$H` (grbl/limits.c, HOMING_FORCE_SET_ORIGIN off)."""
        idx = self.axis_index(axis)
        pulloff = self.settings.get(27, 1.0)
        if int(self.settings.get(23, 0)) & (1 << idx):  # homes towards negative
            return -self.travel(axis) + pulloff
        return -pulloff


def load_settings_file(path: str | Path | None = None) -> GrblSettingsFile:
    path = Path(path) if path else DEFAULT_SETTINGS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"GRBL settings file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    missing = [k for k in ("version", "settings", "axes") if k not in data]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}")
    settings = {}
    for key, value in data["settings"].items():
        try:
            settings[int(key)] = float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: setting ${key}={value!r} is not a number") from exc
    axes = data["axes"]
    for name in ("rail", "rotation"):
        if axes.get(name) not in ("X", "Y", "Z"):
            raise ValueError(f"{path}: axes.{name} must be X, Y or Z, not {axes.get(name)!r}")
    if axes["rail"] == axes["rotation"]:
        raise ValueError(f"{path}: rail and rotation are both on axis {axes['rail']}")
    return GrblSettingsFile(version=int(data["version"]), firmware=str(data.get("firmware", "")),
                            rail_axis=axes["rail"], rotation_axis=axes["rotation"], settings=settings,
                            tolerance=float(data.get("tolerance", 0.0005)), path=str(path))


@dataclass(frozen=True)
class SettingDifference:
    number: int
    expected: float
    actual: float | None  # None: the board does not have this setting

    def __str__(self) -> str:
        name = SETTING_NAMES.get(self.number, "?")
        actual = "missing" if self.actual is None else f"{self.actual:g}"
        return f"${self.number} ({name}): board {actual}, file {self.expected:g}"


def compare_settings(board: dict[int, float], expected: GrblSettingsFile) -> list[SettingDifference]:
    """Settings of the file that the board does not match (settings the file omits are not checked)."""
    diffs = []
    for number, value in sorted(expected.settings.items()):
        actual = board.get(number)
        if actual is None or abs(actual - value) > expected.tolerance:
            diffs.append(SettingDifference(number, value, actual))
    return diffs


def format_setting(number: int, value: float) -> str:
    """`$N=value` as GRBL expects it (integers without decimals for masks/flags)."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return f"${number}={text or '0'}"
