"""Where the package's calibration files are: share/meldbot when colcon-installed, else the source tree."""

from __future__ import annotations

from pathlib import Path


def default_calibration(filename: str) -> Path:
    from meldbot.executables import package_share

    return package_share() / "calibration" / filename
