"""Reset rig: command round-trip time to the GRBL emulator vs the serial line's byte time at 115200 baud.

Measures, through the real driver (reader thread, line parsing, flow control):
- `?` status round trip (1 byte out, one `<...>` report back),
- a G-code line's `ok` round trip (send-response),
and compares each with the time the same bytes take on a real 115200-baud 8N1 line (10 bits per byte),
and with a bare pty echo round trip measured here (the floor of the transport, no GRBL or driver).
A pty has no baud rate: ratio < 1 means the driver+emulator overhead is below the wire time of a real
board, so tests against the emulator are not slowed by it; on hardware the wire time dominates.
"""

from __future__ import annotations

import os
import select
import sys
import time
import tty
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BYTE_TIME_S = 10 / 115200  # start + 8 data + stop bits


def _pty_echo_rtt(n: int) -> np.ndarray:
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(slave, b"?")
            select.select([master], [], [], 1.0)
            os.read(master, 16)
            os.write(master, b"k")
            select.select([slave], [], [], 1.0)
            os.read(slave, 16)
            times.append(time.perf_counter() - t0)
        return np.array(times)
    finally:
        os.close(master)
        os.close(slave)


def _stats(name: str, times: np.ndarray, wire_s: float, floor_s: float):
    p50, p99 = np.percentile(times, 50), np.percentile(times, 99)
    print(f"{name:<26} p50 {p50 * 1e3:7.3f} ms  p99 {p99 * 1e3:7.3f} ms  | wire at 115200 {wire_s * 1e3:6.3f} ms "
          f"-> ratio p50/wire {p50 / wire_s:5.2f}  | vs bare pty echo x{p50 / floor_s:6.1f}")


def main(n: int = 300):
    from reset_rig.grbl import GrblDriver, move_line
    from tests.support.grbl_emulator import GrblEmulator

    floor = float(np.percentile(_pty_echo_rtt(n), 50))
    print(f"serial byte time at 115200 8N1: {BYTE_TIME_S * 1e6:.1f} us; bare pty echo round trip p50 "
          f"{floor * 1e6:.1f} us ({n} samples each)")
    with GrblEmulator(time_scale=50.0) as emu:
        d = GrblDriver(emu.port)
        try:
            d.open()
            d.home()
            status_t, report_len = [], 0
            for _ in range(n):
                t0 = time.perf_counter()
                d.status()
                status_t.append(time.perf_counter() - t0)
            report_len = len(emu.sent[-1]) + 2
            _stats("status '?' round trip", np.array(status_t), (1 + report_len) * BYTE_TIME_S, floor)
            line = "G90"
            ok_t = []
            for _ in range(n):
                t0 = time.perf_counter()
                d.command(line)
                ok_t.append(time.perf_counter() - t0)
            _stats(f"'{line}' -> ok round trip", np.array(ok_t), (len(line) + 1 + 4) * BYTE_TIME_S, floor)
            move = move_line({"X": -50.0, "Y": -45.0}, feed=1000)
            mv_t = []
            for i in range(50):
                d.command(move_line({"X": -50.0 + (i % 2), "Y": -45.0}, feed=1000))  # alternate targets
                t0 = time.perf_counter()
                d.command("G4 P0")  # dwell 0 = wait until the planner is empty
                mv_t.append(time.perf_counter() - t0)
            print(f"(G4 P0 sync after a 1 mm move at 1000 mm/min, emulator at 50x: p50 "
                  f"{np.percentile(mv_t, 50) * 1e3:.1f} ms; a real 1 mm move takes >= 60 ms; "
                  f"move line '{move}' is {len(move) + 1} bytes = {(len(move) + 1) * BYTE_TIME_S * 1e3:.2f} ms on the wire)")
        finally:
            d.close()


if __name__ == "__main__":
    main()
