"""GRBL 1.1 serial protocol driver (pyserial, 115200 8N1).

One reader thread splits GRBL's output into lines and routes them: ``ok``/``error:N`` resolve the
oldest outstanding command (character-counting flow control: at most ``RX_BUFFER_SIZE`` bytes of
unacknowledged lines are in GRBL's serial buffer), ``<...>`` status reports go to status waiters,
``ALARM:N`` and the reset banner fail every outstanding command. A line that matches none of GRBL's
output forms (a garbled byte on the wire) is *never* taken as an acknowledgement: the command it may
have answered fails with `GrblProtocolError`, because its outcome is unknown.

Real-time commands (``?`` status, ``!`` feed hold, ``~`` cycle start, 0x18 soft reset) bypass the
serial buffer and are sent as single bytes.

Error and alarm meanings are GRBL 1.1's tables (gnea/grbl doc/csv/error_codes_en_US.csv and
alarm_codes_en_US.csv).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

BAUDRATE = 115200
RX_BUFFER_SIZE = 128  # GRBL 1.1 on an ATmega328p: serial receive buffer, bytes
LINE_MAX = 80  # GRBL's line buffer; longer lines are rejected with error:11
STATUS_QUERY = b"?"
FEED_HOLD = b"!"
CYCLE_START = b"~"
SOFT_RESET = b"\x18"

ERROR_CODES: dict[int, str] = {
    1: "Expected command letter: G-code words consist of a letter and a value. Letter was not found.",
    2: "Bad number format: missing the expected G-code word value or numeric value format is not valid.",
    3: "Invalid statement: Grbl '$' system command was not recognized or supported.",
    4: "Value < 0: negative value received for an expected positive value.",
    5: "Setting disabled: homing cycle failure. Homing is not enabled via settings.",
    6: "Value < 3 usec: minimum step pulse time must be greater than 3usec.",
    7: "EEPROM read fail: auto-restoring affected EEPROM to default values.",
    8: "Not idle: Grbl '$' command cannot be used unless Grbl is IDLE.",
    9: "G-code lock: G-code commands are locked out during alarm or jog state.",
    10: "Homing not enabled: soft limits cannot be enabled without homing also enabled.",
    11: "Line overflow: max characters per line exceeded. Received command line was not executed.",
    12: "Step rate > 30kHz: Grbl '$' setting value cause the step rate to exceed the maximum supported.",
    13: "Check Door: safety door detected as opened and door state initiated.",
    14: "Line length exceeded: build info or startup line exceeded EEPROM line length limit.",
    15: "Travel exceeded: jog target exceeds machine travel. Jog command has been ignored.",
    16: "Invalid jog command: jog command has no '=' or contains prohibited g-code.",
    17: "Setting disabled: laser mode requires PWM output.",
    20: "Unsupported command: unsupported or invalid g-code command found in block.",
    21: "Modal group violation: more than one g-code command from same modal group found in block.",
    22: "Undefined feed rate: feed rate has not yet been set or is undefined.",
    23: "G-code command in block requires an integer value.",
    24: "More than one g-code command that requires axis words found in block.",
    25: "Repeated g-code word found in block.",
    26: "No axis words found in block for g-code command or current modal state which requires them.",
    27: "Line number value is invalid.",
    28: "G-code command is missing a required value word.",
    29: "G59.x work coordinate systems are not supported.",
    30: "G53 only allowed with G0 and G1 motion modes.",
    31: "Axis words found in block when no command or current modal state uses them.",
    32: "G2 and G3 arcs require at least one in-plane axis word.",
    33: "Motion command target is invalid.",
    34: "Arc radius value is invalid.",
    35: "G2 and G3 arcs require at least one in-plane offset word.",
    36: "Unused value words found in block.",
    37: "G43.1 dynamic tool length offset is not assigned to configured tool length axis.",
    38: "Tool number greater than max supported value.",
}

ALARM_CODES: dict[int, str] = {
    1: "Hard limit: hard limit has been triggered. Machine position is likely lost due to sudden halt. "
       "Re-homing is highly recommended.",
    2: "Soft limit: G-code motion target exceeds machine travel. Machine position retained. "
       "Alarm may be safely unlocked.",
    3: "Abort during cycle: reset while in motion. Machine position is likely lost due to sudden halt. "
       "Re-homing is highly recommended.",
    4: "Probe fail: probe is not in the expected initial state before starting probe cycle.",
    5: "Probe fail: probe did not contact the workpiece within the programmed travel.",
    6: "Homing fail: the active homing cycle was reset.",
    7: "Homing fail: safety door was opened during homing cycle.",
    8: "Homing fail: pull off travel failed to clear limit switch. Try increasing pull-off setting "
       "or check wiring.",
    9: "Homing fail: could not find limit switch within search distances. Try increasing max travel, "
       "decreasing pull-off distance, or check wiring.",
}

# Alarms that GRBL follows with its own reset (banner): a homing failure or an aborted cycle re-initialises.
# A line sent between the alarm and that banner would be dropped by the reset, so senders wait for it.
SELF_RESETTING_ALARMS = frozenset({3, 6, 7, 8, 9})

# Alarms after which the machine position cannot be trusted (or was never established): re-home.
# Soft limit (2) and probe fails (4, 5) retain position and may be unlocked with $X.
POSITION_LOSING_ALARMS = frozenset({1, 3, 6, 7, 8, 9})

SETTING_NAMES: dict[int, str] = {
    0: "step pulse time (us)", 1: "step idle delay (ms)", 2: "step pulse invert mask",
    3: "direction invert mask", 4: "step enable invert", 5: "limit pins invert", 6: "probe pin invert",
    10: "status report mask", 11: "junction deviation (mm)", 12: "arc tolerance (mm)",
    13: "report in inches", 20: "soft limits enable", 21: "hard limits enable", 22: "homing cycle enable",
    23: "homing direction invert mask", 24: "homing locate feed (mm/min)", 25: "homing search seek (mm/min)",
    26: "homing switch debounce (ms)", 27: "homing pull-off (mm)", 30: "max spindle speed",
    31: "min spindle speed", 32: "laser mode",
    100: "X steps/unit", 101: "Y steps/unit", 102: "Z steps/unit",
    110: "X max rate (units/min)", 111: "Y max rate (units/min)", 112: "Z max rate (units/min)",
    120: "X acceleration (units/s^2)", 121: "Y acceleration (units/s^2)", 122: "Z acceleration (units/s^2)",
    130: "X max travel (units)", 131: "Y max travel (units)", 132: "Z max travel (units)",
}

AXES = "XYZ"


def error_message(code: int) -> str:
    return f"error:{code} ({ERROR_CODES.get(code, 'unknown GRBL error code')})"


def alarm_message(code: int) -> str:
    return f"ALARM:{code} ({ALARM_CODES.get(code, 'unknown GRBL alarm code')})"


# --- exceptions ------------------------------------------------------------------------------------

class GrblError(RuntimeError):
    """Anything that went wrong talking to GRBL."""


class GrblCommandError(GrblError):
    """GRBL answered ``error:N`` to a line."""

    def __init__(self, line: str, code: int):
        self.line, self.code = line, code
        super().__init__(f"GRBL rejected '{line}': {error_message(code)}")


class GrblAlarm(GrblError):
    """GRBL raised ``ALARM:N`` (or is in the Alarm state)."""

    def __init__(self, code: int | None, context: str = ""):
        self.code = code
        what = alarm_message(code) if code is not None else "Alarm state (code not seen on this link)"
        super().__init__(f"GRBL alarm{' ' + context if context else ''}: {what}")

    @property
    def loses_position(self) -> bool:
        return self.code is None or self.code in POSITION_LOSING_ALARMS


class GrblProtocolError(GrblError):
    """A line from GRBL that is none of its output forms (garbled): the command's outcome is unknown."""


