"""A GRBL 1.1 emulator on a pseudo-terminal, for testing the reset rig through its real serial driver.

What it models (enough to exercise every path of `reset_rig.grbl` and `reset_rig.rig`):
- the board reset when the port is opened (Arduino auto-reset on DTR): GRBL forgets its position,
  prints ``Grbl 1.1h ['$' for help]`` after a boot delay and, with homing enabled, starts in Alarm
  with ``[MSG:'$H'|'$X' to unlock]``;
- a machine position that moves at the configured rates and accelerations (trapezoidal profile per
  block, no junction blending), with a "physical" position beside GRBL's counted one, so a reset or
  hard limit really loses position until `$H` finds the switches again;
- `?` status reports (MPos or WPos+WCO per $10, FS, Bf, Pn with limit and probe pins), `!` feed
  hold (stops at once: a simplification), `~` resume, 0x18 soft reset (ALARM:3 if moving);
- planner semantics: a motion line is acknowledged when it enters the 15-block planner, so `ok`
  arrives long before the move ends; lines wait in the 128-byte receive buffer while the planner is
  full (an overflow is counted, as real GRBL would lose bytes);
- `$$`, `$N=V`, `$H`, `$X`, `$G`, `$I`, G0/G1 with G90/G91/G53/G21, F, G4 dwell, error:N codes,
  soft limits (ALARM:2), hard limit hit (ALARM:1 + Reset to continue), homing fail (ALARM:9);
- faults on request: `trip_limit_during_next_move`, `fail_next_homing`, `garble_next_reply`,
  `mute` (stop answering until the port is reopened), `unplug`/`replug` (the pty disappears and a new
  one appears behind the same symlink, like /dev/serial/by-id after a USB re-enumeration).

Run by hand: ``python -m tests.support.grbl_emulator`` prints a port for ``meldbot rig ... --port``.
"""

from __future__ import annotations

import errno
import math
import os
import re
import select
import tempfile
import termios
import threading
import time
import tty
from collections import deque
from dataclasses import dataclass

from reset_rig.settings import load_settings_file
from tests.support.emulator_base import ThreadedEmulator

VERSION = "1.1h"
PLANNER_BLOCKS = 15
RX_BUFFER = 128
INT_SETTINGS = {0, 1, 2, 3, 4, 5, 6, 10, 13, 20, 21, 22, 23, 26, 30, 31, 32}
WORD_RE = re.compile(r"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")


@dataclass
class _Block:
    start: tuple[float, float, float]
    target: tuple[float, float, float]
    feed: float | None  # units/min; None = rapid
    elapsed: float = 0.0
    total: float = 0.0
    length: float = 0.0
    vmax: float = 0.0
    accel: float = 0.0


