"""The one exception type of the launch runner, carrying the file and line it refers to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a launch file (1-based line)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class LaunchError(ValueError):
    """A launch file or command line is invalid; the message names FILE:LINE where it can.

    A ValueError so that the `meldbot` CLI prints it as one clean line and exits 2.
    """

    def __init__(self, message: str, where: Location | None = None):
        self.where = where
        super().__init__(f"{message} ({where})" if where is not None else message)
