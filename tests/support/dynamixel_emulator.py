"""A DYNAMIXEL Protocol 2.0 bus emulator on a pty, for testing the real driver code without servos.

The driver opens ``emulator.port`` (the pty slave, e.g. /dev/pts/7) exactly as it opens /dev/ttyDXL.
The emulator answers PING, READ, WRITE, SYNC_READ, SYNC_WRITE, BULK_READ and REBOOT with correct
CRC-16 (polynomial 0x8005) and byte stuffing, keeps a control table per servo model, integrates
velocity over (real) time with mechanical hard stops, runs the Bus Watchdog as the e-Manual describes
(after the set time without instruction packets the servo stops, Bus Watchdog reads -1 and goal
registers become read-only until Bus Watchdog is written 0), honours Secondary(Shadow) ID and Drive
Mode, latches hardware errors (torque off, alert bit) until REBOOT, and injects faults: no reply,
corrupt CRC, a servo missing. Every instruction packet received is logged with its raw bytes.

The register layout here is written out independently of ``drivers/control_table.py`` on purpose, so
a wrong address in the driver shows up as a test failure instead of agreeing with itself.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from dataclasses import dataclass, field

from tests.support.emulator_base import ThreadedEmulator

# --- Protocol 2.0 constants (e-Manual "Protocol 2.0") -------------------------------------------
HEADER = b"\xff\xff\xfd\x00"
BROADCAST = 0xFE
PING, READ, WRITE, REBOOT, STATUS, SYNC_READ, SYNC_WRITE, BULK_READ = 0x01, 0x02, 0x03, 0x08, 0x55, 0x82, 0x83, 0x92
ERR_INSTRUCTION, ERR_CRC, ERR_DATA_RANGE, ERR_DATA_LENGTH, ERR_DATA_LIMIT, ERR_ACCESS = 2, 3, 4, 5, 6, 7
ALERT = 0x80

# --- X-series control table (XM430-W350 / XL430-W250 e-Manual) ------------------------------------
A_MODEL, A_FW, A_ID, A_BAUD, A_RDT, A_DRIVE_MODE, A_OP_MODE, A_SECONDARY_ID = 0, 6, 7, 8, 9, 10, 11, 12
A_TEMP_LIMIT, A_PWM_LIMIT, A_VEL_LIMIT, A_MAX_POS, A_MIN_POS, A_SHUTDOWN = 31, 36, 44, 48, 52, 63
A_TORQUE, A_LED, A_STATUS_RETURN, A_HW_ERROR, A_WATCHDOG = 64, 65, 68, 70, 98
A_GOAL_PWM, A_GOAL_CURRENT, A_GOAL_VEL, A_PROFILE_ACC, A_PROFILE_VEL, A_GOAL_POS = 100, 102, 104, 108, 112, 116
A_TICK, A_MOVING, A_PRESENT_PWM, A_PRESENT_CURRENT, A_PRESENT_VEL, A_PRESENT_POS = 120, 122, 124, 126, 128, 132
A_VOLTAGE, A_TEMPERATURE = 144, 146
EEPROM_END = 64  # addresses below are EEPROM: writable only with torque off
READ_ONLY = {(0, 2), (2, 4), (6, 1), (69, 1), (70, 1)} | {(a, 1) for a in range(120, 148)}
GOAL_REGISTERS = range(A_GOAL_PWM, A_GOAL_POS + 4)

VELOCITY_UNIT_RPM = 0.229
COUNTS_PER_REV = 4096
COUNTS_PER_S_PER_UNIT = VELOCITY_UNIT_RPM * COUNTS_PER_REV / 60.0  # 15.63 counts/s per velocity unit


@dataclass
class ModelSpec:
    number: int
    velocity_limit: int
    pwm_limit: int
    no_load_rpm: float


MODEL_SPECS = {"XM430-W350": ModelSpec(1020, 350, 885, 46.0), "XL430-W250": ModelSpec(1060, 265, 885, 57.0)}


def crc16(data: bytes | bytearray, crc: int = 0) -> int:
    """CRC-16 of the DYNAMIXEL protocol: polynomial 0x8005, MSB first, init 0, no reflection."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """Insert 0xFD after every FF FF FD inside instruction..params (Protocol 2.0 byte stuffing)."""
    out = bytearray()
    for b in body:
        out.append(b)
        if len(out) >= 3 and out[-3:] == b"\xff\xff\xfd":
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(body):
        out.append(body[i])
        if len(out) >= 3 and out[-3:] == b"\xff\xff\xfd" and i + 1 < len(body) and body[i + 1] == 0xFD:
            i += 1  # drop the stuffing byte
        i += 1
    return bytes(out)


def build_packet(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """A complete packet (header, stuffing, CRC) as the wire carries it."""
    body = stuff(bytes([instruction]) + params)
    head = HEADER + bytes([servo_id]) + (len(body) + 2).to_bytes(2, "little")
    packet = head + body
    return packet + crc16(packet).to_bytes(2, "little")


def status_packet(servo_id: int, error: int, params: bytes = b"") -> bytes:
    return build_packet(servo_id, STATUS, bytes([error]) + params)


@dataclass
class Instruction:
    """One instruction packet seen on the wire."""

    t: float
    raw: bytes
    servo_id: int
    instruction: int
    params: bytes


@dataclass
class Faults:
    no_reply: int = 0  # next N status packets of this servo are not sent
    corrupt_crc: int = 0  # next N status packets are sent with a wrong CRC
    missing: bool = False  # the servo is not on the bus at all


class EmulatedServo:
    """One X-series servo: a control table and first-order physics."""

    def __init__(self, servo_id: int, model: str = "XM430-W350", position: int = 2048,
                 hard_stops: tuple[int, int] = (0, 4095), drive_mode: int = 0, secondary_id: int = 255,
                 firmware: int = 45, temperature: int = 35):
        if model not in MODEL_SPECS:
            raise ValueError(f"emulator has no model '{model}' (has {sorted(MODEL_SPECS)})")
        self.model, self.spec = model, MODEL_SPECS[model]
        self.hard_stops = hard_stops
        self.faults = Faults()
        self.ram = bytearray(700)
        self._set(A_MODEL, 2, self.spec.number)
        self._set(A_FW, 1, firmware)
        self._set(A_ID, 1, servo_id)
        self._set(A_BAUD, 1, 3)  # 1 Mbps
        self._set(A_RDT, 1, 0)
        self._set(A_DRIVE_MODE, 1, drive_mode)
        self._set(A_OP_MODE, 1, 3)
        self._set(A_SECONDARY_ID, 1, secondary_id)
        self._set(A_TEMP_LIMIT, 1, 80)
        self._set(A_PWM_LIMIT, 2, self.spec.pwm_limit)
        self._set(A_VEL_LIMIT, 4, self.spec.velocity_limit)
        self._set(A_MAX_POS, 4, 4095)
        self._set(A_MIN_POS, 4, 0)
        self._set(A_SHUTDOWN, 1, 52)
        self._set(A_STATUS_RETURN, 1, 2)
        self._set(A_VOLTAGE, 2, 120)
        self._set(A_TEMPERATURE, 1, temperature)
        self.position = float(position)  # counts, continuous
        self.velocity = 0.0  # velocity units
        self.last_update = time.monotonic()
        self.last_instruction = time.monotonic()
        self.at_stop_since: float | None = None
        self.overload_after_s = 1.0  # pushing against a hard stop this long latches an overload error

    # --- registers -----------------------------------------------------------------------------------
    def _set(self, address: int, size: int, value: int, signed: bool = False):
        self.ram[address: address + size] = int(value).to_bytes(size, "little", signed=signed)

    def get(self, address: int, size: int, signed: bool = False) -> int:
        return int.from_bytes(self.ram[address: address + size], "little", signed=signed)

    @property
    def id(self) -> int:
        return self.ram[A_ID]

    @property
    def secondary_id(self) -> int:
        return self.ram[A_SECONDARY_ID]

    @property
    def torque(self) -> bool:
        return bool(self.ram[A_TORQUE])

    @property
    def goal_velocity(self) -> int:
        return self.get(A_GOAL_VEL, 4, signed=True)

    @property
    def watchdog(self) -> int:
        return self.get(A_WATCHDOG, 1, signed=True)

    @property
    def hardware_error(self) -> int:
        return self.ram[A_HW_ERROR]

    def latch_hardware_error(self, bits: int):
        """A shutdown condition: torque off, error latched until REBOOT (as the e-Manual describes)."""
        self.ram[A_HW_ERROR] |= bits
        self.ram[A_TORQUE] = 0

    # --- physics -------------------------------------------------------------------------------------
    def update(self, now: float):
        dt = max(0.0, now - self.last_update)
        self.last_update = now
        wd = self.watchdog
        if self.torque and wd > 0 and now - self.last_instruction > wd * 0.020:
            # Bus Watchdog fired: stop, goal values become read-only, Bus Watchdog reads -1.
            self._set(A_WATCHDOG, 1, -1, signed=True)
            self._set(A_GOAL_VEL, 4, 0, signed=True)
            self._set(A_GOAL_PWM, 2, 0, signed=True)
        target = 0.0
        if self.torque:
            mode = self.ram[A_OP_MODE]
            if mode == 1:
                limit = self.get(A_VEL_LIMIT, 4)
                target = max(-limit, min(limit, self.goal_velocity))
            elif mode == 16:
                pwm = self.get(A_GOAL_PWM, 2, signed=True)
                target = pwm / self.spec.pwm_limit * self.spec.no_load_rpm / VELOCITY_UNIT_RPM
        # First-order response with a 20 ms time constant (a loaded servo is not instantaneous).
        alpha = 1.0 - pow(2.718281828, -dt / 0.02) if dt > 0 else 0.0
        self.velocity += (target - self.velocity) * alpha
        self.position += self.velocity * COUNTS_PER_S_PER_UNIT * dt
        lo, hi = self.hard_stops
        if self.position <= lo or self.position >= hi:
            pushing = (self.position >= hi and target > 0) or (self.position <= lo and target < 0)
            self.position = min(max(self.position, lo), hi)
            self.velocity = 0.0
            if pushing:
                self.at_stop_since = self.at_stop_since if self.at_stop_since is not None else now
                if now - self.at_stop_since > self.overload_after_s:
                    self.latch_hardware_error(1 << 5)
            else:
                self.at_stop_since = None
        else:
            self.at_stop_since = None
        self._set(A_PRESENT_VEL, 4, int(round(self.velocity)), signed=True)
        self._set(A_PRESENT_POS, 4, int(round(self.position)), signed=True)
        self._set(A_PRESENT_CURRENT, 2, int(round(self.velocity * 0.5 + (300 if self.at_stop_since else 0))),
                  signed=True)
        self._set(A_MOVING, 1, int(abs(self.velocity) > 1))
        self._set(A_TICK, 2, int(now * 1000) % 32768)

    # --- instructions --------------------------------------------------------------------------------
    def alert(self) -> int:
        return ALERT if self.hardware_error else 0

    def read(self, address: int, length: int) -> tuple[int, bytes]:
        if address + length > len(self.ram) or length == 0:
            return ERR_DATA_LENGTH, b""
        return self.alert(), bytes(self.ram[address: address + length])

    def write(self, address: int, data: bytes, via_secondary: bool = False) -> int:
        """Apply a WRITE; returns the status error field."""
        end = address + len(data)
        if end > len(self.ram) or not data:
            return ERR_DATA_LENGTH
        if any(address <= a < end for a, _ in READ_ONLY):
            return ERR_ACCESS
        if address < EEPROM_END and (self.torque or via_secondary):
            return ERR_ACCESS  # EEPROM locked while torque is on; never writable through Secondary ID
        if self.watchdog == -1 and any(a in GOAL_REGISTERS for a in range(address, end)):
            return ERR_DATA_RANGE  # Bus Watchdog Error: goal values are read-only
        if address <= A_TORQUE < end and data[A_TORQUE - address] and self.hardware_error:
            return ERR_DATA_RANGE | self.alert()  # only REBOOT clears a latched shutdown
        if address <= A_GOAL_VEL < end and end >= A_GOAL_VEL + 4:
            value = int.from_bytes(data[A_GOAL_VEL - address: A_GOAL_VEL - address + 4], "little", signed=True)
            if abs(value) > self.get(A_VEL_LIMIT, 4):
                return ERR_DATA_LIMIT
        if address <= A_WATCHDOG < end:
            value = int.from_bytes(data[A_WATCHDOG - address: A_WATCHDOG - address + 1], "little", signed=True)
            if value < 0:
                return ERR_DATA_RANGE
        self.ram[address:end] = data
        if address <= A_TORQUE < end and not data[A_TORQUE - address]:
            self._set(A_GOAL_VEL, 4, 0, signed=True)
        return 0

    def reboot(self):
        """REBOOT: RAM back to defaults, latched errors cleared, torque off."""
        for address, size in ((A_TORQUE, 1), (A_HW_ERROR, 1), (A_WATCHDOG, 1), (A_GOAL_VEL, 4), (A_GOAL_PWM, 2)):
            self._set(address, size, 0)
        self.velocity = 0.0
        self.at_stop_since = None


@dataclass
class BusLog:
    instructions: list[Instruction] = field(default_factory=list)
    crc_errors: int = 0

    def of(self, instruction: int, address: int | None = None) -> list[Instruction]:
        out = [i for i in self.instructions if i.instruction == instruction]
        if address is not None:
            out = [i for i in out if len(i.params) >= 2 and int.from_bytes(i.params[:2], "little") == address]
        return out


def parse_sync_write(params: bytes) -> tuple[int, dict[int, bytes]]:
    """(start address, {id: data}) from SYNC_WRITE parameters."""
    address = int.from_bytes(params[0:2], "little")
    length = int.from_bytes(params[2:4], "little")
    values, i = {}, 4
    while i + 1 + length <= len(params):
        values[params[i]] = bytes(params[i + 1: i + 1 + length])
        i += 1 + length
    return address, values


class DynamixelBusEmulator(ThreadedEmulator):
    """The emulated bus: a pty, a thread answering instruction packets, and the servos on it."""

    def __init__(self, servos: list[EmulatedServo], physics_hz: float = 500.0, log_limit: int = 200_000):
        self.servos = {s.id: s for s in servos}
        self.log = BusLog()
        self.log_limit = log_limit
        self.physics_period = 1.0 / physics_hz
        self.lock = threading.RLock()
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._buffer = bytearray()

    # --- lifecycle -----------------------------------------------------------------------------------
    thread_name = "dxl-emulator"

    def _on_stop(self):
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    # --- state access for tests ------------------------------------------------------------------------
    def servo(self, servo_id: int) -> EmulatedServo:
        """The servo, after every byte already written to the bus has been processed."""
        self.drain()
        return self.servos[servo_id]

    def drain(self, timeout: float = 5.0):
        """Wait until the emulator has consumed and handled everything written so far.

        The thread reads and handles under `lock`, so once the lock is free and the pty has no
        pending input, every packet the driver sent before this call has been applied.
        """
        if self.lock._is_owned():  # called under our own lock (a wait_for predicate): cannot wait here
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                try:
                    pending, _, _ = select.select([self._master], [], [], 0)
                except (OSError, ValueError):
                    return
                if not pending:
                    return
            time.sleep(0.0005)

    def update(self):
        with self.lock:
            now = time.monotonic()
            for s in self.servos.values():
                s.update(now)

    def wait_for(self, predicate, timeout: float = 30.0, poll: float = 0.01) -> bool:
        """Block until predicate(self) is true (evaluated under the lock); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.drain()
            with self.lock:
                self.update()
                if predicate(self):
                    return True
            time.sleep(poll)
        return False

    # --- the wire ----------------------------------------------------------------------------------------
    def _serve(self):
        last_physics = 0.0
        while not self._stop_requested.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], self.physics_period)
            except (OSError, ValueError):
                return
            now = time.monotonic()
            if ready:
                with self.lock:
                    try:
                        chunk = os.read(self._master, 4096)
                    except OSError:
                        return
                    self._buffer.extend(chunk)
                    self._process_buffer()
            if now - last_physics >= self.physics_period:
                last_physics = now
                self.update()

    def _process_buffer(self):
        buf = self._buffer
        while True:
            start = buf.find(HEADER)
            if start < 0:
                del buf[: max(0, len(buf) - 3)]
                return
            del buf[:start]
            if len(buf) < 7:
                return
            length = int.from_bytes(buf[5:7], "little")
            total = 7 + length
            if len(buf) < total:
                return
            packet = bytes(buf[:total])
            del buf[:total]
            if crc16(packet[:-2]) != int.from_bytes(packet[-2:], "little"):
                self.log.crc_errors += 1
                continue  # a servo ignores a packet with a bad CRC
            body = unstuff(packet[7:-2])
            self._handle(packet, packet[4], body[0], body[1:])

    def _send(self, servo: EmulatedServo, packet: bytes):
        faults = servo.faults
        if faults.no_reply > 0:
            faults.no_reply -= 1
            return
        if faults.corrupt_crc > 0:
            faults.corrupt_crc -= 1
            packet = packet[:-1] + bytes([packet[-1] ^ 0x5A])
        os.write(self._master, packet)

    def _present(self, servo_id: int) -> EmulatedServo | None:
        s = self.servos.get(servo_id)
        return None if s is None or s.faults.missing else s

    def _handle(self, raw: bytes, servo_id: int, inst: int, params: bytes):
        now = time.monotonic()
        if len(self.log.instructions) < self.log_limit:
            self.log.instructions.append(Instruction(now, raw, servo_id, inst, params))
        self.update()
        # Which servos take this packet: by ID, by Secondary ID (silently), or all on broadcast.
        present = [s for s in self.servos.values() if not s.faults.missing]
        primary = self._present(servo_id)
        secondaries = [s for s in present if s.secondary_id == servo_id and s is not primary]
        for s in present:
            if servo_id == BROADCAST or s is primary or s in secondaries:
                s.last_instruction = now
        if inst == PING:
            if servo_id == BROADCAST:
                for s in sorted(present, key=lambda s: s.id):
                    self._send(s, status_packet(s.id, s.alert(), s.get(A_MODEL, 2).to_bytes(2, "little")
                                                + bytes([s.ram[A_FW]])))
            elif primary:
                self._send(primary, status_packet(primary.id, primary.alert(),
                                                  primary.get(A_MODEL, 2).to_bytes(2, "little")
                                                  + bytes([primary.ram[A_FW]])))
        elif inst == READ and primary:
            address, length = int.from_bytes(params[0:2], "little"), int.from_bytes(params[2:4], "little")
            error, data = primary.read(address, length)
            self._send(primary, status_packet(primary.id, error, data))
        elif inst == WRITE:
            address, data = int.from_bytes(params[0:2], "little"), params[2:]
            for s in secondaries:
                s.write(address, data, via_secondary=True)
            if primary:
                self._send(primary, status_packet(primary.id, primary.write(address, data) | primary.alert()))
        elif inst == REBOOT:
            for s in secondaries:
                s.reboot()
            if primary:
                primary.reboot()
                self._send(primary, status_packet(primary.id, 0))
        elif inst == SYNC_WRITE and servo_id == BROADCAST:
            address, values = parse_sync_write(params)
            for target, data in values.items():
                for s in present:
                    if s.id == target:
                        s.write(address, data)
                    elif s.secondary_id == target:
                        s.write(address, data, via_secondary=True)
        elif inst == SYNC_READ and servo_id == BROADCAST:
            address, length = int.from_bytes(params[0:2], "little"), int.from_bytes(params[2:4], "little")
            for target in params[4:]:
                s = self._present(target)
                if s is not None:
                    error, data = s.read(address, length)
                    self._send(s, status_packet(s.id, error, data))
        elif inst == BULK_READ and servo_id == BROADCAST:
            for i in range(0, len(params) - 4, 5):
                target = params[i]
                address = int.from_bytes(params[i + 1: i + 3], "little")
                length = int.from_bytes(params[i + 3: i + 5], "little")
                s = self._present(target)
                if s is not None:
                    error, data = s.read(address, length)
                    self._send(s, status_packet(s.id, error, data))
        elif primary and servo_id != BROADCAST:
            self._send(primary, status_packet(primary.id, ERR_INSTRUCTION))


def widowx250_servos(hard_stop_margin: int = 60) -> list[EmulatedServo]:
    """The WidowX 250 bus as Interbotix ships it (wx250.yaml): IDs 1..8, shadows 3 and 5."""

    def stops(lo, hi):
        return (lo - hard_stop_margin, hi + hard_stop_margin)

    return [
        EmulatedServo(1, "XM430-W350", 2048, stops(0, 4095)),
        EmulatedServo(2, "XM430-W350", 2048, stops(819, 3344)),
        EmulatedServo(3, "XM430-W350", 2048, stops(819, 3344), drive_mode=1, secondary_id=2),
        EmulatedServo(4, "XM430-W350", 2048, stops(1002, 3446)),
        EmulatedServo(5, "XM430-W350", 2048, stops(1002, 3446), drive_mode=1, secondary_id=4),
        EmulatedServo(6, "XM430-W350", 2048, stops(650, 3185), drive_mode=1),
        EmulatedServo(7, "XL430-W250", 2048, stops(0, 4095)),
        EmulatedServo(8, "XL430-W250", 2048, stops(1400, 2700)),
    ]
