"""WidowX 250 (5 DoF + gripper) and Sawyer (7 DoF) built from primitives with their real kinematics.

WidowX 250: joint origins, limits and efforts from Trossen's interbotix_xsarm_descriptions
``wx250.urdf.xacro`` (waist 0.072 m above the base, shoulder +0.03865, elbow at (0.04975, 0, 0.25),
wrist_angle +0.25, wrist_rotate +0.065, ee_arm +0.043, fingers +0.023; every joint pi rad/s).
Sawyer: joint origins (URDF rpy), limits, velocity limits and efforts from Rethink's
``sawyer_description/urdf/sawyer_base.urdf.xacro``. Link masses follow the URDF inertials; the
geometry is capsules/boxes of about the real link size (collision only needs to be close).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.mujoco.mjcf import fmt, rpy_quat


@dataclass(frozen=True)
class ArmSpec:
    """What the servo loop, the envs and the ROS twin need to know about an arm."""

    name: str
    joint_names: tuple[str, ...]  # actuated arm joints, in command order
    lower: tuple[float, ...]  # rad
    upper: tuple[float, ...]
    velocity_limit: tuple[float, ...]  # rad/s
    effort_limit: tuple[float, ...]  # N m
    kv: tuple[float, ...]  # velocity-loop gain, N m s/rad
    kp: float  # position-hold gain of the servo loop, 1/s
    finger_joints: tuple[str, ...] = ()
    finger_range: tuple[float, float] = (0.0, 0.0)  # m, per finger from the centre
    state_joint_names: tuple[str, ...] = ()  # names on joint_states (arm + gripper as the driver publishes)

    @property
    def n(self) -> int:
        return len(self.joint_names)


PI = float(np.pi)
_EPS = 1e-5  # interbotix pi_offset: waist/wrist_rotate stop just short of +-pi

WIDOWX = ArmSpec(
    name="widowx250",
    joint_names=("waist", "shoulder", "elbow", "wrist_angle", "wrist_rotate"),
    lower=(-PI + _EPS, np.radians(-108), np.radians(-123), np.radians(-100), -PI + _EPS),
    upper=(PI - _EPS, np.radians(114), np.radians(92), np.radians(123), PI - _EPS),
    velocity_limit=(PI,) * 5,
    effort_limit=(10.0, 20.0, 15.0, 5.0, 1.0),
    kv=(8.0, 20.0, 12.0, 3.0, 0.5),
    kp=20.0,
    finger_joints=("left_finger", "right_finger"),
    finger_range=(0.015, 0.037),
    state_joint_names=("waist", "shoulder", "elbow", "wrist_angle", "wrist_rotate", "gripper",
                       "left_finger", "right_finger"),
)

SAWYER = ArmSpec(
    name="sawyer",
    joint_names=tuple(f"right_j{i}" for i in range(7)),
    lower=(-3.0503, -3.8095, -3.0426, -3.0439, -2.9761, -2.9761, -4.7124),
    upper=(3.0503, 2.2736, 3.0426, 3.0439, 2.9761, 2.9761, 4.7124),
    # URDF velocity limits, capped at pi rad/s like every arm here
    velocity_limit=(1.74, 1.328, 1.957, 1.957, PI, PI, PI),
    effort_limit=(80.0, 80.0, 40.0, 40.0, 9.0, 9.0, 9.0),
    kv=(60.0, 60.0, 30.0, 30.0, 6.0, 6.0, 3.0),
    kp=20.0,
    state_joint_names=tuple(f"right_j{i}" for i in range(7)),
)


def _joint(name, axis, spec: ArmSpec, damping: float, armature: float) -> str:
    i = spec.joint_names.index(name)
    return (f'<joint name="{name}" type="hinge" axis="{axis}" range="{spec.lower[i]:.6g} {spec.upper[i]:.6g}" '
            f'damping="{damping}" armature="{armature}" frictionloss="0.02" solreflimit="0.004 1"/>')


def widowx_xml(tool_xml: str, base_pos=(0.0, 0.0, 0.0)) -> str:
    """The WidowX body tree; `tool_xml` is placed in the gripper between the fingers (frame: x forward
    along the gripper, y across the fingers, origin at the finger pads)."""
    s = WIDOWX

    def j(name, axis):
        return _joint(name, axis, s, damping=0.1, armature=0.004)

    return f"""
