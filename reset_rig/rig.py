"""The reset rig core: task table, travel limits, and a state machine around the GRBL driver.

States: ``disconnected`` (no trusted link), ``idle`` (homed, ready), ``moving`` (a move or homing
in progress), ``alarm`` (GRBL alarm, unhomed or settings mismatch: moves refused until homed).
Rig coordinates are the rail in mm and the rotation in degrees; machine coordinates are GRBL's
(homed frame, work area [-$13x, 0]); ``*_origin_mpos`` maps one onto the other.

Every open of the port resets the Arduino, so every (re)connect loses position and is followed by
homing. Absolute moves are idempotent, which is what makes an ambiguous (garbled) acknowledgement
safe to resolve: wait until GRBL is idle, then send the same absolute target again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from reset_rig.grbl import (
    SOFT_RESET,
    GrblAlarm,
    GrblDisconnected,
    GrblDriver,
    GrblError,
    GrblProtocolError,
    StatusReport,
    alarm_message,
    move_line,
)
from reset_rig.settings import compare_settings, load_settings_file

log = logging.getLogger(__name__)



def default_tasks_file() -> Path:
    """calibration/rig_tasks.yaml of the package share (colcon install) or the source tree."""
    from meldbot.executables import package_share

    return package_share() / "calibration" / "rig_tasks.yaml"

DISCONNECTED, IDLE, MOVING, ALARM = "disconnected", "idle", "moving", "alarm"


class RigError(RuntimeError):
    """A rig operation failed; the message says why and what to do."""


class RigTravelError(RigError, ValueError):
    """A target outside the configured travel: refused before anything is sent."""


class RigNotReady(RigError):
    """The rig cannot move now (disconnected, alarm, not homed, settings mismatch)."""


class RigStopped(RigError):
    """A move was stopped on request."""


@dataclass(frozen=True)
class RigTask:
    task_id: str
    rail_mm: float
    rotation_deg: float
    port: str
    split: str  # train | test


def load_task_table(path: str | Path | None = None) -> dict[str, RigTask]:
    """Task id -> RigTask from calibration/rig_tasks.yaml (``train:``/``test:`` lists)."""
    path = Path(path) if path else default_tasks_file()
    if not path.is_file():
        raise FileNotFoundError(f"rig task table {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    tasks: dict[str, RigTask] = {}
    for split in ("train", "test"):
        for i, entry in enumerate(data.get(split) or []):
            try:
                task = RigTask(str(entry["id"]), float(entry["rail_mm"]), float(entry["rotation_deg"]),
                               str(entry["port"]), split)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}: {split}[{i}] needs id, rail_mm, rotation_deg, port: {exc}") from exc
            if task.task_id in tasks:
                raise ValueError(f"{path}: task id '{task.task_id}' appears twice")
            tasks[task.task_id] = task
    if not tasks:
        raise ValueError(f"{path}: no tasks under 'train:' or 'test:'")
    return tasks


@dataclass
class RigConfig:
    """Reset rig parameters (config/reset_rig.yaml)."""

    port: str = "/dev/ttyACM0"
    baudrate: int = 115200
    settings_file: str = ""  # "" = reset_rig/firmware/grbl_settings.yaml
    tasks_file: str = ""  # "" = calibration/rig_tasks.yaml
    check_settings: bool = True  # refuse to move when `$$` differs from the settings file
    rail_min_mm: float = 0.0
    rail_max_mm: float = 90.0
    rotation_min_deg: float = -40.0
    rotation_max_deg: float = 40.0
    rail_origin_mpos_mm: float = -98.0  # GRBL machine X of rail 0 (here: the homed position)
    rotation_origin_mpos_deg: float = -45.0  # GRBL machine Y of rotation 0 (stage square to the arm)
    feed_mm_per_min: float = 1000.0  # G1 feed (mixed mm/deg vector, as GRBL treats it)
    tolerance: float = 0.005  # mm / deg: arrival check against GRBL's reported position
    response_timeout_s: float = 2.0  # no ok/status within this = link not trustworthy
    boot_timeout_s: float = 4.0  # banner after opening the port (Arduino bootloader ~1-2 s)
    move_timeout_s: float = 60.0
    home_timeout_s: float = 120.0
    poll_period_s: float = 0.05
    reconnect_period_s: float = 1.0
    home_on_connect: bool = True  # re-home after every (re)connect: the board reset lost position
    max_ack_retries: int = 2  # re-sends of an absolute move whose acknowledgement was garbled
    rehome_after_alarm: bool = True  # tick() re-homes after a position-losing alarm (unattended runs)...
    max_auto_rehomes: int = 2  # ...at most this many times in a row; then it waits for a person

    def __post_init__(self):
        if not self.rail_min_mm < self.rail_max_mm:
            raise ValueError(f"rail travel [{self.rail_min_mm}, {self.rail_max_mm}] mm is empty")
        if not self.rotation_min_deg < self.rotation_max_deg:
            raise ValueError(f"rotation travel [{self.rotation_min_deg}, {self.rotation_max_deg}] deg is empty")
        for name in ("feed_mm_per_min", "response_timeout_s", "move_timeout_s", "home_timeout_s",
                     "poll_period_s", "boot_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class RigSnapshot:
    state: str
    homed: bool
    rail_mm: float | None
    rotation_deg: float | None
    probe: bool
    message: str
    alarm_code: int | None = None
    grbl_state: str = ""
    task_id: str | None = None  # the task whose pose the rig last reached (None once it moved elsewhere)


@dataclass
class _Cache:
    status: StatusReport | None = None
    task_id: str | None = None
    message: str = "not connected yet"
    last_connect_try: float = field(default=-math.inf)


class Rig:
    """A GRBL reset rig. Operations are serialised; `poll`/`tick` may run beside them from another thread."""

    def __init__(self, config: RigConfig, driver: GrblDriver | None = None):
        self.config = config
        self.settings_file = load_settings_file(config.settings_file or None)
        self.tasks = load_task_table(config.tasks_file or None)
        self.rail_axis = self.settings_file.rail_axis
        self.rotation_axis = self.settings_file.rotation_axis
        self._check_travel_inside_machine()
        for task in self.tasks.values():
            try:
                self.check_target(task.rail_mm, task.rotation_deg)
            except RigTravelError as exc:
                raise ValueError(f"task '{task.task_id}' is outside the configured travel: {exc}") from exc
        self.driver = driver or GrblDriver(config.port, config.baudrate, config.response_timeout_s,
                                           config.boot_timeout_s)
        self.state = DISCONNECTED
        self.homed = False
        self.settings_ok = False
        self.settings_diffs: list = []
        self.alarm_code: int | None = None
        self.home_count = 0  # successful homing cycles (a changed count = position re-established)
        self.auto_rehomes = 0  # automatic re-homings since the last successful move
        self._op = threading.Lock()
        self._stop = threading.Event()
        self._homing = False
        self._cache = _Cache()

    # --- geometry --------------------------------------------------------------------------------
    def _check_travel_inside_machine(self):
        c = self.config
        for axis, lo, hi, origin, unit in ((self.rail_axis, c.rail_min_mm, c.rail_max_mm, c.rail_origin_mpos_mm, "mm"),
                                           (self.rotation_axis, c.rotation_min_deg, c.rotation_max_deg,
                                            c.rotation_origin_mpos_deg, "deg")):
            travel = self.settings_file.travel(axis)
            if origin + lo < -travel - 1e-9 or origin + hi > 1e-9:
                raise ValueError(f"configured travel [{lo}, {hi}] {unit} with origin {origin} puts GRBL axis {axis} "
                                 f"at [{origin + lo:g}, {origin + hi:g}], outside its soft limits "
                                 f"[{-travel:g}, 0] ({self.settings_file.path})")

    def check_target(self, rail_mm: float, rotation_deg: float):
        """RigTravelError naming the axis if the target is non-finite or outside the configured travel."""
        c = self.config
        for name, value, lo, hi, unit in (("rail", rail_mm, c.rail_min_mm, c.rail_max_mm, "mm"),
                                          ("rotation", rotation_deg, c.rotation_min_deg, c.rotation_max_deg, "deg")):
            if not math.isfinite(value):
                raise RigTravelError(f"{name} target {value} is not a finite number")
            if not lo <= value <= hi:
                raise RigTravelError(f"{name} target {value:g} {unit} is outside the configured travel "
                                     f"[{lo:g}, {hi:g}] {unit}: refused, nothing sent")

    def to_machine(self, rail_mm: float, rotation_deg: float) -> dict[str, float]:
        return {self.rail_axis: self.config.rail_origin_mpos_mm + rail_mm,
                self.rotation_axis: self.config.rotation_origin_mpos_deg + rotation_deg}

    def from_machine(self, mpos: tuple[float, ...]) -> tuple[float, float]:
        return (mpos["XYZ".index(self.rail_axis)] - self.config.rail_origin_mpos_mm,
                mpos["XYZ".index(self.rotation_axis)] - self.config.rotation_origin_mpos_deg)

    # --- connection ------------------------------------------------------------------------------
    def connect(self) -> RigSnapshot:
        """Open the port (resets the board), check the settings, and home if configured."""
        with self._op:
            self._cache.last_connect_try = time.monotonic()
            self.homed, self.settings_ok, self._cache.task_id = False, False, None
            try:
                version = self.driver.open()
                if not version.startswith("1.1"):
                    log.warning("GRBL %s on %s: the rig is written for GRBL 1.1", version, self.config.port)
                self._check_settings()
                self._refresh(self.driver.status())
            except GrblError as exc:  # no banner, a garbled `$$`...: not a link to trust
                self._lost(exc)
                raise RigNotReady(f"cannot connect to the rig on {self.config.port}: {exc}") from exc
            if not self.settings_ok:
                self._set(ALARM, "board settings differ from " + self.settings_label() + ": "
                          + "; ".join(str(d) for d in self.settings_diffs)
                          + " (meldbot rig settings --apply writes the file's values)")
            else:
                self._set(ALARM, "connected, not homed (GRBL lost position on reset)")
        if self.settings_ok and self.config.home_on_connect:
            self.home()
        return self.snapshot()

    def settings_label(self) -> str:
        return f"{Path(self.settings_file.path).name} v{self.settings_file.version}"

    def _check_settings(self):
        board = self.driver.read_settings()
        self.settings_diffs = compare_settings(board, self.settings_file)
        self.settings_ok = not self.settings_diffs or not self.config.check_settings
        if self.settings_diffs and not self.config.check_settings:
            log.warning("GRBL settings differ from %s (check_settings off): %s", self.settings_label(),
                        "; ".join(map(str, self.settings_diffs)))

    def close(self):
        with self._op:
            self.driver.close()
            self.state, self.homed = DISCONNECTED, False
            self._cache.message = "closed"

    def _lost(self, exc: Exception):
        self.driver.close(f"dropped after error: {exc}")
        # The next open waits a reconnect period: a USB adapter needs time to re-enumerate, and a closed
        # port must really be seen closed for the board's reset-on-open to happen.
        self._cache.last_connect_try = time.monotonic()
        self.state, self.homed, self._cache.task_id = DISCONNECTED, False, None
        self._cache.message = f"disconnected: {exc}"
        log.error("rig link lost: %s", exc)

    def _set(self, state: str, message: str):
        self.state = state
        self._cache.message = message

    # --- operations ------------------------------------------------------------------------------
    def home(self) -> RigSnapshot:
        """`$H` (after a soft reset if GRBL demands one). Clears an alarm; re-establishes position."""
        with self._op:
            self._require_link()
            if not self.settings_ok:
                raise RigNotReady(self._cache.message)
            self._stop.clear()
            try:
                if self.driver.needs_reset:
                    self.driver.soft_reset()
                self._set(MOVING, "homing")
                self._homing = True
                self.driver.home(self.config.home_timeout_s)
                self._refresh(self.driver.status())
            except GrblError as exc:
                self._fail(exc, "homing")
            finally:
                self._homing = False
            self.homed, self.alarm_code, self._cache.task_id = True, None, None
            self.home_count += 1
            self._set(IDLE, "homed")
        return self.snapshot()

    def unlock(self) -> RigSnapshot:
        """`$X`, only when the last alarm kept the machine position (soft limit, probe fail) and the
        rig was homed before it. Any other alarm needs `home()`."""
        with self._op:
            self._require_link()
            if self.state != ALARM:
                return self.snapshot()
            if self.alarm_code is None or GrblAlarm(self.alarm_code).loses_position or not self.homed:
                what = alarm_message(self.alarm_code) if self.alarm_code else self._cache.message
                raise RigNotReady(f"unlock refused: position not known ({what}); home the rig instead")
            try:
                if self.driver.needs_reset:
                    self.driver.soft_reset()
                self.driver.unlock()
            except GrblError as exc:
                self._fail(exc, "unlock")
            self.alarm_code = None
            self._set(IDLE, "unlocked after a position-keeping alarm")
        return self.snapshot()

    def goto_task(self, task_id: str) -> RigSnapshot:
        task = self.tasks.get(task_id)
        if task is None:
            raise RigError(f"unknown task '{task_id}' (known: {', '.join(sorted(self.tasks))})")
        self.move_to(task.rail_mm, task.rotation_deg)
        self._cache.task_id = task_id
        return self.snapshot()

    def move_to(self, rail_mm: float, rotation_deg: float) -> RigSnapshot:
        """Absolute move; returns once GRBL is idle at the target. Out-of-travel targets never reach the wire."""
        self.check_target(rail_mm, rotation_deg)
        with self._op:
            self._require_link()
            if self.state == ALARM or not self.homed:
                raise RigNotReady(f"rig not ready to move: {self._cache.message}; home it first "
                                  "(meldbot rig home, or the /reset_rig/home service)")
            self._stop.clear()
            target = self.to_machine(rail_mm, rotation_deg)
            line = move_line(target, feed=self.config.feed_mm_per_min)
            self._cache.task_id = None
            self._set(MOVING, f"moving to rail {rail_mm:g} mm, rotation {rotation_deg:g} deg")
            try:
                self._send_move(line, target)
            except RigStopped:
                self._set(IDLE, "stopped on request")
                raise
            except GrblError as exc:
                self._fail(exc, f"move to rail {rail_mm:g} mm, rotation {rotation_deg:g} deg")
            self._set(IDLE, f"at rail {rail_mm:g} mm, rotation {rotation_deg:g} deg")
            self.auto_rehomes = 0
        return self.snapshot()

    def _send_move(self, line: str, target: dict[str, float]):
        for attempt in range(self.config.max_ack_retries + 1):
            try:
                self.driver.command(line)
                break
            except GrblProtocolError as exc:
                # Outcome unknown: the block may be in the planner or not. Let GRBL finish whatever it
                # has, then re-send the same absolute target (idempotent).
                log.warning("ambiguous reply to '%s' (%s): waiting for idle, then re-sending", line, exc)
                self._wait_idle(None)
                if attempt == self.config.max_ack_retries:
                    raise
        self._wait_idle(target)

    def _wait_idle(self, target: dict[str, float] | None):
        deadline = time.monotonic() + self.config.move_timeout_s
        while True:
            if self._stop.is_set():
                self._finish_stop()
            status = self.driver.status()
            self._refresh(status)
            if status.state == "Alarm":
                raise GrblAlarm(self.driver.alarm_code, "during motion")
            if status.state == "Idle":
                if target is None:
                    return
                pos = self.driver.machine_position(status)
                errors = {a: abs(pos["XYZ".index(a)] - v) for a, v in target.items()}
                if all(e <= self.config.tolerance for e in errors.values()):
                    return
                raise GrblError(f"GRBL idle but not at the target: {errors} (tolerance {self.config.tolerance})")
            if time.monotonic() > deadline:
                self.driver.feed_hold()
                raise GrblError(f"move not finished within {self.config.move_timeout_s:.0f}s: feed hold sent")
            time.sleep(self.config.poll_period_s)

    def _finish_stop(self):
        """Feed hold was sent; once motion has stopped, a soft reset flushes the planner (position kept)."""
        deadline = time.monotonic() + self.config.move_timeout_s
        while True:
            status = self.driver.status()
            self._refresh(status)
            if status.state == "Idle" or (status.state == "Hold" and status.substate == 0):
                break
            if status.state == "Alarm":
                raise GrblAlarm(self.driver.alarm_code, "while stopping")
            if time.monotonic() > deadline:
                raise GrblError("motion did not stop after a feed hold")
            time.sleep(self.config.poll_period_s)
        if status.state == "Hold":
            self.driver.soft_reset()
            self._refresh(self.driver.status())
        self._stop.clear()
        raise RigStopped("move stopped on request (feed hold, then soft reset: position kept)")

    def stop(self) -> str:
        """Feed hold now (real-time, no waiting for the operation lock); a running move then ends."""
        if self.state == DISCONNECTED:
            return "rig disconnected: nothing to stop"
        if not self._op.locked():
            return "rig idle: nothing to stop"
        self._stop.set()
        try:
            if self._homing:  # GRBL ignores a feed hold while homing: abort it (ALARM:6, re-home needed)
                self.driver.write_realtime(SOFT_RESET)
                return "homing aborted (soft reset)"
            self.driver.feed_hold()
        except GrblDisconnected as exc:
            return f"stop not sent: {exc}"
        return "feed hold sent"

    def _require_link(self):
        if self.state == DISCONNECTED or not self.driver.connected:
            reason = self.driver.disconnected_reason or self._cache.message
            raise RigNotReady(f"rig disconnected ({reason})")

    def _fail(self, exc: GrblError, what: str):
        """Map a GRBL error to the rig state, then raise a RigError saying what happened."""
        if isinstance(exc, GrblDisconnected):
            self._lost(exc)
            raise RigNotReady(f"{what} failed: link lost ({exc}); the rig will reconnect and re-home") from exc
        if isinstance(exc, GrblAlarm):
            self.alarm_code = exc.code
            if exc.loses_position:
                self.homed = False
            self._cache.task_id = None
            self._set(ALARM, f"{what}: {exc}")
            raise RigError(f"{what} failed: {exc}. Moves are blocked until the rig is homed.") from exc
        try:  # a rejected line or an unresolved ambiguity: find out where GRBL is
            self._refresh(self.driver.status())
            grbl_alarm = self._cache.status is not None and self._cache.status.state == "Alarm"
        except GrblError:
            grbl_alarm = False
        if grbl_alarm:
            self.homed = False
            self._set(ALARM, f"{what}: {exc}")
        else:
            self._set(IDLE, f"{what} failed: {exc}")
        raise RigError(f"{what} failed: {exc}") from exc

    # --- monitoring ------------------------------------------------------------------------------
    def _refresh(self, status: StatusReport):
        self._cache.status = status

    def poll(self) -> RigSnapshot:
        """Refresh the status when no operation runs (operations refresh it themselves)."""
        if self.state != DISCONNECTED and self._op.acquire(blocking=False):
            try:
                status = self.driver.status()
                self._refresh(status)
                if status.state == "Alarm" and self.state != ALARM:
                    self.alarm_code = self.driver.alarm_code
                    if self.alarm_code is None or GrblAlarm(self.alarm_code).loses_position:
                        self.homed = False
                    self._set(ALARM, "GRBL in alarm: " + (alarm_message(self.alarm_code) if self.alarm_code
                                                          else "locked"))
            except GrblDisconnected as exc:
                self._lost(exc)
            except GrblError as exc:
                log.warning("status poll failed: %s", exc)
            finally:
                self._op.release()
        return self.snapshot()

    def tick(self) -> RigSnapshot:
        """Call periodically: polls the status, and reconnects (then re-homes) a dropped link."""
        if self.state == DISCONNECTED and not self._op.locked():
            if time.monotonic() - self._cache.last_connect_try >= self.config.reconnect_period_s:
                try:
                    self.connect()
                    log.info("rig reconnected on %s: %s", self.config.port, self._cache.message)
                except RigError as exc:
                    log.warning("rig reconnect failed: %s", exc)
            return self.snapshot()
        snap = self.poll()
        if (snap.state == ALARM and not self.homed and self.settings_ok and self.config.rehome_after_alarm
                and self.auto_rehomes < self.config.max_auto_rehomes and not self._op.locked()):
            self.auto_rehomes += 1
            log.warning("re-homing after %s (automatic attempt %d of %d)", snap.message, self.auto_rehomes,
                        self.config.max_auto_rehomes)
            try:
                return self.home()
            except RigError as exc:
                log.error("automatic re-homing failed: %s", exc)
        return self.snapshot()

    def snapshot(self) -> RigSnapshot:
        status = self._cache.status
        rail = rot = None
        if status is not None and self.state != DISCONNECTED and self.homed:
            try:
                rail, rot = self.from_machine(self.driver.machine_position(status))
            except GrblProtocolError:  # WPos reports before the first WCO: no position yet
                pass
        return RigSnapshot(state=self.state, homed=self.homed, rail_mm=rail, rotation_deg=rot,
                           probe=bool(status and status.probe and self.state != DISCONNECTED),
                           message=self._cache.message, alarm_code=self.alarm_code,
                           grbl_state=status.state if status else "", task_id=self._cache.task_id)
