"""One DYNAMIXEL Protocol 2.0 bus (U2D2 or any serial port) through the ROBOTIS `dynamixel_sdk`.

Adds what a control loop needs on top of the SDK: retries of transient failures with error counting,
sync read that keeps each servo's status error byte (the SDK's GroupSyncRead drops it, and with it the
hardware-error alert bit), typed register access and clear errors naming the servo and register.
The same code runs against the U2D2 and against the pty emulator used by the tests.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

import serial

from drivers import control_table as ct

try:
    import dynamixel_sdk as sdk
except ImportError as exc:  # pragma: no cover - the package is a dependency
    raise ImportError("drivers.dynamixel_bus needs the ROBOTIS SDK: pip install dynamixel-sdk") from exc

# Status packet error field (low 7 bits) per Protocol 2.0
PACKET_ERRORS = {1: "result fail", 2: "instruction error", 3: "CRC error", 4: "data range error",
                 5: "data length error", 6: "data limit error", 7: "access error"}


class BusError(RuntimeError):
    """A bus transaction failed after its retries."""

    def __init__(self, message: str, servo_id: int | None = None):
        super().__init__(message)
        self.servo_id = servo_id


@dataclass
class BusStats:
    """Counters a control loop reports in diagnostics."""

    transactions: int = 0
    retries: int = 0
    failures: int = 0  # transactions that failed even after retries
    errors: Counter = field(default_factory=Counter)  # "timeout", "corrupt", "status: data range error", ...

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass
class StatusData:
    """One servo's reply to a read: data bytes and the status error byte."""

    data: bytes
    error: int

    @property
    def alert(self) -> bool:
        return bool(self.error & ct.STATUS_ALERT_BIT)


def _comm_error(result: int) -> str:
    return {sdk.COMM_RX_TIMEOUT: "timeout", sdk.COMM_RX_CORRUPT: "corrupt", sdk.COMM_TX_FAIL: "tx fail",
            sdk.COMM_PORT_BUSY: "port busy", sdk.COMM_RX_FAIL: "rx fail"}.get(result, f"comm {result}")


