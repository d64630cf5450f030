"""Scene assembly without mujoco: the rig description, the common world (table, lights, materials,
scene camera) and the actuator blocks. Families build their MJCF from these."""

from __future__ import annotations

from dataclasses import dataclass

from sim.mujoco.mjcf import fmt, lookat_xyaxes
from sim.mujoco.robots import ArmSpec

MAX_IMAGE = (480, 640)  # largest offscreen image (h, w) a twin may ask for


@dataclass(frozen=True)
class RigSpec:
    """A motorised rig moving a mocap body (router, box block) on slide/hinge axes."""

    body: str
    joint_names: tuple[str, ...]
    kinds: tuple[str, ...]  # "slide" (m) or "hinge" (rad) per axis
    axes: tuple[tuple[float, float, float], ...]  # world axis per joint
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    speed: tuple[float, ...]  # m/s or rad/s while moving to a target



def scene_xml(name: str, bodies: str, actuators: str, scene_camera: tuple, timestep: float = 0.002) -> str:
    """Complete MJCF: lighting, table, materials, a fixed scene camera, `bodies` and `actuators`."""
    cam_pos, cam_target, fovy = scene_camera
    return f"""
<mujoco model="{name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep}" integrator="implicitfast"/>
  <visual>
    <global offwidth="{MAX_IMAGE[1]}" offheight="{MAX_IMAGE[0]}"/>
    <quality shadowsize="0" offsamples="0"/>  <!-- no MSAA: 64 px frames cost ~3 ms, not ~20 ms, in software EGL -->
    <headlight ambient="0.35 0.35 0.35" diffuse="0.4 0.4 0.4"/>
  </visual>
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.55 0.6 0.65" rgb2="0.2 0.22 0.25" width="32" height="32"/>
    <texture name="table_tex" type="2d" builtin="checker" rgb1="0.62 0.55 0.45" rgb2="0.58 0.51 0.42" width="64" height="64"/>
    <material name="table" texture="table_tex" texrepeat="8 8"/>
    <material name="robot" rgba="0.12 0.12 0.13 1"/>
    <material name="robot_light" rgba="0.45 0.45 0.47 1"/>
    <material name="robot_dark" rgba="0.2 0.2 0.2 1"/>
    <material name="device" rgba="0.88 0.88 0.86 1"/>
    <material name="socket" rgba="0.25 0.25 0.27 1"/>
    <material name="plug" rgba="0.75 0.85 0.95 1"/>
    <material name="cable" rgba="0.15 0.35 0.8 1"/>
  </asset>
  <worldbody>
    <light name="key" pos="0.3 -0.6 1.2" dir="-0.1 0.5 -1" diffuse="0.6 0.6 0.6" directional="true"/>
    <geom name="table" type="plane" size="1.5 1.5 0.05" material="table" conaffinity="3"/>
    <camera name="scene" pos="{fmt(cam_pos)}" xyaxes="{lookat_xyaxes(cam_pos, cam_target)}" fovy="{fovy}"/>
    {bodies}
  </worldbody>
  <actuator>
    {actuators}
  </actuator>
</mujoco>"""


def velocity_actuators(arm: ArmSpec) -> str:
    return "\n".join(f'<velocity name="{j}_vel" joint="{j}" kv="{kv}" forcerange="{-e} {e}"/>'
                     for j, kv, e in zip(arm.joint_names, arm.kv, arm.effort_limit, strict=True))


def finger_actuators(arm: ArmSpec) -> str:
    lo, hi = arm.finger_range
    return "\n".join(f'<position name="{j}_pos" joint="{j}" kp="200" ctrlrange="{lo} {hi}" forcerange="-5 5"/>'
                     for j in arm.finger_joints)