class GrblReset(GrblError):
    """GRBL reset (banner seen) while commands were outstanding: they were discarded."""


class GrblDisconnected(GrblError):
    """The serial link is gone, or GRBL stopped answering."""


class GrblTimeout(GrblDisconnected):
    """No answer from GRBL within the timeout: the link is not trustworthy any more."""


# --- parsing ---------------------------------------------------------------------------------------

BANNER_RE = re.compile(r"^Grbl (\d+\.\d+[a-z]?) \['\$' for help\]$")
STATUS_RE = re.compile(r"^<([A-Za-z]+(?::\d)?)((?:\|[A-Za-z]+:[^|<>]*)*)>$")
SETTING_RE = re.compile(r"^\$(\d+)=(-?\d+(?:\.\d*)?)$")
ERROR_RE = re.compile(r"^error:(\d+)$")
ALARM_RE = re.compile(r"^ALARM:(\d+)$")
FEEDBACK_RE = re.compile(r"^\[[A-Z]+:[ -~]*\]$")
STARTUP_RE = re.compile(r"^>[ -~]*:(ok|error:\d+)$")
STATES = ("Idle", "Run", "Hold", "Jog", "Alarm", "Door", "Check", "Home", "Sleep")


@dataclass(frozen=True)
class StatusReport:
    """One parsed ``<State|MPos:...|...>`` report. Positions are in GRBL units (mm, or deg on a mapped axis)."""

    state: str  # Idle, Run, Hold, Jog, Alarm, Door, Check, Home, Sleep
    substate: int | None = None  # Hold:0 = hold complete, Hold:1 = decelerating; Door:n
    mpos: tuple[float, ...] | None = None
    wpos: tuple[float, ...] | None = None
    wco: tuple[float, ...] | None = None
    feed: float | None = None
    spindle: float | None = None
    buffer: tuple[int, int] | None = None  # (free planner blocks, free rx bytes)
    line_number: int | None = None
    pins: str = ""  # letters of triggered inputs: X Y Z limits, P probe, D door, H hold, R reset, S start
    received_at: float = field(default=0.0, compare=False)

    def machine_position(self, wco: tuple[float, ...] | None = None) -> tuple[float, ...] | None:
        """MPos, derived as WPos + WCO when GRBL reports work positions ($10 bit 0 clear)."""
        if self.mpos is not None:
            return self.mpos
        offset = self.wco or wco
        if self.wpos is not None and offset is not None:
            return tuple(w + o for w, o in zip(self.wpos, offset, strict=True))
        return None

    @property
    def probe(self) -> bool:
        return "P" in self.pins


