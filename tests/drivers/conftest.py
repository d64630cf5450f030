"""Fixtures for driver tests: a WidowX 250 bus emulated on a pty and the real driver core on it."""

import pytest

from drivers.widowx import WidowXArm, WidowXConfig
from tests.support.dynamixel_emulator import DynamixelBusEmulator, widowx250_servos


@pytest.fixture
def emulator():
    emu = DynamixelBusEmulator(widowx250_servos()).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def make_arm(emulator):
    """make_arm(**config) -> a WidowXArm on the emulator, closed after the test."""
    arms = []

    def make(start: bool = True, **overrides):
        arm = WidowXArm(WidowXConfig(port=emulator.port, **overrides))
        arms.append(arm)
        if start:
            arm.start()
        return arm

    yield make
    for arm in arms:
        arm.close()
