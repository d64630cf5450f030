"""Driver benchmarks: WidowX loop rate on the emulated bus vs the bus's 1 Mbps packet budget, and camera
capture-to-publish latency.

The emulator runs in a separate process (its own GIL), on a pty: a pty has no baud rate, so the
measured rate shows the host-side cost (SDK + driver in Python); the theoretical rate is what the
wire itself allows at 1 Mbps (10 bits per byte, Return Delay Time 0, no USB latency).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EMULATOR = """
import sys
from tests.support.dynamixel_emulator import DynamixelBusEmulator, widowx250_servos
emu = DynamixelBusEmulator(widowx250_servos()).start()
print(emu.port, flush=True)
sys.stdin.read()
emu.stop()
"""


def wire_budget(n_read: int = 6, n_arm: int = 5, block: int = 21, baud: int = 1_000_000) -> tuple[int, float]:
    """(bytes per control cycle, cycles/s) the wire allows: sync read + its n status packets + the
    Goal Velocity sync write + the gripper Goal PWM sync write."""
    from tests.support import dynamixel_emulator as dx

    sync_read = len(dx.build_packet(dx.BROADCAST, dx.SYNC_READ, bytes(4 + n_read)))
    status = n_read * len(dx.status_packet(1, 0, bytes(block)))
    vel_write = len(dx.build_packet(dx.BROADCAST, dx.SYNC_WRITE, bytes(4 + n_arm * 5)))
    pwm_write = len(dx.build_packet(dx.BROADCAST, dx.SYNC_WRITE, bytes(4 + 3)))
    total = sync_read + status + vel_write + pwm_write
    return total, baud / (10.0 * total)


def bench_loop(seconds: float = 2.0):
    from dynamixel_sdk import COMM_SUCCESS, GroupSyncRead, GroupSyncWrite

    from drivers import control_table as ct
    from drivers.widowx import WidowXArm, WidowXConfig

    proc = subprocess.Popen([sys.executable, "-c", EMULATOR], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        arm = WidowXArm(WidowXConfig(port=port, bus_watchdog_ms=500))
        arm.start()
        # Baseline: the SDK's own GroupSyncRead/GroupSyncWrite, same registers, no driver logic.
        bus = arm.bus
        reader = GroupSyncRead(bus.port, bus.packet, ct.PRESENT_BLOCK_START, ct.PRESENT_BLOCK_LENGTH)
        for i in arm.read_ids:
            reader.addParam(i)
        writer = GroupSyncWrite(bus.port, bus.packet, ct.GOAL_VELOCITY.address, 4)
        for i in arm.primary_ids:
            writer.addParam(i, list(ct.GOAL_VELOCITY.encode(0)))
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            assert reader.txRxPacket() == COMM_SUCCESS
            writer.txPacket()
            n += 1
        sdk_rate = n / (time.perf_counter() - t0)
        # The driver flat out: read, safety pipeline, write, health reads.
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            arm.command([0.05, 0, 0, 0, 0])
            arm.step()
            n += 1
        driver_rate = n / (time.perf_counter() - t0)
        # Paced at the configured 100 Hz: achieved rate and period jitter.
        period, stamps = 0.01, []
        next_t = time.perf_counter()
        while len(stamps) < int(seconds / period):
            arm.command([0.05, 0, 0, 0, 0])
            arm.step()
            stamps.append(time.perf_counter())
            next_t += period
            time.sleep(max(0.0, next_t - time.perf_counter()))
        dt = np.diff(stamps)
        errors = dict(arm.bus.stats.errors)
        arm.close()
    finally:
        proc.stdin.close()
        proc.wait(10)
    nbytes, wire_rate = wire_budget(len(arm.read_ids), len(arm.primary_ids))
    print(f"WidowX loop on the pty emulator ({len(arm.read_ids)} servos read, {len(arm.primary_ids)} written):")
    print(f"  wire budget at 1 Mbps     : {nbytes} bytes/cycle -> {wire_rate:7.1f} cycles/s (theoretical max)")
    print(f"  SDK sync read+write only  : {sdk_rate:7.1f} cycles/s  (baseline, same process)")
    print(f"  driver step() flat out    : {driver_rate:7.1f} cycles/s  = {driver_rate / sdk_rate:.2f} x SDK baseline, "
          f"{driver_rate / wire_rate:.2f} x wire budget")
    print(f"  paced at 100 Hz           : {1.0 / dt.mean():7.1f} Hz achieved, period p50 {np.median(dt) * 1e3:.2f} ms "
          f"p99 {np.percentile(dt, 99) * 1e3:.2f} ms; bus errors {errors or 'none'}")


def bench_camera_latency(seconds: float = 3.0):
    import cv2

    from drivers.camera import Camera, CameraConfig
    from drivers.camera_pair import FramePairer, load_camera_calibration
    from tests.support.camera_video import write_video

    with tempfile.TemporaryDirectory() as tmp:
        paths = [write_video(Path(tmp) / f"{n}.avi", frames=90, width=640, height=480, fps=30) for n in "sw"]
        cams = [Camera(CameraConfig(name=n, source=str(p), width=640, height=480)).start()
                for n, p in zip(("scene", "wrist"), paths, strict=True)]
        pairer = FramePairer(load_camera_calibration(), tolerance_s=0.034, stale_after_s=0.5)
        newest, older, process = [], [], []
        seen = (0, 0)
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:  # the node's poll loop, without DDS
            s, w = cams[0].latest(), cams[1].latest()
            if s and w and (s.seq, w.seq) != seen:
                t0 = time.perf_counter()
                pair = pairer.update(s, w, time.time())
                if pair is not None:
                    cv2.cvtColor(s.image, cv2.COLOR_BGR2RGB)  # the raw image_raw conversion
                    now = time.time()
                    process.append(time.perf_counter() - t0)
                    newest.append(now - max(s.stamp, w.stamp))
                    older.append(now - pair.stamp)
                    seen = (s.seq, w.seq)
            time.sleep(0.01)  # 100 Hz poll
        for cam in cams:
            cam.stop()
    period = 1.0 / 30
    ms = lambda a, q: np.percentile(a, q) * 1e3  # noqa: E731
    print(f"Camera capture -> pair publish (2 x 640x480 MJPG files at 30 fps, 100 Hz poll, {len(newest)} pairs):")
    print(f"  newest frame age at publish : p50 {ms(newest, 50):6.2f} ms  p99 {ms(newest, 99):6.2f} ms  "
          f"= {np.median(newest) / period:.2f} x frame period")
    print(f"  pair stamp (older) age      : p50 {ms(older, 50):6.2f} ms  p99 {ms(older, 99):6.2f} ms")
    print(f"  crop+resize+pair+convert    : p50 {ms(process, 50):6.2f} ms  (poll period 10 ms baseline: "
          f"{np.median(process) / 0.01:.2f} x)")


def main():
    bench_loop()
    bench_camera_latency()


if __name__ == "__main__":
    main()