def parse_status(line: str, received_at: float = 0.0) -> StatusReport:
    """Parse a GRBL 1.1 status report; ValueError naming the problem if it is not one."""
    m = STATUS_RE.match(line)
    if not m:
        raise ValueError(f"not a GRBL status report: {line!r}")
    state, _, sub = m.group(1).partition(":")
    if state not in STATES:
        raise ValueError(f"unknown GRBL state {state!r} in {line!r}")
    fields: dict = {"state": state, "substate": int(sub) if sub else None, "received_at": received_at}
    for part in m.group(2).split("|")[1:]:
        key, _, value = part.partition(":")
        try:
            if key in ("MPos", "WPos", "WCO"):
                fields[key.lower()] = tuple(float(v) for v in value.split(","))
            elif key == "FS":
                feed, spindle = value.split(",")
                fields["feed"], fields["spindle"] = float(feed), float(spindle)
            elif key == "F":
                fields["feed"] = float(value)
            elif key == "Bf":
                blocks, rx = value.split(",")
                fields["buffer"] = (int(blocks), int(rx))
            elif key == "Ln":
                fields["line_number"] = int(value)
            elif key == "Pn":
                if not re.fullmatch(r"[XYZPDHRS]*", value):
                    raise ValueError(f"bad pin letters {value!r}")
                fields["pins"] = value
            # Ov (overrides) and A (accessories) are not used by the rig.
        except ValueError as exc:
            raise ValueError(f"bad field {part!r} in status report {line!r}: {exc}") from exc
    if "mpos" not in fields and "wpos" not in fields:
        raise ValueError(f"status report without MPos or WPos: {line!r}")
    return StatusReport(**fields)


def classify(line: str) -> tuple[str, object]:
    """(kind, payload) for one GRBL output line; kind 'garbled' for anything GRBL never sends."""
    if line == "ok":
        return "ok", None
    if m := ERROR_RE.match(line):
        return "error", int(m.group(1))
    if m := ALARM_RE.match(line):
        return "alarm", int(m.group(1))
    if line.startswith("<"):
        try:
            return "status", parse_status(line, time.monotonic())
        except ValueError:
            return "garbled", line
    if m := BANNER_RE.match(line):
        return "banner", m.group(1)
    if FEEDBACK_RE.match(line) or SETTING_RE.match(line) or STARTUP_RE.match(line):
        return "info", line
    return "garbled", line


