"""`meldbot arm ...` and `meldbot camera ...`: bring-up checks for the WidowX bus and the two webcams.

    meldbot arm scan [--port /dev/ttyDXL] [--ids 1-20]   IDs, models, firmware, modes, errors, temperatures
    meldbot arm check [--port ...] [--calibration F]     calibration vs bus, positions vs limits (no motion)
    meldbot camera check [--config config/dual_camera.yaml] [--out DIR]   one frame per camera + the pair PNG
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _share() -> Path:
    from meldbot.executables import package_share

    return package_share()


def _ids(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    if not out or min(out) < 0 or max(out) > 252:
        raise argparse.ArgumentTypeError(f"IDs must be within 0..252, got '{text}'")
    return out


def register(subparsers):
    arm = subparsers.add_parser("arm", help="WidowX servo bus checks (scan, check)")
    arm_sub = arm.add_subparsers(dest="arm_command", metavar="ARM_COMMAND", required=True)
    scan = arm_sub.add_parser("scan", help="list servo IDs, models, firmware, mode, errors, temperature")
    scan.add_argument("--port", default="/dev/ttyDXL")
    scan.add_argument("--baud", type=int, default=1_000_000)
    scan.add_argument("--ids", type=_ids, default=_ids("1-20"), help="e.g. 1-10 or 1,2,8 (default 1-20)")
    scan.set_defaults(func=cmd_arm_scan)
    check = arm_sub.add_parser("check", help="check the bus against the calibration; no torque, no motion")
    check.add_argument("--port", default="/dev/ttyDXL")
    check.add_argument("--baud", type=int, default=1_000_000)
    check.add_argument("--calibration", default="", help="arm calibration YAML (default calibration/widowx.yaml)")
    check.set_defaults(func=cmd_arm_check)

    cam = subparsers.add_parser("camera", help="webcam checks")
    cam_sub = cam.add_subparsers(dest="camera_command", metavar="CAMERA_COMMAND", required=True)
    cc = cam_sub.add_parser("check", help="grab a frame from each camera, save PNGs, report settings")
    cc.add_argument("--config", default=str(_share() / "config" / "dual_camera.yaml"),
                    help="dual_camera parameter YAML (ROS params file)")
    cc.add_argument("--scene", help="override scene_source")
    cc.add_argument("--wrist", help="override wrist_source")
    cc.add_argument("--out", default="camera_check", help="folder for scene.png, wrist.png, pair.png")
    cc.add_argument("--timeout", type=float, default=10.0)
    cc.set_defaults(func=cmd_camera_check)


def cmd_arm_scan(args) -> int:
    from drivers import control_table as ct
    from drivers.dynamixel_bus import BusError, DynamixelBus

    try:
        with DynamixelBus(args.port, args.baud, retries=1) as bus:
            found = bus.scan(args.ids)
            if not found:
                print(f"no servo answered on {args.port} at {args.baud} baud (IDs {args.ids[0]}..{args.ids[-1]})")
                return 1
            print(f"{'ID':>3}  {'model':<12} {'fw':>3} {'mode':>4} {'torque':>6} {'temp':>4}  hardware error")
            for servo_id, number in found.items():
                try:
                    fw = bus.read(servo_id, ct.FIRMWARE_VERSION)
                    mode = bus.read(servo_id, ct.OPERATING_MODE)
                    torque = bus.read(servo_id, ct.TORQUE_ENABLE)
                    temp = bus.read(servo_id, ct.PRESENT_TEMPERATURE)
                    err = ct.describe_hardware_error(bus.read(servo_id, ct.HARDWARE_ERROR_STATUS)) or "-"
                except BusError as exc:
                    print(f"{servo_id:>3}  {ct.model_name(number):<12} read failed: {exc}")
                    continue
                print(f"{servo_id:>3}  {ct.model_name(number):<12} {fw:>3} {mode:>4} {torque:>6} {temp:>4}  {err}")
            print(f"bus: {bus.stats.transactions} transactions, {bus.stats.retries} retries, "
                  f"errors {dict(bus.stats.errors) or 'none'}")
    except BusError as exc:
        print(f"meldbot arm scan: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_arm_check(args) -> int:
    import numpy as np

    from drivers import control_table as ct
    from drivers.dynamixel_bus import BusError
    from drivers.widowx import StartupError, WidowXArm, WidowXConfig

    arm = WidowXArm(WidowXConfig(port=args.port, baudrate=args.baud, calibration=args.calibration))
    try:
        errors = arm.check()
        positions = arm.bus.sync_read_register(arm.primary_ids, ct.PRESENT_POSITION)
    except (StartupError, BusError) as exc:
        print(f"meldbot arm check: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        arm.bus.close()
    print(f"all {len(arm.all_ids)} servos answer with the expected models; shadows follow their primaries")
    status = 0
    for j, model in zip(arm.calib.joints, arm.models, strict=True):
        q = ct.counts_to_rad(positions[j.id], model)
        inside = j.min <= q <= j.max
        status |= not inside
        print(f"  {j.name:<13} ID {j.id}: {q:+.3f} rad  limits [{j.min:+.2f}, {j.max:+.2f}]"
              f"{'' if inside else '  OUTSIDE LIMITS: move it by hand before enabling'}")
    for servo_id, bits in errors.items():
        print(f"  servo ID {servo_id}: hardware error {ct.describe_hardware_error(bits)} (the driver reboots it)")
    print(f"home pose: {np.round(arm.calib.home, 3).tolist()}")
    return int(status)


def read_params_file(path: str | Path) -> dict:
    """The ros__parameters of the first node entry in a ROS 2 parameter YAML."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    for entry in data.values():
        if isinstance(entry, dict) and "ros__parameters" in entry:
            return dict(entry["ros__parameters"])
    raise ValueError(f"{path}: no 'ros__parameters' section")


