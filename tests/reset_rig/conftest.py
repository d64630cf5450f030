"""Fixtures: a GRBL emulator on a pty (sped up, so homing and moves take well under a second) and a rig on it."""

import pytest

from reset_rig.grbl import GrblDriver
from reset_rig.rig import Rig, RigConfig
from tests.support.grbl_emulator import GrblEmulator

TIME_SCALE = 25.0  # simulated seconds per real second: behaviour is the same, tests wait less


@pytest.fixture
def emulator():
    emu = GrblEmulator(time_scale=TIME_SCALE).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def driver(emulator):
    """A GrblDriver that has opened the emulator's port (banner received)."""
    d = GrblDriver(emulator.port, response_timeout_s=5.0)
    d.open()
    try:
        yield d
    finally:
        d.close()


def make_rig(port: str, **overrides) -> Rig:
    params = dict(port=port, poll_period_s=0.01, reconnect_period_s=0.1, response_timeout_s=1.0,
                  boot_timeout_s=2.0)
    params.update(overrides)
    return Rig(RigConfig(**params))


@pytest.fixture
def rig(emulator):
    rig = make_rig(emulator.port)
    try:
        yield rig
    finally:
        rig.close()