def format_number(value: float) -> str:
    """GRBL-friendly decimal (no exponent, 3 decimals: 1 um / 0.001 deg resolution)."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def move_line(target: dict[str, float], feed: float | None = None, rapid: bool = False,
              machine_coords: bool = True) -> str:
    """An absolute move block, e.g. ``G90 G53 G1 X-40 Y-20 F1200``."""
    if not target:
        raise ValueError("move needs at least one axis target")
    words = ["G90"] + (["G53"] if machine_coords else []) + ["G0" if rapid else "G1"]
    for axis, value in sorted(target.items()):
        if axis not in AXES:
            raise ValueError(f"unknown GRBL axis {axis!r} (expected one of {AXES})")
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"non-finite target {value} for axis {axis}")
        words.append(f"{axis}{format_number(value)}")
    if not rapid:
        if feed is None or not feed > 0:
            raise ValueError(f"G1 move needs a positive feed rate, got {feed}")
        words.append(f"F{format_number(feed)}")
    return " ".join(words)


# --- the driver ------------------------------------------------------------------------------------

@dataclass
class _Pending:
    line: str
    nbytes: int
    done: threading.Event = field(default_factory=threading.Event)
    error: GrblError | None = None
    info: list[str] = field(default_factory=list)


class GrblDriver:
    """A GRBL 1.1 board on a serial port. Thread-safe: status polls may run beside a command."""

    def __init__(self, port: str, baudrate: int = BAUDRATE, response_timeout_s: float = 2.0,
                 boot_timeout_s: float = 4.0, serial_factory=None):
        self.port, self.baudrate = port, baudrate
        self.response_timeout_s = response_timeout_s
        self.boot_timeout_s = boot_timeout_s
        self._serial_factory = serial_factory
        self._serial = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._pending: deque[_Pending] = deque()
        self._status: StatusReport | None = None
        self._status_seq = 0
        self._banner_seq = 0
        self._wco: tuple[float, ...] | None = None
        self.version: str | None = None
        self.alarm_code: int | None = None  # last ALARM:N seen since the last reset/unlock/home
        self.needs_reset = False  # "[MSG:Reset to continue]": critical alarm, only a soft reset helps
        self._reset_expected = False  # a self-resetting alarm was seen; its banner has not come yet
        self.messages: deque[str] = deque(maxlen=50)  # feedback lines, newest last
        self.garbled: deque[str] = deque(maxlen=50)
        self.disconnected_reason: str | None = "not opened"

    # --- link ------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._serial is not None and self.disconnected_reason is None

    def open(self) -> str:
        """Open the port, wait for the banner GRBL prints after the board resets (DTR), return the version.

        A board whose auto-reset is disabled prints nothing on open: then a soft reset asks for the banner.
        """
        import serial

        self.close()
        factory = self._serial_factory or (lambda port, baud: serial.Serial(port, baud, timeout=0.05))
        try:
            self._serial = factory(self.port, self.baudrate)
        except (serial.SerialException, OSError) as exc:
            self._serial = None
            self.disconnected_reason = f"cannot open {self.port}: {exc}"
            raise GrblDisconnected(self.disconnected_reason) from exc
        with self._cond:
            self.disconnected_reason = None
            seq = self._banner_seq
        self._reader = threading.Thread(target=self._read_loop, args=(self._serial,), daemon=True,
                                        name=f"grbl-reader-{self.port}")
        self._reader.start()
        if not self._wait_banner(seq, self.boot_timeout_s):
            seq = self._banner_seq
            self.write_realtime(SOFT_RESET)
            if not self._wait_banner(seq, self.boot_timeout_s):
                reason = (f"no GRBL banner on {self.port} within {2 * self.boot_timeout_s:.1f}s "
                          f"(is it GRBL 1.1 at {self.baudrate} baud?)")
                self.close(reason)
                raise GrblTimeout(reason)
        return self.version or ""

    def close(self, reason: str = "closed"):
        ser, self._serial = self._serial, None
        with self._cond:
            self.disconnected_reason = reason
            self._fail_all(GrblDisconnected(f"link to {self.port} {reason}"))
            self._cond.notify_all()
        if ser is not None:
            try:
                ser.close()
            except Exception:  # closing a dead port may raise; it is closed either way
                pass
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=1.0)
        self._reader = None

    def _wait_banner(self, seq: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._banner_seq == seq:
                left = deadline - time.monotonic()
                if left <= 0 or self.disconnected_reason:
                    return False
                self._cond.wait(left)
        return True

    def _read_loop(self, ser):
        buf = b""
        while True:
            try:
                chunk = ser.read(ser.in_waiting or 1)
            except Exception as exc:  # pyserial raises SerialException/OSError/TypeError when unplugged
                if self._serial is ser:
                    self._on_disconnect(f"lost ({exc})")
                return
            if self._serial is not ser:
                return
            if not chunk:
                continue
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.strip(b"\r").decode("ascii", errors="replace").strip()
                if line:
                    self._dispatch(line)

    def _on_disconnect(self, reason: str):
        with self._cond:
            self.disconnected_reason = reason
            self._fail_all(GrblDisconnected(f"link to {self.port} {reason}"))
            self._cond.notify_all()
        log.warning("GRBL link %s %s", self.port, reason)

    def _fail_all(self, error: GrblError):
        while self._pending:
            p = self._pending.popleft()
            p.error = error
            p.done.set()

    def _dispatch(self, line: str):
        kind, payload = classify(line)
        with self._cond:
            if kind == "status":
                self._status = payload
                if payload.wco is not None:
                    self._wco = payload.wco
                self._status_seq += 1
            elif kind == "ok" or kind == "error":
                if self._pending:
                    p = self._pending.popleft()
                    if kind == "error":
                        p.error = GrblCommandError(p.line, payload)
                    p.done.set()
                else:
                    log.debug("GRBL %s with no command outstanding (after a reset/alarm): ignored", line)
            elif kind == "alarm":
                self.alarm_code = payload
                self._reset_expected = payload in SELF_RESETTING_ALARMS
                self._fail_all(GrblAlarm(payload))
            elif kind == "banner":
                self.version = payload
                self.needs_reset = self._reset_expected = False
                self._banner_seq += 1
                self._fail_all(GrblReset(f"GRBL reset (banner 'Grbl {payload}'): outstanding commands dropped"))
            elif kind == "info":
                self.messages.append(line)
                if line == "[MSG:Reset to continue]":
                    self.needs_reset = True
                if self._pending:
                    self._pending[0].info.append(line)
            else:  # garbled: never an ack. The oldest command's outcome is now unknown.
                self.garbled.append(line)
                log.warning("GRBL sent an unrecognised line %r", line)
                if self._pending:
                    p = self._pending.popleft()
                    p.error = GrblProtocolError(
                        f"unrecognised reply {line!r} to '{p.line}' (garbled?): outcome unknown")
                    p.done.set()
            self._cond.notify_all()

    # --- writing ---------------------------------------------------------------------------------
    def _write(self, data: bytes):
        ser = self._serial
        if ser is None or self.disconnected_reason:
            raise GrblDisconnected(f"link to {self.port} {self.disconnected_reason or 'closed'}")
        try:
            with self._write_lock:
                ser.write(data)
        except Exception as exc:
            self._on_disconnect(f"lost on write ({exc})")
            raise GrblDisconnected(f"link to {self.port} lost on write ({exc})") from exc

    def write_realtime(self, byte: bytes):
        """Send one real-time command byte (?, !, ~, 0x18): GRBL acts on it immediately, no ok."""
        if byte not in (STATUS_QUERY, FEED_HOLD, CYCLE_START, SOFT_RESET):
            raise ValueError(f"{byte!r} is not a GRBL real-time command")
        self._write(byte)

    def stream(self, lines: list[str], timeout_s: float | None = None) -> list[list[str]]:
        """Send lines with character-counting flow control; return each line's info lines.

        Stops at the first error (GrblCommandError/Alarm/ProtocolError naming the line); lines already
        in GRBL's buffer keep executing, as they would on any GRBL sender.
        """
        timeout = self.response_timeout_s if timeout_s is None else timeout_s
        sent: list[_Pending] = []
        for line in lines:
            line = line.strip()
            if not line or len(line) + 1 > LINE_MAX or any(c in line for c in "?!~\x18\n"):
                raise ValueError(f"not a sendable GRBL line: {line!r} (1..{LINE_MAX - 1} chars, no ?!~)")
            p = _Pending(line, len(line) + 1)
            with self._cond:
                # After a self-resetting alarm, wait for GRBL's banner: a line sent before it would be lost.
                deadline = time.monotonic() + self.boot_timeout_s
                while self._reset_expected and time.monotonic() < deadline:
                    self._check_link()
                    self._cond.wait(0.05)
                if self._reset_expected:
                    log.warning("GRBL on %s: no banner after ALARM:%s; sending anyway", self.port, self.alarm_code)
                    self._reset_expected = False
                # Wait for room in GRBL's receive buffer: the bytes of all un-acked lines must fit.
                deadline = time.monotonic() + timeout
                while self._pending and sum(q.nbytes for q in self._pending) + p.nbytes > RX_BUFFER_SIZE - 1:
                    self._check_link()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise GrblTimeout(f"GRBL on {self.port} did not acknowledge "
                                          f"'{self._pending[0].line}' within {timeout:.1f}s")
                    self._cond.wait(min(left, 0.1))
                self._check_link()
                self._pending.append(p)
            sent.append(p)
            try:
                self._write((line + "\n").encode("ascii"))
            except GrblDisconnected:
                raise
            self._raise_first_error(sent)
        for p in sent:
            if not p.done.wait(timeout):
                with self._cond:
                    if p in self._pending:  # keep the count honest for whoever sends next
                        self._pending.remove(p)
                self._check_link()
                raise GrblTimeout(f"GRBL on {self.port} did not acknowledge '{p.line}' within {timeout:.1f}s")
            self._raise_first_error(sent)
        return [p.info for p in sent]

    def _raise_first_error(self, sent: list[_Pending]):
        for p in sent:
            if p.done.is_set() and p.error is not None:
                raise p.error

    def _check_link(self):
        if self._serial is None or self.disconnected_reason:
            raise GrblDisconnected(f"link to {self.port} {self.disconnected_reason or 'closed'}")

    def command(self, line: str, timeout_s: float | None = None) -> list[str]:
        """Send one line and wait for its ok (send-response); return the info lines that came with it."""
        return self.stream([line], timeout_s)[0]

    # --- status and real-time --------------------------------------------------------------------
    def status(self, timeout_s: float | None = None) -> StatusReport:
        """Ask ``?`` and return the next status report; re-ask if a report was lost or garbled."""
        timeout = self.response_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        with self._cond:
            seq = self._status_seq
        while True:
            self.write_realtime(STATUS_QUERY)
            retry_at = min(deadline, time.monotonic() + max(0.1, timeout / 4))
            with self._cond:
                while self._status_seq == seq:
                    self._check_link()
                    left = retry_at - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if self._status_seq != seq:
                    return self._status
            if time.monotonic() >= deadline:
                raise GrblTimeout(f"GRBL on {self.port} sent no status report within {timeout:.1f}s")

    @property
    def last_status(self) -> StatusReport | None:
        return self._status

    def machine_position(self, report: StatusReport) -> tuple[float, ...]:
        pos = report.machine_position(self._wco)
        if pos is None:
            raise GrblProtocolError("status reports WPos but no WCO was seen yet: cannot derive MPos "
                                    "(set $10=1 to report machine positions)")
        return pos

    def feed_hold(self):
        self.write_realtime(FEED_HOLD)

    def cycle_start(self):
        self.write_realtime(CYCLE_START)

    def soft_reset(self, timeout_s: float | None = None) -> str:
        """0x18: GRBL stops, flushes its buffers and reprints the banner. Returns the version."""
        with self._cond:
            seq = self._banner_seq
        self.write_realtime(SOFT_RESET)
        if not self._wait_banner(seq, self.boot_timeout_s if timeout_s is None else timeout_s):
            self._check_link()
            raise GrblTimeout(f"GRBL on {self.port} did not come back from a soft reset")
        return self.version or ""

    # --- commands --------------------------------------------------------------------------------
    def read_settings(self) -> dict[int, float]:
        """``$$`` -> {setting number: value}."""
        settings = {}
        for line in self.command("$$"):
            if m := SETTING_RE.match(line):
                settings[int(m.group(1))] = float(m.group(2))
        if not settings:
            raise GrblProtocolError(f"'$$' on {self.port} returned no settings")
        return settings

    def home(self, timeout_s: float = 120.0):
        """``$H``: GRBL acknowledges once the homing cycle has finished (or raises ALARM:6..9)."""
        self.command("$H", timeout_s)
        self.alarm_code = None

    def unlock(self):
        """``$X``: clear the alarm lock WITHOUT homing. Callers decide whether that is safe."""
        self.command("$X")
        self.alarm_code = None