<body name="wx_base" pos="{fmt(base_pos)}">
  <geom name="wx_base_geom" type="box" pos="0 0 0.035" size="0.055 0.065 0.035" material="robot"/>
  <body name="shoulder_link" pos="0 0 0.072">
    <inertial pos="0 0 0.0066" mass="0.481" diaginertia="0.00059 0.00056 0.00038"/>
    {j("waist", "0 0 1")}
    <geom type="cylinder" size="0.04 0.016" pos="0 0 0.02" material="robot"/>
    <body name="upper_arm_link" pos="0 0 0.03865">
      <inertial pos="0.0172 0 0.1913" mass="0.431" diaginertia="0.00359 0.00346 0.00046"/>
      {j("shoulder", "0 1 0")}
      <geom type="capsule" fromto="0 0 0 0 0 0.25" size="0.022" material="robot"/>
      <geom type="capsule" fromto="0 0 0.25 0.04975 0 0.25" size="0.02" material="robot"/>
      <body name="forearm_link" pos="0.04975 0 0.25">
        <inertial pos="0.1534 0 0" mass="0.298" diaginertia="0.00006 0.00218 0.00219"/>
        {j("elbow", "0 1 0")}
        <geom type="capsule" fromto="0 0 0 0.25 0 0" size="0.018" material="robot"/>
        <body name="wrist_link" pos="0.25 0 0">
          <inertial pos="0.0424 0 0.0106" mass="0.085" diaginertia="0.00003 0.00003 0.00003"/>
          {j("wrist_angle", "0 1 0")}
          <geom type="capsule" fromto="0 0 0 0.05 0 0" size="0.017" material="robot"/>
          <body name="gripper_link" pos="0.065 0 0">
            <inertial pos="0.0216 0 0.0114" mass="0.073" diaginertia="0.000025 0.000018 0.000017"/>
            {j("wrist_rotate", "1 0 0")}
            <geom type="box" pos="0.025 0 0.005" size="0.025 0.03 0.022" material="robot"/>
            <site name="ee_arm" pos="0.043 0 0"/>
            <camera name="wrist" pos="-0.01 0 0.10" xyaxes="0 -1 0 0.447 0 0.894" fovy="75"/>
            <body name="fingers" pos="0.066 0 0">
              <body name="left_finger_link">
                <joint name="left_finger" type="slide" axis="0 1 0" range="{s.finger_range[0]} {s.finger_range[1]}" damping="1"/>
                <geom type="box" pos="0.012 0.004 0" size="0.02 0.004 0.012" material="robot_light" contype="0" conaffinity="0"/>
              </body>
              <body name="right_finger_link">
                <joint name="right_finger" type="slide" axis="0 -1 0" range="{s.finger_range[0]} {s.finger_range[1]}" damping="1"/>
                <geom type="box" pos="0.012 -0.004 0" size="0.02 0.004 0.012" material="robot_light" contype="0" conaffinity="0"/>
              </body>
              {tool_xml}
            </body>
          </body>
        </body>
      </body>
    </body>
  </body>
</body>"""


def sawyer_xml(tool_xml: str, base_pos=(0.0, 0.0, 0.0)) -> str:
    """The Sawyer arm (right_j0..right_j6) from the URDF joint origins; `tool_xml` hangs off right_hand
    (z along the flange axis) and must hold a camera named "wrist". Links carry gravcomp: Sawyer's controller compensates gravity."""
    s = SAWYER
    # (child link, joint, origin xyz, origin rpy, mass, collision capsule fromto in the child frame, radius)
    chain = [
        ("right_l0", "right_j0", (0, 0, 0.08), (0, 0, 0), 5.32, (0, 0, 0, 0.081, 0, 0.237), 0.075),
        ("right_l1", "right_j1", (0.081, 0.05, 0.237), (-PI / 2, PI / 2, 0), 4.51, (0, 0, 0, 0, -0.14, 0.1425), 0.07),
        ("right_l2", "right_j2", (0, -0.14, 0.1425), (PI / 2, 0, 0), 1.75, (0, 0, 0, 0, -0.042, 0.26), 0.06),
        ("right_l3", "right_j3", (0, -0.042, 0.26), (-PI / 2, 0, 0), 2.51, (0, 0, 0, 0, -0.125, -0.1265), 0.055),
        ("right_l4", "right_j4", (0, -0.125, -0.1265), (PI / 2, 0, 0), 1.11, (0, 0, 0, 0, 0.031, 0.275), 0.045),
        ("right_l5", "right_j5", (0, 0.031, 0.275), (-PI / 2, 0, 0), 1.56, (0, 0, 0, 0, -0.11, 0.1053), 0.045),
        ("right_l6", "right_j6", (0, -0.11, 0.1053), (-PI / 2, -0.17453, PI), 0.33, (0, 0, -0.01, 0, 0, 0.02), 0.04),
    ]
    opening, closing = "", ""
    for link, joint, xyz, rpy, mass, fromto, radius in chain:
        mat = "robot" if link != "right_l6" else "robot_light"
        extra = ""
        if link == "right_l6":
            extra = f'<body name="right_hand" pos="0 0 0.0245" quat="{fmt(rpy_quat(0, 0, PI / 2))}">{tool_xml}</body>'
        opening += (f'<body name="{link}" pos="{fmt(xyz)}" quat="{fmt(rpy_quat(*rpy))}" gravcomp="1">'
                    f'<inertial pos="{fmt(np.asarray(fromto[3:]) / 2)}" mass="{mass}" diaginertia="0.02 0.02 0.01"/>'
                    f'{_joint(joint, "0 0 1", s, damping=2.0, armature=0.2)}'
                    f'<geom type="capsule" fromto="{fmt(fromto)}" size="{radius}" material="{mat}"/>{extra}')
        closing += "</body>"
    return f"""
<body name="sawyer_base" pos="{fmt(base_pos)}">
  <geom type="cylinder" size="0.09 0.08" pos="0 0 0.0" material="robot_dark"/>
  {opening}{closing}
</body>"""