class DynamixelBus:
    """Thread-safe access to one Protocol 2.0 bus."""

    def __init__(self, port: str, baudrate: int = 1_000_000, retries: int = 2):
        self.port_name, self.baudrate, self.retries = port, baudrate, retries
        self.port = sdk.PortHandler(port)
        self.packet = sdk.PacketHandler(2.0)
        self.stats = BusStats()
        self._lock = threading.RLock()
        self.is_open = False
        self.port_lost = False  # the serial device failed (USB pulled): reopen() before using it again

    # --- port ------------------------------------------------------------------------------------
    def open(self) -> DynamixelBus:
        try:
            ok = self.port.openPort() and self.port.setBaudRate(self.baudrate)
        except Exception as exc:  # pyserial raises SerialException/OSError for a missing device
            raise BusError(f"cannot open DYNAMIXEL port {self.port_name}: {exc}") from exc
        if not ok:
            raise BusError(f"cannot open DYNAMIXEL port {self.port_name} at {self.baudrate} baud")
        self.is_open = True
        return self

    def close(self):
        with self._lock:
            if self.is_open:
                try:
                    self.port.closePort()
                except (OSError, serial.SerialException):
                    pass  # the device is already gone
                self.is_open = False

    def reopen(self):
        """Close and open the port again (after the adapter was unplugged and came back)."""
        with self._lock:
            self.close()
            self.port = sdk.PortHandler(self.port_name)
            self.open()
            self.port_lost = False

    def _call(self, what: str, fn):
        """Run one SDK transaction; an OS-level port failure becomes a BusError and marks the port lost."""
        try:
            return fn()
        except (OSError, serial.SerialException) as exc:
            self.port.is_using = False  # the SDK would otherwise report "port busy" forever
            self.port_lost = True
            self.stats.errors["port"] += 1
            self.stats.failures += 1
            raise BusError(f"{what}: port {self.port_name} failed: {exc}") from exc

    def __enter__(self):
        return self.open() if not self.is_open else self

    def __exit__(self, *exc):
        self.close()

    # --- retry core --------------------------------------------------------------------------------
    def _attempt(self, what: str, servo_id: int | None, fn, tries: int | None = None):
        """Run `fn() -> (value, comm_result, status_error)` with retries; raise BusError when all fail.

        `tries` overrides the bus's 1 + retries for this transaction.

        A status packet that arrived with an error field (other than the alert bit) is a definite
        answer from the servo (e.g. data range error), so it is not retried.
        """
        last = ""
        with self._lock:
            self.stats.transactions += 1
            tries = self.retries + 1 if tries is None else tries
            for attempt in range(tries):
                if attempt:
                    self.stats.retries += 1
                value, result, error = self._call(what, fn)
                if result == sdk.COMM_SUCCESS:
                    status = error & ~ct.STATUS_ALERT_BIT
                    if status:
                        msg = PACKET_ERRORS.get(status, f"status error {status}")
                        self.stats.errors[f"status: {msg}"] += 1
                        self.stats.failures += 1
                        raise BusError(f"{what}: servo ID {servo_id} answered '{msg}'", servo_id)
                    return value, error
                last = _comm_error(result)
                self.stats.errors[last] += 1
            self.stats.failures += 1
        target = f"servo ID {servo_id}" if servo_id is not None else "bus"
        raise BusError(f"{what}: no valid reply from {target} after {tries} tries ({last})", servo_id)

    # --- single servo --------------------------------------------------------------------------------
    def ping(self, servo_id: int, tries: int | None = None) -> int | None:
        """Model number of `servo_id`, or None when it does not answer (after retries, or `tries`)."""
        try:
            model, _ = self._attempt(f"ping ID {servo_id}", servo_id,
                                     lambda: self.packet.ping(self.port, servo_id), tries)
        except BusError:
            return None
        return int(model)

    def read(self, servo_id: int, reg: ct.Register) -> int:
        data, _ = self._attempt(f"read {reg.name}({reg.address}) of ID {servo_id}", servo_id,
                                lambda: self.packet.readTxRx(self.port, servo_id, reg.address, reg.size))
        return reg.decode(data)

    def write(self, servo_id: int, reg: ct.Register, value: int):
        data = list(reg.encode(value))
        self._attempt(f"write {reg.name}({reg.address})={value} to ID {servo_id}", servo_id,
                      lambda: (None, *self.packet.writeTxRx(self.port, servo_id, reg.address, reg.size, data)))

    def reboot(self, servo_id: int):
        self._attempt(f"reboot ID {servo_id}", servo_id,
                      lambda: (None, *self.packet.reboot(self.port, servo_id)))

    # --- groups ---------------------------------------------------------------------------------------
    def sync_write(self, start: int, length: int, values: dict[int, bytes]):
        """SYNC_WRITE `length` bytes at `start` to each ID (broadcast: servos send no status)."""
        param: list[int] = []
        for servo_id, data in values.items():
            if len(data) != length:
                raise ValueError(f"sync write to ID {servo_id}: {len(data)} bytes, expected {length}")
            param.append(servo_id)
            param.extend(data)
        with self._lock:
            self.stats.transactions += 1
            result = self._call(f"sync write at {start}",
                                lambda: self.packet.syncWriteTxOnly(self.port, start, length, param, len(param)))
            if result != sdk.COMM_SUCCESS:
                self.stats.errors[_comm_error(result)] += 1
                self.stats.failures += 1
                raise BusError(f"sync write at {start}: {_comm_error(result)}")

    def sync_write_register(self, reg: ct.Register, values: dict[int, int]):
        self.sync_write(reg.address, reg.size, {i: reg.encode(v) for i, v in values.items()})

    def sync_read(self, ids: list[int], start: int, length: int) -> dict[int, StatusData]:
        """SYNC_READ: one status packet per ID, in order. Retried as a whole on a missing/corrupt reply."""

        def once():
            result = self.packet.syncReadTx(self.port, start, length, list(ids), len(ids), False)
            if result != sdk.COMM_SUCCESS:
                return None, result, 0
            out = {}
            for servo_id in ids:
                data, result, error = self.packet.readRx(self.port, servo_id, length)
                if result != sdk.COMM_SUCCESS:
                    return None, result, 0
                out[servo_id] = StatusData(bytes(data), error)
            return out, sdk.COMM_SUCCESS, 0

        value, _ = self._attempt(f"sync read {length} bytes at {start} from IDs {list(ids)}", None, once)
        return value

    def sync_read_register(self, ids: list[int], reg: ct.Register) -> dict[int, int]:
        return {i: reg.decode(s.data) for i, s in self.sync_read(ids, reg.address, reg.size).items()}

    def scan(self, ids) -> dict[int, int]:
        """{id: model number} of every ID in `ids` that answers a ping (no retries: absent is normal)."""
        found = {}
        with self._lock:
            for servo_id in ids:
                model, result, _ = self._call("scan", lambda i=servo_id: self.packet.ping(self.port, i))
                if result == sdk.COMM_SUCCESS:
                    found[servo_id] = int(model)
        return found
