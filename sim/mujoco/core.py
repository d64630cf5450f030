"""ArmSim: one compiled MuJoCo scene, its servo loop, the task rig, cameras and a damped-LS IK.

Physics runs at `timestep`; the servo loop runs every `substeps` physics steps (servo rate); a control
step holds one velocity command for as many servo ticks as fit in the control period. Cameras render
only when asked (once per control step at most), with one `mujoco.Renderer` per image size, reused.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless; must be set before mujoco is imported

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from sim.mujoco.mjcf import axis_quat, quat_mul  # noqa: E402
from sim.mujoco.robots import ArmSpec  # noqa: E402
from sim.mujoco.scene import MAX_IMAGE, RigSpec  # noqa: E402
from sim.mujoco.servo import JointVelocityServo  # noqa: E402


class Rig:
    def __init__(self, spec: RigSpec, model, data):
        self.spec = spec
        body = model.body(spec.body)
        self.mocap = int(model.body_mocapid[body.id])
        if self.mocap < 0:
            raise ValueError(f"rig body '{spec.body}' must be a mocap body")
        self.base_pos = np.array(model.body_pos[body.id])
        self.base_quat = np.array(model.body_quat[body.id])
        self.data = data
        self.position = np.zeros(len(spec.joint_names))
        self.target = np.zeros(len(spec.joint_names))
        self.velocity = np.zeros(len(spec.joint_names))

    def check(self, values) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        lo, hi = np.array(self.spec.lower), np.array(self.spec.upper)
        if values.shape != lo.shape or not np.all(np.isfinite(values)):
            raise ValueError(f"rig target must be {len(lo)} finite values {list(self.spec.joint_names)}, got {values}")
        if np.any(values < lo - 1e-9) or np.any(values > hi + 1e-9):
            raise ValueError(f"rig target {values.tolist()} outside limits {lo.tolist()}..{hi.tolist()}")
        return values

    def set(self, values, instant: bool = False) -> None:
        self.target = self.check(values)
        if instant:
            self.position = self.target.copy()
            self.apply()

    def at_target(self, tol: float = 1e-6) -> bool:
        return bool((np.abs(self.position - self.target) <= tol).all())

    def advance(self, dt: float) -> None:
        if self.at_target(0.0):
            self.velocity[:] = 0.0
            return
        step = np.clip(self.target - self.position, -np.array(self.spec.speed) * dt, np.array(self.spec.speed) * dt)
        self.velocity = step / dt
        if np.any(step != 0):
            self.position = self.position + step
            self.apply()

    def apply(self) -> None:
        pos, quat = self.base_pos.copy(), self.base_quat.copy()
        for value, kind, axis in zip(self.position, self.spec.kinds, self.spec.axes, strict=True):
            if kind == "slide":
                pos += value * np.asarray(axis)
            else:
                quat = quat_mul(axis_quat(axis, value), quat)
        self.data.mocap_pos[self.mocap] = pos
        self.data.mocap_quat[self.mocap] = quat


class ArmSim:
    """A compiled scene with an arm driven through `JointVelocityServo`, and optionally a rig."""

    def __init__(self, xml: str, arm: ArmSpec, servo_hz: float = 250.0, rig: RigSpec | None = None):
        try:
            self.model = mujoco.MjModel.from_xml_string(xml)
        except ValueError as exc:
            raise ValueError(f"MJCF for {arm.name} does not compile: {exc}") from exc
        self.data = mujoco.MjData(self.model)
        self.arm = arm
        m = self.model
        jids = [m.joint(j).id for j in arm.joint_names]
        self.qadr = np.array([m.jnt_qposadr[j] for j in jids])
        self.dadr = np.array([m.jnt_dofadr[j] for j in jids])
        self.act = np.array([m.actuator(f"{j}_vel").id for j in arm.joint_names])
        self.finger_act = np.array([m.actuator(f"{j}_pos").id for j in arm.finger_joints], dtype=int)
        self.finger_qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in arm.finger_joints], dtype=int)
        if servo_hz <= 0:
            raise ValueError(f"servo_hz must be > 0, got {servo_hz}")
        self.substeps = max(1, int(round(1.0 / (servo_hz * m.opt.timestep))))
        self.servo_dt = self.substeps * m.opt.timestep
        self.servo = JointVelocityServo(arm.lower, arm.upper, arm.velocity_limit, arm.kp, self.servo_dt)
        self.rig = Rig(rig, m, self.data) if rig is not None else None
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._ik_data = mujoco.MjData(m)
        self.time = 0.0
        self._nominal = {"light_diffuse": m.light_diffuse.copy(), "light_dir": m.light_dir.copy(),
                         "mat_rgba": m.mat_rgba.copy(), "cam_pos": m.cam_pos.copy(), "cam_quat": m.cam_quat.copy()}

    # --- state ------------------------------------------------------------------------------------
    @property
    def q(self) -> np.ndarray:
        return self.data.qpos[self.qadr].copy()

    @property
    def qdot(self) -> np.ndarray:
        return self.data.qvel[self.dadr].copy()

    @property
    def fingers(self) -> np.ndarray:
        return self.data.qpos[self.finger_qadr].copy()

    def site_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        sid = self.model.site(name).id
        return self.data.site_xpos[sid].copy(), self.data.site_xmat[sid].reshape(3, 3).copy()

    def reset(self, q, fingers: float | None = None) -> None:
        mujoco.mj_resetData(self.model, self.data)
        q = np.clip(np.asarray(q, dtype=float), self.arm.lower, self.arm.upper)
        self.data.qpos[self.qadr] = q
        grip = self.arm.finger_range[0] if fingers is None else fingers
        self.data.qpos[self.finger_qadr] = grip
        self.data.ctrl[self.finger_act] = grip
        self.servo.reset(q)
        if self.rig is not None:
            self.rig.apply()
        self.time = 0.0
        self.unstable = False
        self._blowups_seen = _blowup_count(self.data)
        mujoco.mj_forward(self.model, self.data)

    def set_fingers(self, value: float) -> None:
        lo, hi = self.arm.finger_range
        self.data.ctrl[self.finger_act] = float(np.clip(value, lo, hi))

    # --- stepping ---------------------------------------------------------------------------------
    def ticks_for(self, seconds: float) -> int:
        return max(1, int(round(seconds / self.servo_dt)))

    def run(self, velocity, ticks: int) -> None:
        """Hold joint velocity command `velocity` (rad/s; clipped to limits) for `ticks` servo ticks."""
        self.servo.set_command(velocity)
        m, d = self.model, self.data
        vmax = self.servo.vmax
        for _ in range(ticks):
            d.ctrl[self.act] = self.servo.tick(d.qpos[self.qadr])
            if self.rig is not None:
                self.rig.advance(self.servo_dt)
            mujoco.mj_step(m, d, nstep=self.substeps)
            # the servo's velocity limit (Dynamixel "velocity limit" register / intera's joint limits):
            # a geared servo cannot be back-driven past it by impacts or coupling from other joints
            vel = d.qvel[self.dadr]
            d.qvel[self.dadr] = np.minimum(np.maximum(vel, -vmax), vmax)
        self.time += ticks * self.servo_dt
        # MuJoCo resets the state when positions, velocities or accelerations blow up: the step's data is then
        # a teleport, not physics. Report it so episodes can be cut instead of learned from.
        blowups = _blowup_count(d)
        self.unstable = blowups > getattr(self, "_blowups_seen", 0)
        self._blowups_seen = blowups
        mujoco.mj_forward(m, d)  # sites, contacts and cameras at the final state

    # --- cameras ----------------------------------------------------------------------------------
    @staticmethod
    def check_image_size(height: int, width: int) -> None:
        if not (0 < height <= MAX_IMAGE[0] and 0 < width <= MAX_IMAGE[1]):
            raise ValueError(f"image size {height}x{width} outside 1..{MAX_IMAGE[0]}x1..{MAX_IMAGE[1]}")

    def render(self, camera: str, height: int, width: int) -> np.ndarray:
        """One camera image (uint8 HxWx3). Renderers are made lazily, in the thread that renders."""
        self.check_image_size(height, width)
        renderer = self._renderers.get((height, width))
        if renderer is None:
            renderer = self._renderers[(height, width)] = mujoco.Renderer(self.model, height, width)
        renderer.update_scene(self.data, camera=camera)
        return renderer.render().copy()

    def render_pair(self, height: int, width: int) -> np.ndarray:
        """scene | wrist side by side: (height, 2*width, 3) uint8."""
        return np.concatenate([self.render("scene", height, width), self.render("wrist", height, width)], axis=1)

    def randomize_appearance(self, rng: np.random.Generator | None) -> None:
        """Seeded domain randomisation of lighting, material colours and camera pose (None: nominal).

        Materials are perturbed as a whole, so every port/box shares one colour and stays identical.
        """
        m, nominal = self.model, self._nominal
        m.light_diffuse[:] = nominal["light_diffuse"]
        m.light_dir[:] = nominal["light_dir"]
        m.mat_rgba[:] = nominal["mat_rgba"]
        m.cam_pos[:] = nominal["cam_pos"]
        m.cam_quat[:] = nominal["cam_quat"]
        if rng is None:
            return
        m.light_diffuse[:] = np.clip(nominal["light_diffuse"] * rng.uniform(0.6, 1.4), 0, 1)
        m.light_dir[:] = nominal["light_dir"] + rng.normal(0, 0.15, nominal["light_dir"].shape)
        m.mat_rgba[:, :3] = np.clip(nominal["mat_rgba"][:, :3] + rng.normal(0, 0.06, (m.nmat, 3)), 0, 1)
        scene = m.camera("scene").id
        m.cam_pos[scene] = nominal["cam_pos"][scene] + rng.normal(0, 0.01, 3)
        m.cam_quat[scene] = quat_mul(axis_quat(rng.normal(size=3), rng.normal(0, np.radians(1.5))),
                                     nominal["cam_quat"][scene])

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    # --- inverse kinematics (privileged: experts, start poses) -------------------------------------
    def solve_ik(self, site: str, target_pos, target_mat=None, axis_only: bool = False, q0=None,
                 iterations: int = 100, rot_weight: float = 0.1, tol: float = 1e-5) -> tuple[np.ndarray, float]:
        """Damped least-squares IK for `site` (position, plus full orientation or only its z axis)."""
        m, d = self.model, self._ik_data
        d.qpos[:] = self.data.qpos
        d.mocap_pos[:], d.mocap_quat[:] = self.data.mocap_pos, self.data.mocap_quat
        sid = m.site(site).id
        q = np.array(self.q if q0 is None else q0, dtype=float)
        lo, hi = np.array(self.arm.lower), np.array(self.arm.upper)
        jacp, jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        err_norm = np.inf
        for _ in range(iterations):
            d.qpos[self.qadr] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            pos, mat = d.site_xpos[sid], d.site_xmat[sid].reshape(3, 3)
            errors = [np.asarray(target_pos) - pos]
            mujoco.mj_jacSite(m, d, jacp, jacr, sid)
            jac = [jacp[:, self.dadr]]
            if target_mat is not None:
                target_mat = np.asarray(target_mat)
                if axis_only:
                    e_rot = np.cross(mat[:, 2], target_mat[:, 2])
                else:
                    e_rot = 0.5 * sum(np.cross(mat[:, i], target_mat[:, i]) for i in range(3))
                errors.append(rot_weight * e_rot)
                jac.append(rot_weight * jacr[:, self.dadr])
            e, jmat = np.concatenate(errors), np.vstack(jac)
            err_norm = float(np.linalg.norm(e))
            if err_norm < tol:
                break
            dq = jmat.T @ np.linalg.solve(jmat @ jmat.T + 1e-4 * np.eye(len(e)), e)
            norm = np.linalg.norm(dq)
            if norm > 0.3:
                dq *= 0.3 / norm
            q = np.clip(q + dq, lo, hi)
        return q, err_norm


def _blowup_count(data) -> int:
    """How often MuJoCo found NaN/huge qpos, qvel or qacc (and reset the state) since the last reset."""
    w = mujoco.mjtWarning
    return sum(data.warning[k].number for k in (w.mjWARN_BADQPOS, w.mjWARN_BADQVEL, w.mjWARN_BADQACC))
