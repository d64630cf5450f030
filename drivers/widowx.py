"""WidowX 250 joint-velocity driver core (plain Python, no ROS): start-up checks, safety, one loop step.

One `step()` = one sync read of current/velocity/position/temperature of every primary servo, the
safety pipeline (command watchdog -> clamp -> position-limit guard), one sync write of Goal Velocity
(the shadows follow through their Secondary ID) and, every few cycles, a health read (Hardware Error
Status, Bus Watchdog, shadow temperatures). The servos' own Bus Watchdog stops the arm when the host
stops talking (process killed, USB pulled), independently of this code.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from drivers import control_table as ct
from drivers.dynamixel_bus import BusError, DynamixelBus
from drivers.paths import default_calibration
from drivers.rate import RateMeter

log = logging.getLogger("meldbot.widowx")


class StartupError(RuntimeError):
    """The arm cannot be brought up; the message names the servo(s) and what is wrong."""


# --- calibration ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JointSpec:
    name: str
    id: int
    model: str
    min: float  # rad
    max: float  # rad
    velocity_limit: float = 2.0  # rad/s
    shadows: tuple[int, ...] = ()

    @property
    def servo_model(self) -> ct.ServoModel:
        return ct.model_by_name(self.model)


@dataclass(frozen=True)
class GripperSpec:
    name: str
    id: int
    model: str
    min: float
    max: float
    pwm_fraction: float = 0.35  # |effort| = 1 maps to this fraction of the PWM limit
    close_sign: int = 1  # +1: positive PWM closes

    @property
    def servo_model(self) -> ct.ServoModel:
        return ct.model_by_name(self.model)


@dataclass(frozen=True)
class ArmCalibration:
    joints: tuple[JointSpec, ...]
    gripper: GripperSpec | None
    home: tuple[float, ...]

    @classmethod
    def load(cls, path: str | Path) -> ArmCalibration:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"arm calibration file {path} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
        try:
            joints = tuple(JointSpec(**{**j, "shadows": tuple(j.get("shadows", ()))}) for j in data["joints"])
            gripper = GripperSpec(**data["gripper"]) if data.get("gripper") else None
            home = tuple(float(x) for x in data.get("home", [0.0] * len(joints)))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: malformed arm calibration ({exc})") from exc
        calib = cls(joints, gripper, home)
        calib.validate(str(path))
        return calib

    def validate(self, source: str = "calibration"):
        ids = [j.id for j in self.joints] + [s for j in self.joints for s in j.shadows]
        ids += [self.gripper.id] if self.gripper else []
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"{source}: servo ID(s) {dup} used more than once")
        for j in self.joints:
            j.servo_model  # noqa: B018 - raises for an unknown model name
            if not j.min < j.max:
                raise ValueError(f"{source}: joint {j.name}: min {j.min} must be below max {j.max}")
        if len(self.home) != len(self.joints):
            raise ValueError(f"{source}: home has {len(self.home)} values for {len(self.joints)} joints")
        for j, h in zip(self.joints, self.home, strict=True):
            if not j.min <= h <= j.max:
                raise ValueError(f"{source}: home {h} of joint {j.name} is outside [{j.min}, {j.max}]")

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]

    def expected_servos(self) -> dict[int, tuple[str, str]]:
        """{id: (role, model name)} of every servo that must be on the bus."""
        out = {}
        for j in self.joints:
            out[j.id] = (j.name, j.model)
            for s in j.shadows:
                out[s] = (f"{j.name} shadow", j.model)
        if self.gripper:
            out[self.gripper.id] = (self.gripper.name, self.gripper.model)
        return out


WIDOWX_JOINTS = ("waist", "shoulder", "elbow", "wrist_angle", "wrist_rotate")



# --- config -------------------------------------------------------------------------------------------
@dataclass
class WidowXConfig:
    """Driver parameters (one ROS parameter each)."""

    port: str = "/dev/ttyDXL"
    baudrate: int = 1_000_000
    calibration: str = ""  # empty: the package's calibration/widowx.yaml
    # Command order of velocity_controller/commands (an ordering of the calibration's arm joints).
    joint_names: list[str] = field(default_factory=lambda: list(WIDOWX_JOINTS))
    loop_rate_hz: float = 100.0
    command_timeout_s: float = 0.2  # no command for this long -> zero velocity
    gripper_command_timeout_s: float = 0.0  # 0: hold the last gripper effort (keeps a grasp)
    bus_watchdog_ms: int = 100  # servo-side watchdog; multiple of 20 ms, 20..2540; 0 disables
    limit_margin_rad: float = 0.05  # stop this far inside the position limits
    braking_time_s: float = 0.2  # outward speed <= distance-to-limit / braking time
    retries: int = 2
    # start-up pings wait longer than the loop's retries: a servo just powered up, or a loaded host
    # reading the U2D2 late, misses a 34 ms reply window now and then; nothing runs yet to be late for
    startup_ping_tries: int = 10
    health_every: int = 10  # loop cycles between health reads
    home_gain: float = 2.0  # 1/s, P-loop gain of the home motion
    home_speed: float = 0.6  # rad/s cap while homing
    home_tolerance_rad: float = 0.03
    home_timeout_s: float = 20.0
    reboot_on_start: bool = True  # reboot servos that start with a latched hardware error
    reconnect_interval_s: float = 1.0  # after the port failed (USB pulled): reopen attempts this often

    def __post_init__(self):
        if self.loop_rate_hz <= 0 or self.command_timeout_s <= 0:
            raise ValueError("loop_rate_hz and command_timeout_s must be positive")
        if self.bus_watchdog_ms and not 20 <= self.bus_watchdog_ms <= 127 * 20:
            raise ValueError(f"bus_watchdog_ms {self.bus_watchdog_ms} outside 20..2540 (0 disables)")
        if self.bus_watchdog_ms and self.bus_watchdog_ms < 2000.0 / self.loop_rate_hz:
            raise ValueError(f"bus_watchdog_ms {self.bus_watchdog_ms} is shorter than two loop periods")
        if self.retries < 0 or self.startup_ping_tries < 1:
            raise ValueError(f"retries {self.retries} must be >= 0 and startup_ping_tries "
                             f"{self.startup_ping_tries} >= 1")

    @property
    def bus_watchdog_units(self) -> int:
        return int(round(self.bus_watchdog_ms / 1000.0 / ct.BUS_WATCHDOG_UNIT_S))


@dataclass
class ArmState:
    stamp: float
    names: list[str]
    position: np.ndarray  # rad (arm joints then gripper)
    velocity: np.ndarray  # rad/s
    effort: np.ndarray  # A (XM430) or load fraction (XL430)
    commanded: np.ndarray  # rad/s actually written this cycle (arm joints)


@dataclass
class LoopStats:
    cycles: int = 0
    read_failures: int = 0
    write_failures: int = 0
    command_timeouts: int = 0
    limit_stops: int = 0
    watchdog_recoveries: int = 0
    reconnects: int = 0
    rejected_commands: int = 0
    last_error: str = ""
    rate_hz: float = 0.0


class WidowXArm:
    """The arm: start-up checks and configuration, the control step, safety services."""

    def __init__(self, config: WidowXConfig, calibration: ArmCalibration | None = None,
                 bus: DynamixelBus | None = None):
        self.cfg = config
        self.calib = calibration or ArmCalibration.load(config.calibration or default_calibration("widowx.yaml"))
        self.bus = bus or DynamixelBus(config.port, config.baudrate, config.retries)
        joints = self.calib.joints
        names = list(config.joint_names) or self.calib.names
        unknown = [n for n in names if n not in self.calib.names]
        if unknown or sorted(names) != sorted(self.calib.names):
            raise ValueError(f"joint_names {names} must be an ordering of the arm joints {self.calib.names}"
                             + (f" (unknown: {unknown})" if unknown else ""))
        self.command_names = names
        self._cmd_index = [names.index(j.name) for j in joints]  # calibration order <- command order
        self.n = len(joints)
        self.models = [j.servo_model for j in joints]
        self.lo = np.array([j.min for j in joints])
        self.hi = np.array([j.max for j in joints])
        self.vmax = np.array([j.velocity_limit for j in joints])
        self.primary_ids = [j.id for j in joints]
        self.shadow_ids = [s for j in joints for s in j.shadows]
        self.gripper = self.calib.gripper
        self.read_ids = self.primary_ids + ([self.gripper.id] if self.gripper else [])
        self.all_ids = self.read_ids + self.shadow_ids
        self.names = self.calib.names + ([self.gripper.name] if self.gripper else [])
        self.stats = LoopStats()
        self.temperatures: dict[int, int] = {}
        self.hardware_errors: dict[int, int] = {}
        self.enabled = False
        self.estopped = False
        self.started = False
        self.state: ArmState | None = None
        self._lock = threading.RLock()
        self._cmd = np.zeros(self.n)
        self._cmd_time = -np.inf
        self._grip = 0.0
        self._grip_time = -np.inf
        self._pwm_limit = 885
        self._health_phase = 0
        self._watchdog_armed = False
        self._last_reconnect = -np.inf
        self._rate = RateMeter()
        self._home_target: np.ndarray | None = None
        self._home_done = threading.Event()
        self._home_result = (False, "")
        self._home_deadline = 0.0
        self.loop_running = False

    # --- start-up ----------------------------------------------------------------------------------------
    def start(self):
        """Open the bus, check every servo, configure modes and watchdog, enable torque."""
        self.check()
        try:
            self._clear_start_errors()
            self._configure()
        except BusError as exc:
            raise StartupError(f"WidowX start-up failed while configuring servos: {exc}") from exc
        self.started = True
        self.enable(True)

    def check(self) -> dict[int, int]:
        """Start-up checks without changing anything: every servo answers with the right model, shadows
        follow their primary, firmware has the Bus Watchdog. Returns {id: hardware error bits}."""
        if not self.bus.is_open:
            self.bus.open()
        expected = self.calib.expected_servos()
        problems = []
        for servo_id, (role, model) in expected.items():
            number = self.bus.ping(servo_id, tries=self.cfg.startup_ping_tries)
            want = ct.model_by_name(model)
            if number is None:
                problems.append(f"servo ID {servo_id} ({role}) did not answer a ping")
            elif number != want.number:
                problems.append(f"servo ID {servo_id} ({role}) is a {ct.model_name(number)} (model {number}), "
                                f"expected {want.name} (model {want.number})")
        if problems:
            raise StartupError(f"WidowX start-up on {self.bus.port_name} at {self.bus.baudrate} baud failed: "
                               + "; ".join(problems) + ". Check power, cabling and servo IDs.")
        try:
            return self._check_servos()
        except BusError as exc:
            raise StartupError(f"WidowX start-up check failed: {exc}") from exc

    def _check_servos(self) -> dict[int, int]:
        bus = self.bus
        for j in self.calib.joints:
            for s in j.shadows:
                sec = bus.read(s, ct.SECONDARY_ID)
                if sec != j.id:
                    raise StartupError(f"shadow servo ID {s} of {j.name} has Secondary ID {sec}, expected {j.id}: "
                                       f"it would not follow its primary. Set it with DYNAMIXEL Wizard.")
                if bus.read(s, ct.DRIVE_MODE) & 1 == bus.read(j.id, ct.DRIVE_MODE) & 1:
                    raise StartupError(f"shadow servo ID {s} of {j.name} turns the same way as ID {j.id} "
                                       f"(Drive Mode bit 0 must differ): they would fight each other")
        if self.cfg.bus_watchdog_ms:
            for servo_id in self.all_ids:
                fw = bus.read(servo_id, ct.FIRMWARE_VERSION)
                if fw < 38:
                    raise StartupError(f"servo ID {servo_id} firmware v{fw} has no Bus Watchdog (needs v38+); "
                                       f"update it or set bus_watchdog_ms: 0")
        return {i: b for i, b in bus.sync_read_register(self.all_ids, ct.HARDWARE_ERROR_STATUS).items() if b}

    def _clear_start_errors(self):
        for servo_id, bits in self.bus.sync_read_register(self.all_ids, ct.HARDWARE_ERROR_STATUS).items():
            if bits:
                what = ct.describe_hardware_error(bits)
                if not self.cfg.reboot_on_start:
                    raise StartupError(f"servo ID {servo_id} has a latched hardware error ({what}); reboot it")
                log.warning("servo ID %d starts with hardware error (%s): rebooting it", servo_id, what)
                self._reboot_ids([servo_id])

    def _configure(self):
        """Torque off, clear Bus Watchdog errors, set operating modes, zero goals (torque stays off)."""
        bus = self.bus
        bus.sync_write_register(ct.TORQUE_ENABLE, {i: 0 for i in self.all_ids})
        bus.sync_write_register(ct.BUS_WATCHDOG, {i: 0 for i in self.all_ids})
        arm_ids = self.primary_ids + self.shadow_ids
        for servo_id in arm_ids:
            if bus.read(servo_id, ct.OPERATING_MODE) != ct.OP_VELOCITY:
                bus.write(servo_id, ct.OPERATING_MODE, ct.OP_VELOCITY)  # EEPROM: only when it differs
        for k, j in enumerate(self.calib.joints):
            servo_limit = ct.velocity_units_to_rad_s(bus.read(j.id, ct.VELOCITY_LIMIT), self.models[k])
            if servo_limit < self.vmax[k]:
                log.warning("%s: servo Velocity Limit %.2f rad/s is below the calibration's %.2f; using it",
                            j.name, servo_limit, self.vmax[k])
                self.vmax[k] = servo_limit
        bus.sync_write_register(ct.GOAL_VELOCITY, {i: 0 for i in self.primary_ids})
        if self.gripper:
            g = self.gripper.id
            if bus.read(g, ct.OPERATING_MODE) != ct.OP_PWM:
                bus.write(g, ct.OPERATING_MODE, ct.OP_PWM)
            self._pwm_limit = bus.read(g, ct.PWM_LIMIT)
            bus.write(g, ct.GOAL_PWM, 0)

    # --- services -------------------------------------------------------------------------------------------
    def enable(self, on: bool):
        """Torque on (clears an e-stop, re-arms the Bus Watchdog) or off."""
        with self._lock:
            self._cmd[:] = 0.0
            self._cmd_time = -np.inf
            self._grip = 0.0
            if on:
                self.bus.sync_write_register(ct.BUS_WATCHDOG, {i: 0 for i in self.all_ids})
                self.bus.sync_write_register(ct.GOAL_VELOCITY, {i: 0 for i in self.primary_ids})
                self.bus.sync_write_register(ct.TORQUE_ENABLE, {i: 1 for i in self.all_ids})
                self._watchdog_armed = False  # armed by the next step(), so start-up gaps cannot trip it
                errors = {i: v for i, v in self.bus.sync_read_register(self.all_ids, ct.TORQUE_ENABLE).items()
                          if v != 1}
                if errors:
                    raise BusError(f"torque did not come on for servo ID(s) {sorted(errors)} "
                                   f"(hardware error latched? call reboot)", next(iter(errors)))
                self.estopped = False
            else:
                self._stop_torque()
            self.enabled = on

    def _stop_torque(self):
        ids = self.all_ids
        try:
            self.bus.sync_write_register(ct.GOAL_VELOCITY, {i: 0 for i in self.primary_ids})
            if self.gripper:
                self.bus.sync_write_register(ct.GOAL_PWM, {self.gripper.id: 0})
        finally:
            self.bus.sync_write_register(ct.TORQUE_ENABLE, {i: 0 for i in ids})

    def estop(self):
        """Zero every goal and disable torque; commands are ignored until `enable(True)`."""
        with self._lock:
            self.estopped = True
            self.enabled = False
            self._cmd[:] = 0.0
            self._abort_home("e-stop")
            self._stop_torque()
            # Confirm: a sync write has no reply, so read torque back.
            on = [i for i, v in self.bus.sync_read_register(self.all_ids, ct.TORQUE_ENABLE).items() if v]
            if on:
                self._stop_torque()
                raise BusError(f"e-stop: torque still on for servo ID(s) {on}")

    def reboot(self) -> str:
        """Reboot servos with a hardware error (all when none has one), reconfigure and re-enable."""
        with self._lock:
            errors = self.bus.sync_read_register(self.all_ids, ct.HARDWARE_ERROR_STATUS)
            ids = [i for i, v in errors.items() if v] or list(self.all_ids)
            self._reboot_ids(ids)
            self._configure()
            self.hardware_errors.clear()
            self.enable(True)
            return f"rebooted servo ID(s) {ids}"

    def _reboot_ids(self, ids):
        for servo_id in ids:
            self.bus.reboot(servo_id)
        deadline = time.monotonic() + 3.0
        pending = set(ids)
        while pending and time.monotonic() < deadline:  # a servo takes a moment to come back
            time.sleep(0.05)
            pending = {i for i in pending if self.bus.ping(i) is None}
        if pending:
            raise BusError(f"servo ID(s) {sorted(pending)} did not come back after reboot")

    # --- commands ---------------------------------------------------------------------------------------------
    def command(self, velocities, now: float | None = None):
        """Joint velocities (rad/s) in `command_names` order."""
        v = np.asarray(velocities, dtype=float).ravel()
        if v.size != self.n or not np.all(np.isfinite(v)):
            self.stats.rejected_commands += 1
            raise ValueError(f"velocity command must be {self.n} finite values for {self.command_names}, "
                             f"got {v.tolist()}")
        with self._lock:
            if self.estopped:
                return
            self._cmd = v[self._cmd_index]
            self._cmd_time = time.monotonic() if now is None else now

    def command_gripper(self, effort: float, now: float | None = None):
        if not np.isfinite(effort):
            raise ValueError(f"gripper effort must be finite, got {effort}")
        with self._lock:
            self._grip = float(np.clip(effort, -1.0, 1.0))
            self._grip_time = time.monotonic() if now is None else now

    # --- homing -----------------------------------------------------------------------------------------------
    def home(self, timeout: float | None = None) -> tuple[bool, str]:
        """Drive to the home pose with a P-loop inside the driver; returns (reached, message)."""
        timeout = self.cfg.home_timeout_s if timeout is None else timeout
        with self._lock:
            if self.estopped or not self.enabled:
                return False, "arm is not enabled (e-stopped or torque off): call enable first"
            self._home_done.clear()
            self._home_target = np.array(self.calib.home)
            self._home_deadline = time.monotonic() + timeout
        if not self.loop_running:  # no loop thread: drive it here
            period = 1.0 / self.cfg.loop_rate_hz
            while not self._home_done.is_set():
                self.step()
                time.sleep(period)
        self._home_done.wait(timeout + 5.0)
        return self._home_result

    def _abort_home(self, why: str):
        if self._home_target is not None:
            self._home_target = None
            self._home_result = (False, f"homing aborted: {why}")
            self._home_done.set()

    def _home_velocity(self, pos: np.ndarray, now: float) -> np.ndarray:
        err = self._home_target - pos
        if np.all(np.abs(err) <= self.cfg.home_tolerance_rad):
            self._home_target = None
            self._home_result = (True, f"home reached (max error {np.max(np.abs(err)):.3f} rad)")
            self._home_done.set()
            return np.zeros(self.n)
        if now > self._home_deadline:
            worst = int(np.argmax(np.abs(err)))
            self._abort_home(f"timed out; {self.calib.names[worst]} still {err[worst]:+.3f} rad away")
            return np.zeros(self.n)
        return np.clip(self.cfg.home_gain * err, -self.cfg.home_speed, self.cfg.home_speed)

    # --- the loop step ------------------------------------------------------------------------------------------
    def safe_velocity(self, cmd: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Clamp to velocity limits, then slow/zero any motion toward a position limit."""
        v = np.clip(cmd, -self.vmax, self.vmax)
        room_up = np.maximum(0.0, self.hi - self.cfg.limit_margin_rad - pos)
        room_down = np.maximum(0.0, pos - (self.lo + self.cfg.limit_margin_rad))
        brake = max(self.cfg.braking_time_s, 1e-3)
        v = np.where(v > 0, np.minimum(v, room_up / brake), v)
        v = np.where(v < 0, np.maximum(v, -room_down / brake), v)
        return v

    def step(self, now: float | None = None) -> ArmState | None:
        """One control cycle. Returns the fresh state, or None when the read failed (loop continues)."""
        with self._lock:
            now = time.monotonic() if now is None else now
            self.stats.cycles += 1
            self.stats.rate_hz = self._rate.tick(now)
            if self.bus.port_lost and not self._reconnect(now):
                self.stats.read_failures += 1
                return None
            state = self._read_state(now)
            if state is None:
                self._write_arm(np.zeros(self.n))  # no position feedback -> no motion
                return None
            if self.enabled and not self.estopped:
                pos = state.position[: self.n]
                if self._home_target is not None:
                    cmd = self._home_velocity(pos, now)
                elif now - self._cmd_time <= self.cfg.command_timeout_s:
                    cmd = self._cmd
                else:
                    if np.any(self._cmd != 0):
                        self.stats.command_timeouts += 1
                        self._cmd = np.zeros(self.n)
                    cmd = self._cmd
                v = self.safe_velocity(cmd, pos)
                if np.any(np.abs(v - np.clip(cmd, -self.vmax, self.vmax)) > 1e-9):
                    self.stats.limit_stops += 1
                self._write_arm(v)
                state.commanded = v
                if not self._watchdog_armed and self.cfg.bus_watchdog_ms:
                    self._arm_watchdog(self.all_ids)
                if self.gripper:
                    self._write_gripper(state.position[self.n], now)
            if self.stats.cycles % max(1, self.cfg.health_every) == 0:
                self._health()
            self.state = state
            return state

    def _reconnect(self, now: float) -> bool:
        """Reopen a lost port (at most every reconnect_interval_s), recheck the servos, re-arm with zero."""
        if now - self._last_reconnect < self.cfg.reconnect_interval_s:
            return False
        self._last_reconnect = now
        try:
            self.bus.reopen()
            self.check()
            self._cmd[:] = 0.0
            self._cmd_time = -np.inf
            # While the host was away the Bus Watchdog has stopped the servos: clear it, re-arm next step.
            self.bus.sync_write_register(ct.BUS_WATCHDOG, {i: 0 for i in self.all_ids})
            self._watchdog_armed = False
        except (BusError, StartupError) as exc:
            self.bus.port_lost = True
            self.stats.last_error = f"reconnect to {self.bus.port_name} failed: {exc}"
            return False
        self.stats.reconnects += 1
        log.warning("reconnected to %s", self.bus.port_name)
        return True

    def _read_state(self, now: float) -> ArmState | None:
        try:
            replies = self.bus.sync_read(self.read_ids, ct.PRESENT_BLOCK_START, ct.PRESENT_BLOCK_LENGTH)
        except BusError as exc:
            self.stats.read_failures += 1
            self.stats.last_error = str(exc)
            return None
        models = self.models + ([self.gripper.servo_model] if self.gripper else [])
        pos, vel, eff = (np.zeros(len(self.read_ids)) for _ in range(3))
        off = ct.PRESENT_BLOCK_START
        alerts = []
        for k, (servo_id, model) in enumerate(zip(self.read_ids, models, strict=True)):
            reply = replies[servo_id]
            d = reply.data
            pos[k] = ct.counts_to_rad(ct.PRESENT_POSITION.decode(d, ct.PRESENT_POSITION.address - off), model)
            vel[k] = ct.velocity_units_to_rad_s(ct.PRESENT_VELOCITY.decode(d, ct.PRESENT_VELOCITY.address - off),
                                                model)
            raw_current = ct.PRESENT_CURRENT.decode(d, ct.PRESENT_CURRENT.address - off)
            eff[k] = raw_current * model.current_unit_a if model.current_unit_a else raw_current * 1e-3
            self.temperatures[servo_id] = ct.PRESENT_TEMPERATURE.decode(d, ct.PRESENT_TEMPERATURE.address - off)
            if reply.alert:
                alerts.append(servo_id)
        if alerts:
            self._read_hardware_errors()
        return ArmState(now, self.names, pos, vel, eff, np.zeros(self.n))

    def _write_arm(self, v: np.ndarray):
        values = {j.id: ct.rad_s_to_velocity_units(float(x), m)
                  for j, x, m in zip(self.calib.joints, v, self.models, strict=True)}
        try:
            self.bus.sync_write_register(ct.GOAL_VELOCITY, values)
        except BusError as exc:
            self.stats.write_failures += 1
            self.stats.last_error = str(exc)

    def _write_gripper(self, position: float, now: float):
        g = self.gripper
        effort = self._grip
        if self.cfg.gripper_command_timeout_s and now - self._grip_time > self.cfg.gripper_command_timeout_s:
            effort = 0.0
        direction = effort * g.close_sign  # sign of the motion in servo position terms
        if (direction > 0 and position >= g.max) or (direction < 0 and position <= g.min):
            effort = 0.0  # at a finger limit: stop pushing
        pwm = int(round(effort * g.close_sign * g.pwm_fraction * self._pwm_limit))
        try:
            self.bus.sync_write_register(ct.GOAL_PWM, {g.id: pwm})
        except BusError as exc:
            self.stats.write_failures += 1
            self.stats.last_error = str(exc)

    def _health(self):
        """Rotate through hardware errors, Bus Watchdog state and shadow temperatures."""
        phase = self._health_phase
        self._health_phase = (phase + 1) % 3
        try:
            if phase == 0:
                self._read_hardware_errors()
            elif phase == 1 and self.cfg.bus_watchdog_ms and self.enabled:
                wd = self.bus.sync_read_register(self.all_ids, ct.BUS_WATCHDOG)
                tripped = [i for i, v in wd.items() if v == ct.BUS_WATCHDOG_ERROR]
                if tripped:
                    self._recover_watchdog(tripped)
            elif phase == 2 and self.shadow_ids:
                self.temperatures.update(self.bus.sync_read_register(self.shadow_ids, ct.PRESENT_TEMPERATURE))
        except BusError as exc:
            self.stats.read_failures += 1
            self.stats.last_error = str(exc)

    def _read_hardware_errors(self):
        errors = self.bus.sync_read_register(self.all_ids, ct.HARDWARE_ERROR_STATUS)
        for servo_id, bits in errors.items():
            if bits and self.hardware_errors.get(servo_id) != bits:
                msg = f"servo ID {servo_id} hardware error: {ct.describe_hardware_error(bits)} (torque is off; reboot)"
                log.error(msg)
                self.stats.last_error = msg
        self.hardware_errors = {i: b for i, b in errors.items() if b}

    def _recover_watchdog(self, ids):
        """The servos stopped on their Bus Watchdog (the loop stalled): zero, clear, re-arm."""
        self.stats.watchdog_recoveries += 1
        self.stats.last_error = f"Bus Watchdog fired on servo ID(s) {ids}; re-armed with zero velocity"
        log.warning(self.stats.last_error)
        self._cmd[:] = 0.0
        self._cmd_time = -np.inf
        self.bus.sync_write_register(ct.BUS_WATCHDOG, {i: 0 for i in ids})
        self._arm_watchdog(ids)

    def _arm_watchdog(self, ids):
        try:
            self.bus.sync_write_register(ct.BUS_WATCHDOG, {i: self.cfg.bus_watchdog_units for i in ids})
            self._watchdog_armed = True
        except BusError as exc:
            self.stats.write_failures += 1
            self.stats.last_error = str(exc)

    # --- diagnostics and shutdown -------------------------------------------------------------------------------
    def diagnostics(self) -> dict:
        s, b = self.stats, self.bus.stats
        values = {"loop_rate_hz": f"{s.rate_hz:.1f}", "cycles": s.cycles, "enabled": self.enabled,
                  "estopped": self.estopped, "bus_transactions": b.transactions, "bus_retries": b.retries,
                  "bus_failures": b.failures, "bus_errors": dict(b.errors), "read_failures": s.read_failures,
                  "write_failures": s.write_failures, "command_timeouts": s.command_timeouts,
                  "limit_stops": s.limit_stops, "watchdog_recoveries": s.watchdog_recoveries,
                  "reconnects": s.reconnects,
                  "last_error": s.last_error}
        role = {i: r for i, (r, _) in self.calib.expected_servos().items()}
        for servo_id, t in sorted(self.temperatures.items()):
            values[f"temperature_C[{role.get(servo_id, servo_id)}]"] = t
        for servo_id, bits in sorted(self.hardware_errors.items()):
            values[f"hardware_error[{role.get(servo_id, servo_id)}]"] = ct.describe_hardware_error(bits)
        return values

    def level(self) -> tuple[str, str]:
        """('ok'|'warn'|'error', message) for the diagnostics status."""
        if self.hardware_errors:
            return "error", "hardware error on servo ID(s) " + ", ".join(map(str, sorted(self.hardware_errors)))
        if self.estopped:
            return "warn", "e-stopped"
        if not self.enabled:
            return "warn", "torque off"
        if self.stats.read_failures and self.state is not None and time.monotonic() - self.state.stamp > 0.5:
            return "error", f"no state for {time.monotonic() - self.state.stamp:.1f}s: {self.stats.last_error}"
        return "ok", f"running at {self.stats.rate_hz:.0f} Hz"

    def stop_motion(self):
        """Zero velocities and gripper effort, torque left on so the arm holds its pose."""
        with self._lock:
            self._cmd[:] = 0.0
            self._grip = 0.0
            try:
                self.bus.sync_write_register(ct.GOAL_VELOCITY, {i: 0 for i in self.primary_ids})
                if self.gripper:
                    self.bus.sync_write_register(ct.GOAL_PWM, {self.gripper.id: 0})
            except BusError as exc:
                log.warning("could not send zero velocity on shutdown: %s", exc)

    def close(self):
        if self.bus.is_open:
            if self.started:
                self.stop_motion()
            self.bus.close()