class GrblEmulator(ThreadedEmulator):
    """GRBL 1.1 on a pty. `port` is a stable symlink to the current pty (survives unplug/replug)."""

    def __init__(self, settings: dict[int, float] | None = None, time_scale: float = 1.0,
                 boot_delay_s: float = 0.05, initial_position=(-50.0, -45.0, 0.0), homing_axes: str = "XY"):
        base = dict(load_settings_file().settings) if settings is None else dict(settings)
        for n, v in {102: 250.0, 112: 500.0, 122: 10.0, 132: 200.0, 27: 1.0, 24: 25.0, 25: 500.0}.items():
            base.setdefault(n, v)
        self.settings = base
        self.time_scale = time_scale
        self.boot_delay_s = boot_delay_s
        self.homing_axes = homing_axes
        self.phys = list(initial_position)  # where the carriage physically is (homed machine frame)
        self.offset = list(initial_position)  # GRBL's count = phys - offset; 0 after homing
        self._dir = tempfile.mkdtemp(prefix="grbl-emu-")
        self.port = os.path.join(self._dir, "ttyACM-grbl")
        self._lock = threading.RLock()
        self._master: int | None = None
        self._slave_open = False
        # observable history
        self.received = bytearray()  # every byte received, across resets and re-plugs
        self.lines: list[str] = []  # every complete line received (real-time bytes excluded)
        self.sent: list[str] = []  # every line sent
        self.boots = 0  # banners printed (power-on, port open, soft reset)
        self.overflows = 0
        self.homings = 0  # successful homing cycles
        # fault injection
        self._trip_fraction: float | None = None
        self._trip_axis = "X"
        self._homing_fail: int | None = None
        self._garble: list[str] = []  # prefixes of the next reply lines to garble
        self._muted = False
        self.probe = False
        self._power_on()

    # --- lifecycle -------------------------------------------------------------------------------
    thread_name = "grbl-emulator"

    def _on_start(self):
        self._plug()

    def _on_stop(self):
        self.unplug()
        try:
            os.rmdir(self._dir)
        except OSError:
            pass

    def _plug(self):
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo or newline translation, before anyone opens it
        attrs = termios.tcgetattr(slave)
        attrs[4] = attrs[5] = termios.B115200
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        name = os.ttyname(slave)
        os.close(slave)  # reading the master now fails with EIO until a client opens the slave
        tmp = self.port + ".new"
        os.symlink(name, tmp)
        os.replace(tmp, self.port)
        with self._lock:
            self._master, self._slave_open = master, False

    def unplug(self):
        """USB cable pulled: the pty vanishes; the client's reads and writes fail."""
        with self._lock:
            master, self._master = self._master, None
            self._slave_open = False
        if master is not None:
            os.close(master)
        try:
            os.unlink(self.port)
        except FileNotFoundError:
            pass

    def replug(self):
        """USB cable back: a fresh pty behind the same symlink; the board powers up from scratch."""
        with self._lock:
            self._power_on()
        self._plug()

    # --- fault injection and inspection ----------------------------------------------------------
    def trip_limit_during_next_move(self, fraction: float = 0.5, axis: str = "X"):
        """Hit a hard limit switch once the next move is `fraction` done (ALARM:1, Reset to continue)."""
        with self._lock:
            self._trip_fraction, self._trip_axis = fraction, axis

    def fail_next_homing(self, code: int = 9):
        with self._lock:
            self._homing_fail = code

    def garble_next_reply(self, prefix: str = "ok", count: int = 1):
        """Corrupt the next `count` reply lines starting with `prefix` (one byte gets its top bit set)."""
        with self._lock:
            self._garble += [prefix] * count

    def mute(self):
        """Stop answering anything until the port is reopened (which resets the board)."""
        with self._lock:
            self._muted = True

    def set_probe(self, closed: bool):
        with self._lock:
            self.probe = bool(closed)

    @property
    def mpos(self) -> tuple[float, float, float]:
        with self._lock:
            return tuple(round(p - o, 6) for p, o in zip(self.phys, self.offset, strict=True))

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def link_open(self) -> bool:
        return self._slave_open

    def received_text(self) -> str:
        return self.received.decode("ascii", errors="replace")

    # --- board model -----------------------------------------------------------------------------
    def _power_on(self):
        """MCU (re)start: counted position zero, buffers empty, locked if homing is enabled."""
        self.offset = list(self.phys)
        self._homed = False
        self._state = "Alarm" if self._homing_enabled() else "Idle"
        self._critical = False
        self._reset_buffers()
        self._muted = False
        self._outbox: list[tuple[float, bytes]] = []

    def _reset_buffers(self):
        self._planner: deque[_Block] = deque()
        self._rx: deque[str] = deque()
        self._linebuf = bytearray()
        self._homing_until: float | None = None
        self._dwell_until: float | None = None
        self._feed: float | None = None
        self._absolute = True
        self._motion = 0
        self._limit_pins = ""
        self._status_count = 0

    def _homing_enabled(self) -> bool:
        return int(self.settings.get(22, 0)) == 1

    def _banner(self, delay: float = 0.0):
        self.boots += 1
        self._queue("", delay)
        self._queue(f"Grbl {VERSION} ['$' for help]", delay)
        if self._state == "Alarm":
            self._queue("[MSG:'$H'|'$X' to unlock]", delay)

    def _soft_reset(self):
        if self._state in ("Run", "Jog"):  # a completed feed hold keeps position; a moving reset does not
            self._alarm(3)
        if self._state == "Home":
            self._alarm(6)
        self._critical = False
        self._reset_buffers()
        self._outbox = [m for m in self._outbox if b"ALARM" in m[1]]
        if self._state not in ("Alarm",):
            self._state = "Idle"
        self._banner()

    def _alarm(self, code: int, critical: bool = False):
        self._state = "Alarm"
        self._homed = False
        self._planner.clear()
        self._rx.clear()
        self._queue(f"ALARM:{code}")
        if critical:
            self._critical = True
            self._queue("[MSG:Reset to continue]")

    # --- io loop ---------------------------------------------------------------------------------
    def _queue(self, line: str, delay: float = 0.0):
        self._outbox.append((time.monotonic() + delay, (line + "\r\n").encode("ascii")))

    def _serve(self):
        last = time.monotonic()
        while not self._stop_requested.is_set():
            master = self._master
            data = b""
            if master is None:
                time.sleep(0.005)
            else:
                try:
                    ready, _, _ = select.select([master], [], [], 0.002)
                    if ready:
                        data = os.read(master, 4096)
                    opened = True
                except OSError as exc:
                    opened = False
                    if exc.errno not in (errno.EIO, errno.EBADF):
                        raise
                    time.sleep(0.003)
                with self._lock:
                    if opened and not self._slave_open and self._master is master:
                        self._slave_open = True
                        termios.tcflush(master, termios.TCIOFLUSH)
                        self._power_on()  # DTR auto-reset: the Arduino reboots on every open
                        self._banner(self.boot_delay_s)
                    elif not opened:
                        self._slave_open = False
            now = time.monotonic()
            with self._lock:
                if data:
                    self.received += data
                    if not self._muted:
                        self._receive(data)
                self._advance((now - last) * self.time_scale)
                self._process_lines()
                self._flush(master)
            last = now

    def _flush(self, master):
        if master is None or not self._slave_open or self._muted:
            return
        now = time.monotonic()
        due = [m for m in self._outbox if m[0] <= now]
        self._outbox = [m for m in self._outbox if m[0] > now]
        for _, payload in due:
            line = payload.decode().rstrip()
            for i, prefix in enumerate(self._garble):
                if line and line.startswith(prefix):
                    del self._garble[i]
                    mid = len(line) // 2
                    payload = payload[:mid] + bytes([payload[mid] | 0x80]) + payload[mid + 1:]
                    break
            self.sent.append(line)
            try:
                os.write(master, payload)
            except OSError:
                return

    def _receive(self, data: bytes):
        for byte in data:
            ch = bytes([byte])
            if ch == b"?":
                self._queue(self._status_report())
            elif ch == b"!":
                if self._state == "Run":
                    self._state = "Hold"
            elif ch == b"~":
                if self._state == "Hold" and not self._critical:
                    self._replan_current()
                    self._state = "Run" if self._planner else "Idle"
            elif ch == b"\x18":
                self._soft_reset()
            elif ch in (b"\n", b"\r"):
                if self._linebuf:
                    line = self._linebuf.decode("ascii", errors="replace")
                    self._linebuf.clear()
                    self.lines.append(line)
                    if self._critical:
                        continue  # GRBL blocks everything but reset and status after a critical alarm
                    self._rx.append(line)
                    if sum(len(x) + 1 for x in self._rx) > RX_BUFFER:
                        self.overflows += 1
            else:
                self._linebuf += ch

    def _status_report(self) -> str:
        pos = [p - o for p, o in zip(self.phys, self.offset, strict=True)]
        state = self._state + (":0" if self._state == "Hold" else "")
        mask = int(self.settings.get(10, 1))
        coords = ",".join(f"{v:.3f}" for v in pos)
        parts = [state, f"MPos:{coords}" if mask & 1 else f"WPos:{coords}"]
        feed = (self._planner[0].feed or 0.0) if (self._planner and self._state == "Run") else 0.0
        if mask & 2:
            parts.append(f"Bf:{PLANNER_BLOCKS - len(self._planner)},{RX_BUFFER - sum(len(x) + 1 for x in self._rx)}")
        parts.append(f"FS:{feed:.0f},0")
        pins = self._limit_pins + ("P" if self.probe else "")
        if pins:
            parts.append(f"Pn:{pins}")
        if not mask & 1 and self._status_count % 10 == 0:
            parts.append("WCO:0.000,0.000,0.000")
        self._status_count += 1
        return "<" + "|".join(parts) + ">"

    # --- motion ----------------------------------------------------------------------------------
    def _plan(self, block: _Block):
        delta = [t - s for t, s in zip(block.target, block.start, strict=True)]
        length = math.sqrt(sum(d * d for d in delta))
        block.length = length
        if length == 0:
            block.total = 0.0
            return
        vmax, accel = math.inf, math.inf
        for i, d in enumerate(delta):
            if d:
                frac = abs(d) / length
                vmax = min(vmax, self.settings[110 + i] / 60.0 / frac)
                accel = min(accel, self.settings[120 + i] / frac)
        if block.feed is not None:
            vmax = min(vmax, block.feed / 60.0)
        block.vmax, block.accel = vmax, accel
        d_acc = vmax * vmax / (2 * accel)
        if 2 * d_acc >= length:
            block.vmax = math.sqrt(accel * length)
            block.total = 2 * block.vmax / accel
        else:
            block.total = 2 * vmax / accel + (length - 2 * d_acc) / vmax

    def _distance(self, block: _Block, t: float) -> float:
        if t >= block.total:
            return block.length
        t_acc = block.vmax / block.accel
        if t <= t_acc:
            return 0.5 * block.accel * t * t
        d_acc = 0.5 * block.accel * t_acc * t_acc
        t_cruise = block.total - 2 * t_acc
        if t <= t_acc + t_cruise:
            return d_acc + block.vmax * (t - t_acc)
        rest = block.total - t
        return block.length - 0.5 * block.accel * rest * rest

    def _replan_current(self):
        if self._planner:
            cur = self._planner[0]
            count = tuple(p - o for p, o in zip(self.phys, self.offset, strict=True))
            self._planner[0] = _Block(count, cur.target, cur.feed)
            self._plan(self._planner[0])

    def _advance(self, dt: float):
        if self._state == "Home" and self._homing_until is not None:
            self._homing_until -= dt
            if self._homing_fail is not None and self._homing_until <= self._homing_total / 2:
                code, self._homing_fail = self._homing_fail, None
                self._alarm(code)
                self._rx.clear()
                self._banner()  # GRBL aborts and re-initialises after a homing failure
                return
            if self._homing_until <= 0:
                self._finish_homing()
            return
        if self._dwell_until is not None:
            self._dwell_until -= dt
        while self._state == "Run" and self._planner and dt > 0:
            block = self._planner[0]
            step = min(dt, block.total - block.elapsed)
            block.elapsed += step
            dt -= step
            s = self._distance(block, block.elapsed)
            frac = s / block.length if block.length else 1.0
            count = [a + (b - a) * frac for a, b in zip(block.start, block.target, strict=True)]
            self.phys = [c + o for c, o in zip(count, self.offset, strict=True)]
            if self._trip_fraction is not None and frac >= self._trip_fraction:
                self._trip_fraction = None
                if int(self.settings.get(21, 0)):
                    self._limit_pins = self._trip_axis
                    self._alarm(1, critical=True)
                    return
            if block.elapsed >= block.total:
                self._planner.popleft()
        if self._state == "Run" and not self._planner:
            self._state = "Idle"

    def _start_homing(self):
        self._state = "Home"
        home = self._home_phys()
        dist = max(abs(self.phys[i] - home[i]) for i in range(3))
        seek, locate, pulloff = self.settings[25] / 60.0, self.settings[24] / 60.0, self.settings[27]
        self._homing_total = dist / seek + 3 * pulloff / locate + 0.05
        self._homing_until = self._homing_total

    def _home_phys(self) -> list[float]:
        home = list(self.phys)
        for i, axis in enumerate("XYZ"):
            if axis in self.homing_axes:
                travel, pulloff = self.settings[130 + i], self.settings[27]
                home[i] = -travel + pulloff if int(self.settings[23]) & (1 << i) else -pulloff
        return home

    def _finish_homing(self):
        self.phys = self._home_phys()
        self.offset = [0.0, 0.0, 0.0]
        self._homing_until = None
        self._homed = True
        self._state = "Idle"
        self._limit_pins = ""
        self.homings += 1
        self._rx.popleft()  # $H is acknowledged only now
        self._queue("ok")

    # --- line interpreter ------------------------------------------------------------------------
    def _process_lines(self):
        while self._rx and not self._critical and self._state != "Home":
            line = self._rx[0]
            reply = self._execute(line.strip().upper().replace(" ", ""))
            if reply is None:  # blocked (planner full, dwell, homing): stays in the rx buffer
                return
            if self._rx and self._rx[0] is line:
                self._rx.popleft()
            for r in reply:
                self._queue(r)

    def _execute(self, line: str) -> list[str] | None:
        if not line:
            return ["ok"]
        if line.startswith("$"):
            return self._system(line)
        if self._state == "Alarm":
            return ["error:9"]
        return self._gcode(line)

    def _system(self, line: str) -> list[str] | None:
        busy = self._state in ("Run", "Hold", "Jog")
        if line == "$$":
            if busy:
                return ["error:8"]
            return [f"${n}={int(v) if n in INT_SETTINGS else f'{v:.3f}'}" for n, v in sorted(self.settings.items())
                    ] + ["ok"]
        if line == "$H":
            if not self._homing_enabled():
                return ["error:5"]
            if busy:
                return ["error:8"]
            self._start_homing()
            return None  # ok when the cycle ends (see _finish_homing)
        if line == "$X":
            if self._state == "Alarm":
                self._state = "Idle"
                return ["[MSG:Caution: Unlocked]", "ok"]
            return ["ok"]
        if line == "$G":
            motion = "G90" if self._absolute else "G91"
            return [f"[GC:G0 G54 G17 G21 {motion} G94 M5 M9 T0 F{self._feed or 0:g} S0]", "ok"]
        if line == "$I":
            return [f"[VER:{VERSION}.20190830:]", "[OPT:V,15,128]", "ok"]
        if m := re.fullmatch(r"\$(\d+)=([-+]?\d*\.?\d*)", line):
            if busy:
                return ["error:8"]
            number = int(m.group(1))
            if number not in self.settings:
                return ["error:3"]
            try:
                self.settings[number] = float(m.group(2))
            except ValueError:
                return ["error:2"]
            return ["ok"]
        return ["error:3"]

    def _gcode(self, line: str) -> list[str] | None:
        if len(line) >= 80:
            return ["error:11"]
        words = WORD_RE.findall(line)
        if "".join(a + b for a, b in words) != line:
            return ["error:1" if not line[0].isalpha() else "error:2"]
        motion, machine, absolute, dwell = None, False, self._absolute, None
        target: dict[str, float] = {}
        feed = self._feed
        for letter, value in words:
            v = float(value)
            if letter == "G":
                if v in (0, 1):
                    motion = int(v)
                elif v == 53:
                    machine = True
                elif v == 90:
                    absolute = True
                elif v == 91:
                    absolute = False
                elif v == 21:
                    pass
                elif v == 4:
                    dwell = 0.0
                else:
                    return ["error:20"]
            elif letter in "XYZ":
                if letter in target:
                    return ["error:25"]
                target[letter] = v
            elif letter == "F":
                feed = v
            elif letter == "P" and dwell is not None:
                dwell = v
            elif letter == "N":
                pass
            else:
                return ["error:20"]
        if machine and motion is None:
            return ["error:30"]
        if target and dwell is not None:
            return ["error:31"]
        if target and motion is None:
            motion = self._motion  # axis words alone move in the modal motion mode
        if dwell is not None:
            if self._planner or self._state != "Idle":
                return None  # G4 waits for the planner to empty: the classic "sync" trick
            if self._dwell_until is None:
                self._dwell_until = dwell
            if self._dwell_until > 0:
                return None
            self._dwell_until = None
            return ["ok"]
        self._absolute = absolute
        if motion is None:
            self._feed = feed
            return ["ok"]
        if not target:
            return ["error:26"]
        return self._move_words(target, motion, feed, machine, absolute)

    def _move_words(self, target, motion, feed, machine, absolute) -> list[str] | None:
        if motion == 1 and not feed:
            return ["error:22"]
        if len(self._planner) >= PLANNER_BLOCKS:
            return None  # planner full: ok only when a block finishes
        start = self._planner[-1].target if self._planner else tuple(
            p - o for p, o in zip(self.phys, self.offset, strict=True))
        end = list(start)
        for letter, value in target.items():
            i = "XYZ".index(letter)
            end[i] = value if (absolute or machine) else start[i] + value
        self._feed, self._absolute, self._motion = feed, absolute, motion
        if int(self.settings.get(20, 0)):
            for i in range(3):
                if end[i] > 1e-9 or end[i] < -self.settings[130 + i] - 1e-9:
                    self._alarm(2, critical=True)
                    return []
        block = _Block(tuple(start), tuple(end), None if motion == 0 else feed)
        self._plan(block)
        self._planner.append(block)
        if self._state == "Idle":
            self._state = "Run"
        return ["ok"]


def main():  # pragma: no cover - manual use
    import argparse

    parser = argparse.ArgumentParser(description="GRBL 1.1 emulator on a pty (for meldbot rig --port)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per real second")
    args = parser.parse_args()
    emu = GrblEmulator(time_scale=args.time_scale).start()
    print(f"GRBL emulator on {emu.port} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()


if __name__ == "__main__":
    main()
