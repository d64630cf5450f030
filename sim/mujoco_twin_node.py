"""MuJoCo twin node: the WidowX cable rig (or a Sawyer task) on exactly the topics the hardware uses.

Arm namespace (relative names): joint_states, velocity_controller/commands (held until the watchdog
expires, as the driver does), gripper_controller/commands, home/estop/enable services, scene/wrist
camera images + camera_info, camera_pair/image_raw (scene|wrist, stamp of the older), observation/state,
reward/sparse, reward/shaped, success. Rig (absolute): /reset_rig/joint_states, /reset_rig/commands,
/reset_rig/home, /reset_rig/stop, /reset_rig/goto_task. Task protocol: /task/request -> the rig
drives the router/boxes to the task pose -> /task/current once there.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node

from meldbot import topics
from meldbot.node_support import declare_config, diagnostic_array, diagnostic_status, run_node

FAMILIES = {
    "widowx_cable": "sim.mujoco.cable:CableTask",
    "sawyer_reach": "sim.mujoco.sawyer:SawyerReachTask",
    "sawyer_peg": "sim.mujoco.sawyer:SawyerPegTask",
}


@dataclass
class MujocoTwinConfig:
    env: str = "widowx_cable"  # widowx_cable | sawyer_reach | sawyer_peg
    physics_rate_hz: float = 50.0  # joint_states rate; each tick advances physics by 1/rate s
    camera_rate_hz: float = 5.0
    image_height: int = 240  # scene_camera / wrist_camera image_raw size
    image_width: int = 320
    pair_height: int = 64  # camera_pair/image_raw: the policy's observation, rendered at its own size
    pair_width: int = 64  # per camera (the pair is pair_height x 2*pair_width), as in the Gymnasium env
    command_timeout_s: float = 0.5  # watchdog: no command for this long -> zero velocity
    servo_hz: float = 250.0
    task_seed: int = 0
    initial_task: str = "train-00"
    domain_randomization: bool = False
    seed: int = 0
    home_speed: float = 0.5  # fraction of the velocity limit used by the home motion
    home_timeout_s: float = 15.0
    frame_id: str = "twin_base"

    def __post_init__(self):
        if self.env not in FAMILIES:
            raise ValueError(f"env must be one of {sorted(FAMILIES)}, got '{self.env}'")
        for name in ("physics_rate_hz", "camera_rate_hz", "command_timeout_s", "servo_hz", "home_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.home_speed <= 1:
            raise ValueError(f"home_speed must be within (0, 1], got {self.home_speed}")


def load_family(name: str):
    import importlib

    module, cls = FAMILIES[name].split(":")
    return getattr(importlib.import_module(module), cls)()


def camera_info_msg(height: int, width: int, fovy_deg: float, stamp_s: float, frame_id: str):
    """sensor_msgs/CameraInfo of an ideal pinhole with MuJoCo's vertical field of view."""
    from sensor_msgs.msg import CameraInfo

    f = (height / 2.0) / np.tan(np.radians(fovy_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    msg = CameraInfo()
    msg.header.stamp = topics.stamp_from_seconds(stamp_s)
    msg.header.frame_id = frame_id
    msg.height, msg.width = height, width
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


class MujocoTwinNode(Node):
    def __init__(self):
        super().__init__("mujoco_twin")
        try:
            self.config = declare_config(self, MujocoTwinConfig)
        except ValueError as exc:
            raise SystemExit(f"mujoco_twin: {exc}") from exc
        from sim.mujoco.core import ArmSim

        c = self.config
        self.family = load_family(c.env)
        self.arm = self.family.arm
        try:
            self.sim = ArmSim(self.family.build_xml(), self.arm, servo_hz=c.servo_hz, rig=self.family.rig)
            self.sim.check_image_size(c.image_height, c.image_width)
            self.sim.check_image_size(c.pair_height, c.pair_width)
        except ValueError as exc:
            raise SystemExit(f"mujoco_twin: {exc}") from exc
        self.task_set = self.family.make_task_set(seed=c.task_seed)
        self.rng = np.random.default_rng(c.seed)
        self.lock = threading.Lock()
        self.ticks_per_tick = self.sim.ticks_for(1.0 / c.physics_rate_hz)
        self.command = np.zeros(self.arm.n)
        self.command_time = -np.inf
        self.torque_enabled = True
        self.home_target: list[np.ndarray] = []  # waypoints of an ongoing home motion
        self.home_done = threading.Event()
        self.rig_done = threading.Event()
        self.pending_task: str | None = None
        self.task = None
        self.requested_task: str | None = None

        try:
            self._select_task(c.initial_task, instant=True)
        except KeyError as exc:
            raise SystemExit(f"mujoco_twin: initial_task: {exc.args[0]}") from exc
        self.sim.randomize_appearance(self.rng if c.domain_randomization else None)
        self.sim.reset(self.family.ready_pose(self.sim))
        self.family.reset_episode()

        waiting = ReentrantCallbackGroup()  # services that wait for the physics timer to get somewhere
        published = [topics.JOINT_STATES, topics.SCENE_IMAGE, topics.SCENE_INFO, topics.WRIST_IMAGE,
                     topics.WRIST_INFO, topics.PAIRED_IMAGE, topics.STATE_OBSERVATION, topics.SPARSE_REWARD,
                     topics.SHAPED_REWARD, topics.SUCCESS, topics.TASK_CURRENT, topics.DIAGNOSTICS]
        if self.sim.rig is not None:
            published.append(topics.RIG_JOINT_STATES)
        self.pubs = {t: topics.create_publisher(self, t) for t in published}
        topics.create_subscription(self, topics.JOINT_VELOCITY_COMMANDS, self._on_command)
        topics.create_subscription(self, topics.GRIPPER_COMMANDS, self._on_gripper)
        topics.create_subscription(self, topics.TASK_REQUEST, self._on_task_request)
        self.create_service(topics.ARM_HOME.type_class, topics.ARM_HOME.name, self._on_home, callback_group=waiting)
        topics.create_service(self, topics.ARM_ESTOP, self._on_estop)
        topics.create_service(self, topics.ARM_ENABLE, self._on_enable)
        if self.sim.rig is not None:
            topics.create_subscription(self, topics.RIG_COMMANDS, self._on_rig_command)
            for service, handler in ((topics.RIG_HOME, self._on_rig_home), (topics.RIG_GOTO_TASK, self._on_goto_task)):
                self.create_service(service.type_class, service.name, handler, callback_group=waiting)
            topics.create_service(self, topics.RIG_STOP, self._on_rig_stop)
        self._ticks = 0
        self._camera_every = max(1, round(c.physics_rate_hz / c.camera_rate_hz))
        self._diag_every = max(1, round(c.physics_rate_hz))
        self._fovy = {name: float(self.sim.model.cam_fovy[self.sim.model.camera(name).id]) for name in ("scene", "wrist")}
        self._publish_task_current()
        # physics + rendering run in one dedicated thread: an EGL context is bound to the thread that
        # made it current, and executor callbacks hop between threads
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mujoco_physics", daemon=True)
        self._thread.start()
        self.get_logger().info(f"{c.env} twin up: task {self.task.task_id}, {len(self.task_set.train)} train / "
                               f"{len(self.task_set.test)} test tasks, servo {1 / self.sim.servo_dt:.0f} Hz")

    # --- inputs --------------------------------------------------------------------------------
    def _on_command(self, msg):
        try:
            command = topics.float_array(msg, self.arm.n, "joint velocity command")
        except ValueError as exc:
            self.get_logger().error(f"rejected command: {exc}", throttle_duration_sec=2.0)
            command = np.zeros(self.arm.n)
        with self.lock:
            self.command = command
            self.command_time = time.monotonic()

    def _on_gripper(self, msg):
        try:
            effort = float(topics.float_array(msg, 1, "gripper command")[0])
        except ValueError as exc:
            self.get_logger().error(f"rejected gripper command: {exc}", throttle_duration_sec=2.0)
            return
        lo, hi = self.arm.finger_range
        with self.lock:
            # the plug/peg holder is clamped in the fingers; opening moves only the fingers
            self.sim.set_fingers(lo if effort >= 0 else hi)

    def _select_task(self, task_id: str, instant: bool = False) -> None:
        task = self.task_set.by_id(task_id)  # KeyError names the known ids
        self.task = task
        self.requested_task = task_id
        self.family.reset_episode()
        pose = self.family.rig_pose(task)
        if pose is None or self.sim.rig is None:
            self.pending_task = None if instant else task_id
            return
        self.rig_done.clear()
        self.sim.rig.set(pose, instant=instant)
        self.pending_task = task_id

    def _on_task_request(self, msg):
        with self.lock:
            try:
                self._select_task(msg.data)
            except KeyError as exc:
                self.get_logger().error(f"/task/request: {exc.args[0]}")

    def _publish_task_current(self):
        from std_msgs.msg import String

        self.pubs[topics.TASK_CURRENT].publish(String(data=self.task.task_id))

    def _on_rig_command(self, msg):
        try:
            values = topics.float_array(msg, len(self.sim.rig.spec.joint_names), "rig command")
            with self.lock:
                self.sim.rig.set(values)
        except ValueError as exc:
            self.get_logger().error(f"rejected rig command: {exc}", throttle_duration_sec=2.0)

    def _wait(self, event: threading.Event, what: str, response):
        ok = event.wait(self.config.home_timeout_s)
        response.success = ok
        response.message = f"{what}" if ok else f"{what}: timed out after {self.config.home_timeout_s} s"
        return response

    def _on_rig_home(self, request, response):
        with self.lock:
            self.rig_done.clear()
            self.sim.rig.set(np.zeros(len(self.sim.rig.spec.joint_names)))
            self.pending_task = None
        return self._wait(self.rig_done, "rig at home", response)

    def _on_rig_stop(self, request, response):
        with self.lock:
            self.sim.rig.set(self.sim.rig.position)
        response.success, response.message = True, "rig stopped"
        return response

    def _on_goto_task(self, request, response):
        with self.lock:
            if self.requested_task is None:
                response.success, response.message = False, "no task requested on /task/request yet"
                return response
            self._select_task(self.requested_task)
        return self._wait(self.rig_done, f"at task {self.requested_task}", response)

    def _on_home(self, request, response):
        with self.lock:
            if not self.torque_enabled:
                response.success, response.message = False, "torque disabled (estop): call enable first"
                return response
            self.home_done.clear()
            # lift the tool straight out of any port/hole first, then go to the ready pose in joint space
            pos, mat = self.sim.site_pose(self.family.tool_site)
            lift, _ = self.sim.solve_ik(self.family.tool_site, pos + np.array([0, 0, 0.04]), mat,
                                        axis_only=self.arm.n > 5)
            self.home_target = [lift, self.family.ready_pose(self.sim)]
            self.command = np.zeros(self.arm.n)
        ok = self.home_done.wait(self.config.home_timeout_s)
        with self.lock:
            if not ok:  # blocked (e.g. jammed): put it home the way a person would, and say so
                self.home_target = []
                self.sim.reset(self.family.ready_pose(self.sim))
            self.family.reset_episode()
        response.success = True
        response.message = "at home" if ok else "home motion blocked: arm reset to home"
        return response

    def _on_estop(self, request, response):
        with self.lock:
            self._set_torque(False)
        response.success, response.message = True, "zeroed and torque disabled"
        return response

    def _on_enable(self, request, response):
        with self.lock:
            self._set_torque(bool(request.data))
        response.success, response.message = True, f"torque {'enabled' if request.data else 'disabled'}"
        return response

    def _set_torque(self, enabled: bool) -> None:
        import mujoco

        self.command = np.zeros(self.arm.n)
        self.home_target = []
        self.torque_enabled = enabled
        flag = mujoco.mjtDisableBit.mjDSBL_ACTUATION
        if enabled:
            self.sim.model.opt.disableflags &= ~int(flag)
            self.sim.servo.reset(self.sim.q)  # hold where it is now, as a re-enabled servo does
        else:
            self.sim.model.opt.disableflags |= int(flag)  # limp: a torque-off arm sags under gravity

    # --- physics and outputs -------------------------------------------------------------------
    def _home_velocity(self) -> np.ndarray:
        error = self.home_target[0] - self.sim.q
        if np.abs(error).max() < 0.01:
            self.home_target.pop(0)
            if not self.home_target:
                self.home_done.set()
            return np.zeros(self.arm.n)
        vmax = np.asarray(self.arm.velocity_limit) * self.config.home_speed
        return np.clip(error * 4.0, -vmax, vmax)

    def _loop(self):
        period = 1.0 / self.config.physics_rate_hz
        next_t = time.monotonic()
        try:
            while not self._stop.is_set():
                self._on_tick()
                next_t += period
                delay = next_t - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:  # slower than real time (rendering): do not try to catch up in a burst
                    next_t = time.monotonic()
        except Exception as exc:  # e.g. no EGL display: end the node with a clear message
            self.get_logger().error(f"physics loop stopped: {type(exc).__name__}: {exc}")
            self.exit_code, self.done = 1, True
        finally:
            self.sim.close()

    def _on_tick(self):
        from std_msgs.msg import Bool, Float64

        with self.lock:
            if self.home_target:
                command = self._home_velocity()
            else:
                fresh = time.monotonic() - self.command_time <= self.config.command_timeout_s
                command = self.command if (fresh and self.torque_enabled) else np.zeros(self.arm.n)
            self.sim.run(command, self.ticks_per_tick)
            result = self.family.evaluate(self.sim, self.task)
            state = self.family.state(self.sim)
            q, qdot, fingers = self.sim.q, self.sim.qdot, self.sim.fingers
            rig = self.sim.rig
            rig_state = (rig.position.copy(), rig.velocity.copy()) if rig is not None else None
            arrived = self.pending_task is not None and (rig is None or rig.at_target())
            if rig is not None and rig.at_target():
                self.rig_done.set()
            if arrived:
                self.pending_task = None
            render = self._ticks % self._camera_every == 0
            images = self._render() if render else None
        now = self.get_clock().now().nanoseconds * 1e-9
        names, positions, velocities = self._joint_state(q, qdot, fingers)
        self.pubs[topics.JOINT_STATES].publish(topics.joint_state_msg(names, positions, velocities, stamp_s=now))
        self.pubs[topics.STATE_OBSERVATION].publish(topics.float_array_msg(state, "state"))
        self.pubs[topics.SPARSE_REWARD].publish(Float64(data=result["sparse_reward"]))
        self.pubs[topics.SHAPED_REWARD].publish(Float64(data=result["dense_reward"]))
        self.pubs[topics.SUCCESS].publish(Bool(data=result["success"]))
        if rig_state is not None:
            self.pubs[topics.RIG_JOINT_STATES].publish(
                topics.joint_state_msg(rig.spec.joint_names, rig_state[0], rig_state[1], stamp_s=now))
        if arrived:
            self._publish_task_current()
        if images is not None:
            self._publish_images(*images, now)
        if self._ticks % self._diag_every == 0:
            self._publish_diagnostics(result)
        self._ticks += 1

    def _joint_state(self, q, qdot, fingers):
        names = list(self.arm.state_joint_names)
        positions, velocities = list(q), list(qdot)
        if self.arm.finger_joints:
            lo, hi = self.arm.finger_range
            # interbotix reports the gripper servo angle too; ~linear in finger travel here
            positions += [float(np.interp(fingers[0], [lo, hi], [-0.6, 0.6]))] + list(fingers)
            velocities += [0.0] * (1 + len(fingers))
        return names, positions, velocities

    def _render(self):
        """(scene, wrist, pair) of one instant. The pair is rendered directly at the policy's size
        (not downscaled) so it matches what the Gymnasium env showed in training pixel for pixel."""
        c = self.config
        scene = self.sim.render("scene", c.image_height, c.image_width)
        wrist = self.sim.render("wrist", c.image_height, c.image_width)
        if (c.pair_height, c.pair_width) == (c.image_height, c.image_width):
            pair = np.concatenate([scene, wrist], axis=1)
        else:
            pair = self.sim.render_pair(c.pair_height, c.pair_width)
        return scene, wrist, pair

    def _publish_images(self, scene: np.ndarray, wrist: np.ndarray, pair: np.ndarray, now: float):
        c = self.config
        self.pubs[topics.PAIRED_IMAGE].publish(topics.image_to_msg(pair, now, c.frame_id))
        for image, info, name, view in ((topics.SCENE_IMAGE, topics.SCENE_INFO, "scene", scene),
                                        (topics.WRIST_IMAGE, topics.WRIST_INFO, "wrist", wrist)):
            self.pubs[image].publish(topics.image_to_msg(view, now, f"{name}_camera"))
            self.pubs[info].publish(camera_info_msg(c.image_height, c.image_width, self._fovy[name], now,
                                                    f"{name}_camera"))

    def _publish_diagnostics(self, result: dict):
        values = {"task": self.task.task_id, "torque": self.torque_enabled, "success": result["success"],
                  "sim_time_s": round(self.sim.time, 3)}
        level = "ok" if self.torque_enabled else "warn"
        self.pubs[topics.DIAGNOSTICS].publish(diagnostic_array(self, [
            diagnostic_status(f"mujoco_twin: {self.config.env}", level, "running", values, hardware_id="sim")]))

    def shutdown_hook(self):
        self._stop.set()
        self._thread.join(timeout=5.0)


def main(args=None) -> int:
    return run_node(MujocoTwinNode, executor_threads=4, args=args)
