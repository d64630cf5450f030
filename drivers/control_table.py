"""DYNAMIXEL X-series control table (Protocol 2.0) for the servos of the WidowX 250, and unit conversions.

Addresses, sizes and units are from the ROBOTIS e-Manual control tables of the XM430-W350 (model 1020)
and XL430-W250 (model 1060); both share the X-series layout for every register used here. Differences
that matter: the XL430 has no Goal Current(102) and its Present Current(126) is Present Load (0.1 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Register:
    name: str
    address: int
    size: int  # bytes, little endian
    signed: bool = False

    def encode(self, value: int) -> bytes:
        return int(value).to_bytes(self.size, "little", signed=self.signed)

    def decode(self, data: bytes | bytearray | list, offset: int = 0) -> int:
        return int.from_bytes(bytes(data[offset: offset + self.size]), "little", signed=self.signed)


# --- EEPROM area (writable only with torque off) ----------------------------------------------------
MODEL_NUMBER = Register("Model Number", 0, 2)
FIRMWARE_VERSION = Register("Firmware Version", 6, 1)
ID = Register("ID", 7, 1)
BAUD_RATE = Register("Baud Rate", 8, 1)
RETURN_DELAY_TIME = Register("Return Delay Time", 9, 1)
DRIVE_MODE = Register("Drive Mode", 10, 1)
OPERATING_MODE = Register("Operating Mode", 11, 1)
SECONDARY_ID = Register("Secondary ID", 12, 1)
TEMPERATURE_LIMIT = Register("Temperature Limit", 31, 1)
PWM_LIMIT = Register("PWM Limit", 36, 2)
VELOCITY_LIMIT = Register("Velocity Limit", 44, 4)
MAX_POSITION_LIMIT = Register("Max Position Limit", 48, 4)
MIN_POSITION_LIMIT = Register("Min Position Limit", 52, 4)
SHUTDOWN = Register("Shutdown", 63, 1)
# --- RAM area ---------------------------------------------------------------------------------------
TORQUE_ENABLE = Register("Torque Enable", 64, 1)
LED = Register("LED", 65, 1)
STATUS_RETURN_LEVEL = Register("Status Return Level", 68, 1)
HARDWARE_ERROR_STATUS = Register("Hardware Error Status", 70, 1)
BUS_WATCHDOG = Register("Bus Watchdog", 98, 1, signed=True)  # unit 20 ms; -1 = Bus Watchdog Error
GOAL_PWM = Register("Goal PWM", 100, 2, signed=True)
GOAL_VELOCITY = Register("Goal Velocity", 104, 4, signed=True)
PROFILE_ACCELERATION = Register("Profile Acceleration", 108, 4)
GOAL_POSITION = Register("Goal Position", 116, 4, signed=True)
PRESENT_PWM = Register("Present PWM", 124, 2, signed=True)
PRESENT_CURRENT = Register("Present Current", 126, 2, signed=True)  # XL430: Present Load
PRESENT_VELOCITY = Register("Present Velocity", 128, 4, signed=True)
PRESENT_POSITION = Register("Present Position", 132, 4, signed=True)
PRESENT_INPUT_VOLTAGE = Register("Present Input Voltage", 144, 2)
PRESENT_TEMPERATURE = Register("Present Temperature", 146, 1)

# One sync read covers current .. temperature (126..146): 21 bytes per servo.
PRESENT_BLOCK_START = PRESENT_CURRENT.address
PRESENT_BLOCK_LENGTH = PRESENT_TEMPERATURE.address + PRESENT_TEMPERATURE.size - PRESENT_BLOCK_START

# Operating Mode(11) values
OP_CURRENT, OP_VELOCITY, OP_POSITION, OP_EXTENDED_POSITION, OP_CURRENT_POSITION, OP_PWM = 0, 1, 3, 4, 5, 16
BUS_WATCHDOG_UNIT_S = 0.020
BUS_WATCHDOG_ERROR = -1
SECONDARY_ID_DISABLED_MIN = 253  # 253..255 deactivate the Secondary ID function

# Hardware Error Status(70) bits
HARDWARE_ERROR_BITS = {
    0: "input voltage",
    2: "overheating",
    3: "motor encoder",
    4: "electrical shock",
    5: "overload",
}
STATUS_ALERT_BIT = 0x80  # in a status packet's error byte: a hardware error is latched


def describe_hardware_error(bits: int) -> str:
    """'overheating+overload' for Hardware Error Status bits; '' when clear."""
    return "+".join(name for bit, name in HARDWARE_ERROR_BITS.items() if bits & (1 << bit)) or (
        f"unknown(0x{bits:02x})" if bits else "")


@dataclass(frozen=True)
class ServoModel:
    number: int
    name: str
    velocity_unit_rpm: float  # Goal/Present Velocity LSB
    position_per_rev: int  # Present Position counts per revolution
    current_unit_a: float  # Present Current LSB in A; 0 when the model reports load instead
    has_goal_current: bool
    default_velocity_limit: int
    default_pwm_limit: int

    @property
    def rad_per_count(self) -> float:
        return 2.0 * math.pi / self.position_per_rev

    @property
    def rad_s_per_velocity_unit(self) -> float:
        return self.velocity_unit_rpm * 2.0 * math.pi / 60.0


MODELS: dict[int, ServoModel] = {
    1020: ServoModel(1020, "XM430-W350", 0.229, 4096, 2.69e-3, True, 350, 885),
    1060: ServoModel(1060, "XL430-W250", 0.229, 4096, 0.0, False, 265, 885),
}
MODELS_BY_NAME = {m.name: m for m in MODELS.values()}


def model_by_name(name: str) -> ServoModel:
    try:
        return MODELS_BY_NAME[name.upper()]
    except KeyError:
        raise ValueError(f"unknown servo model '{name}' (known: {sorted(MODELS_BY_NAME)})") from None


def model_name(number: int) -> str:
    return MODELS[number].name if number in MODELS else f"unknown model {number}"


# Position 2048 is the centre of the servo's range; joint angle 0 rad sits there (as Interbotix does).
CENTER_COUNT = 2048


def counts_to_rad(counts: int, model: ServoModel) -> float:
    return (counts - CENTER_COUNT) * model.rad_per_count


def rad_to_counts(rad: float, model: ServoModel) -> int:
    return int(round(rad / model.rad_per_count)) + CENTER_COUNT


def velocity_units_to_rad_s(units: int, model: ServoModel) -> float:
    return units * model.rad_s_per_velocity_unit


def rad_s_to_velocity_units(rad_s: float, model: ServoModel) -> int:
    """Nearest Goal Velocity value (truncating toward zero so a clamp never rounds past a limit)."""
    return int(rad_s / model.rad_s_per_velocity_unit)