def cmd_camera_check(args) -> int:
    import time

    import cv2

    from drivers.camera import Camera
    from drivers.camera_node import DualCameraConfig
    from drivers.camera_pair import CAMERAS, load_camera_calibration
    from meldbot.node_support import config_from_dict

    params = read_params_file(args.config) if Path(args.config).is_file() else {}
    if args.scene:
        params["scene_source"] = args.scene
    if args.wrist:
        params["wrist_source"] = args.wrist
    cfg = config_from_dict(DualCameraConfig, params, source=args.config)
    calib = load_camera_calibration(cfg.calibration)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cams = {n: Camera(cfg.camera(n)).start() for n in CAMERAS}
    failed = 0
    processed = {}
    try:
        for name, cam in cams.items():
            t0 = time.monotonic()
            frame = cam.wait_frame(0, timeout=args.timeout)
            waited = time.monotonic() - t0
            if frame is None:
                print(f"{name}: NO FRAME from {cam.cfg.source} in {args.timeout:g}s ({cam.status.last_error})")
                failed += 1
                continue
            cv2.imwrite(str(out / f"{name}.png"), frame.image)
            try:
                processed[name] = calib[name].process(frame.image)
            except ValueError as exc:
                print(f"{name}: {exc} (fix calibration/cameras.yaml)")
                failed += 1
            h, w = frame.image.shape[:2]
            time.sleep(1.0)  # measure the delivered frame rate
            notes = "; ".join(cam.status.settings_mismatch) or "settings as requested"
            print(f"{name}: {w}x{h} from {cam.cfg.source}, first frame after {waited:.2f}s, "
                  f"{cam.status.fps:.1f} fps, {notes} -> {out / f'{name}.png'}")
    finally:
        for cam in cams.values():
            cam.stop()
    if len(processed) == 2:
        import numpy as np

        pair = np.hstack([processed["scene"], processed["wrist"]])
        cv2.imwrite(str(out / "pair.png"), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
        print(f"pair (policy input after crop/resize): {pair.shape[1]}x{pair.shape[0]} -> {out / 'pair.png'}")
    return 1 if failed else 0
