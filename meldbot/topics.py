"""The topic contract: every topic and service name, its message type and QoS, and the conversions.

Every node in meldbot (drivers, twins, rig, policy server, trial runner, recorder) takes names,
types and QoS from here, so a simulated twin and the real hardware are indistinguishable on the wire.

Names are *relative*: a node started in namespace ``/arm`` publishes ``/arm/joint_states``. The
launch files put the arm, its cameras and its twin into the same namespace (``arm`` by default); the
reset rig, the policy server's control services and ``/diagnostics`` are absolute.

Units on the wire are SI (REP 103): rad, rad/s, m. Images are ``rgb8`` (H, W, 3) uint8.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import Enum

import numpy as np


class QosKind(str, Enum):
    """The few QoS profiles the system uses; `qos_profile` turns them into rclpy profiles."""

    SENSOR = "sensor"  # best effort, keep last 5: camera frames and fast state (drop, never queue)
    COMMAND = "command"  # reliable, keep last 1: only the newest command matters
    STATE = "state"  # reliable, keep last 10: joint states, rewards, success
    LATCHED = "latched"  # reliable, transient local, keep last 1: task selection, late joiners see it


@dataclass(frozen=True)
class Topic:
    """One topic of the contract."""

    name: str
    msg_type: str  # "pkg/msg/Type"
    qos: QosKind
    doc: str = ""

    @property
    def type_class(self):
        return import_type(self.msg_type)


@dataclass(frozen=True)
class Service:
    """One service of the contract."""

    name: str
    srv_type: str  # "pkg/srv/Type"
    doc: str = ""

    @property
    def type_class(self):
        return import_type(self.srv_type)


def import_type(type_name: str):
    """Import a ROS interface class from "pkg/msg/Type" or "pkg/srv/Type"."""
    pkg, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


# --- Arm (relative to the arm namespace, e.g. /arm) ------------------------------------------------
JOINT_STATES = Topic("joint_states", "sensor_msgs/msg/JointState", QosKind.STATE,
                     "arm joint positions (rad) and velocities (rad/s), published by driver or twin")
JOINT_VELOCITY_COMMANDS = Topic("velocity_controller/commands", "std_msgs/msg/Float64MultiArray",
                                QosKind.COMMAND, "joint velocities (rad/s) in the driver's joint order")
GRIPPER_COMMANDS = Topic("gripper_controller/commands", "std_msgs/msg/Float64MultiArray",
                         QosKind.COMMAND, "gripper command: [effort fraction in -1..1] (open < 0 < close)")
ARM_HOME = Service("home", "std_srvs/srv/Trigger", "move the arm to its home pose; returns when there")
ARM_ESTOP = Service("estop", "std_srvs/srv/Trigger", "zero velocities and disable torque")
ARM_ENABLE = Service("enable", "std_srvs/srv/SetBool", "enable (true) or disable (false) torque")
ARM_REBOOT = Service("reboot", "std_srvs/srv/Trigger", "reboot servos in hardware error, then re-enable")

# --- Cameras (relative to the arm namespace) -------------------------------------------------------
SCENE_IMAGE = Topic("scene_camera/image_raw", "sensor_msgs/msg/Image", QosKind.SENSOR, "fixed scene camera")
SCENE_INFO = Topic("scene_camera/camera_info", "sensor_msgs/msg/CameraInfo", QosKind.SENSOR)
WRIST_IMAGE = Topic("wrist_camera/image_raw", "sensor_msgs/msg/Image", QosKind.SENSOR, "wrist camera")
WRIST_INFO = Topic("wrist_camera/camera_info", "sensor_msgs/msg/CameraInfo", QosKind.SENSOR)
PAIRED_IMAGE = Topic("camera_pair/image_raw", "sensor_msgs/msg/Image", QosKind.SENSOR,
                     "scene and wrist side by side (H x 2W), both taken within the pairing tolerance; "
                     "stamp = the older capture time. The policy's image observation.")
STATE_OBSERVATION = Topic("observation/state", "std_msgs/msg/Float64MultiArray", QosKind.SENSOR,
                          "low-dimensional observation for state-based policies (twins)")

# --- Task signals (relative to the arm namespace) --------------------------------------------------
SPARSE_REWARD = Topic("reward/sparse", "std_msgs/msg/Float64", QosKind.STATE,
                      "1.0 while the task is achieved, else 0.0 (test-time reward)")
SHAPED_REWARD = Topic("reward/shaped", "std_msgs/msg/Float64", QosKind.STATE,
                      "dense shaped reward (meta-training only; twins publish it, hardware may not)")
SUCCESS = Topic("success", "std_msgs/msg/Bool", QosKind.STATE, "insertion/task success (debounced)")

# --- Task selection and reset rig (absolute) -------------------------------------------------------
TASK_REQUEST = Topic("/task/request", "std_msgs/msg/String", QosKind.LATCHED,
                     "task id the trial runner wants next; rig or twin moves there")
TASK_CURRENT = Topic("/task/current", "std_msgs/msg/String", QosKind.LATCHED,
                     "task id now in place (published once the rig/twin reached it)")
RIG_JOINT_STATES = Topic("/reset_rig/joint_states", "sensor_msgs/msg/JointState", QosKind.STATE,
                         "rig axes: rail (m), rotation (rad)")
RIG_COMMANDS = Topic("/reset_rig/commands", "std_msgs/msg/Float64MultiArray", QosKind.COMMAND,
                     "rig target pose [rail m, rotation rad]")
RIG_HOME = Service("/reset_rig/home", "std_srvs/srv/Trigger")
RIG_STOP = Service("/reset_rig/stop", "std_srvs/srv/Trigger")
RIG_GOTO_TASK = Service("/reset_rig/goto_task", "std_srvs/srv/Trigger",
                        "move to the task last published on /task/request; returns when there")
RIG_PROBE = Topic("/reset_rig/probe", "std_msgs/msg/Bool", QosKind.STATE,
                  "GRBL probe input (Pn:P) of the rig: a contact in the router port, for the success sensor")

# --- Policy server (absolute) ----------------------------------------------------------------------
POLICY_ENABLE = Service("/policy/enable", "std_srvs/srv/SetBool",
                        "true: start stepping (an episode begins); false: stop and command zero")
POLICY_RESET_BELIEF = Service("/policy/reset_belief", "std_srvs/srv/Trigger",
                              "a new trial begins: belief back to the model's initial state")

DIAGNOSTICS = Topic("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", QosKind.STATE)

ALL_TOPICS: tuple[Topic, ...] = tuple(v for v in dict(globals()).values() if isinstance(v, Topic))
ALL_SERVICES: tuple[Service, ...] = tuple(v for v in dict(globals()).values() if isinstance(v, Service))


def topic_by_name(name: str) -> Topic:
    """Look a topic up by its contract name (leading slash and namespace ignored for relative ones)."""
    for t in ALL_TOPICS:
        if t.name == name:
            return t
    for t in ALL_TOPICS:  # a relative topic given with its namespace, e.g. "/arm/joint_states"
        if not t.name.startswith("/") and name.endswith("/" + t.name):
            return t
    raise KeyError(f"'{name}' is not a topic of the meldbot contract (meldbot/topics.py)")


def qos_profile(kind: QosKind):
    """The rclpy QoSProfile for one of the contract's QoS kinds."""
    from rclpy.qos import (
        DurabilityPolicy,
        HistoryPolicy,
        QoSProfile,
        ReliabilityPolicy,
        qos_profile_sensor_data,
    )

    if kind is QosKind.SENSOR:
        return qos_profile_sensor_data
    if kind is QosKind.COMMAND:
        return QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
    if kind is QosKind.STATE:
        return QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
    if kind is QosKind.LATCHED:
        return QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
    raise ValueError(f"unknown QoS kind {kind!r}")


def create_publisher(node, topic: Topic):
    """A publisher on `topic` with the contract's type and QoS."""
    return node.create_publisher(topic.type_class, topic.name, qos_profile(topic.qos))


def create_subscription(node, topic: Topic, callback, raw: bool = False):
    """A subscription on `topic` with the contract's type and QoS."""
    return node.create_subscription(topic.type_class, topic.name, callback, qos_profile(topic.qos), raw=raw)


def create_service(node, service: Service, callback):
    return node.create_service(service.type_class, service.name, callback)


def create_client(node, service: Service):
    return node.create_client(service.type_class, service.name)


# --- Conversions -----------------------------------------------------------------------------------

_ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1}


def stamp_from_seconds(seconds: float):
    """builtin_interfaces/Time from float seconds."""
    from builtin_interfaces.msg import Time

    sec = int(seconds // 1)
    return Time(sec=sec, nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)


def stamp_to_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def image_to_msg(image: np.ndarray, stamp_s: float, frame_id: str = "", encoding: str = "rgb8"):
    """numpy (H, W, 3) or (H, W) uint8 -> sensor_msgs/Image."""
    from sensor_msgs.msg import Image

    image = np.asarray(image)
    channels = _ENCODINGS.get(encoding)
    if channels is None:
        raise ValueError(f"unsupported image encoding '{encoding}' (supported: {sorted(_ENCODINGS)})")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    expected_ndim = 2 if channels == 1 else 3
    if image.ndim != expected_ndim or (channels > 1 and image.shape[2] != channels):
        raise ValueError(f"image shape {image.shape} does not match encoding '{encoding}'")
    msg = Image()
    msg.header.stamp = stamp_from_seconds(stamp_s)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = msg.width * channels
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def msg_to_image(msg) -> np.ndarray:
    """sensor_msgs/Image -> numpy (H, W, C) uint8 (a view of the message buffer, read-only)."""
    channels = _ENCODINGS.get(msg.encoding)
    if channels is None:
        raise ValueError(f"unsupported image encoding '{msg.encoding}' (supported: {sorted(_ENCODINGS)})")
    row = msg.width * channels
    if msg.step < row or len(msg.data) < msg.step * msg.height:
        raise ValueError(f"image buffer too small: {len(msg.data)} bytes for {msg.height}x{msg.step}")
    flat = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, (bytes, memoryview)) else msg.data,
                         dtype=np.uint8)
    rows = flat[: msg.step * msg.height].reshape(msg.height, msg.step)[:, :row]
    return rows.reshape(msg.height, msg.width, channels) if channels > 1 else rows.reshape(msg.height, msg.width)


def joint_state_msg(names, positions, velocities=None, efforts=None, stamp_s: float = 0.0):
    """sensor_msgs/JointState from sequences (rad, rad/s)."""
    from sensor_msgs.msg import JointState

    msg = JointState()
    msg.header.stamp = stamp_from_seconds(stamp_s)
    msg.name = list(names)
    msg.position = [float(x) for x in positions]
    msg.velocity = [float(x) for x in velocities] if velocities is not None else []
    msg.effort = [float(x) for x in efforts] if efforts is not None else []
    return msg


def joint_state_arrays(msg, names=None) -> tuple[np.ndarray, np.ndarray]:
    """(positions, velocities) from a JointState, reordered to `names` if given."""
    pos = np.asarray(msg.position, dtype=np.float64)
    vel = np.asarray(msg.velocity, dtype=np.float64) if len(msg.velocity) else np.zeros_like(pos)
    if names is None:
        return pos, vel
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"joint_states lacks joints {missing} (has {list(msg.name)})")
    order = [index[n] for n in names]
    return pos[order], vel[order]


def float_array_msg(values, label: str = ""):
    """std_msgs/Float64MultiArray (one dimension, as ros2_control's forward controllers take)."""
    from std_msgs.msg import Float64MultiArray, MultiArrayDimension

    values = np.asarray(values, dtype=np.float64).ravel()
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=label, size=int(values.size), stride=int(values.size))]
    msg.data = values.tolist()
    return msg


def float_array(msg, expected_len: int | None = None, what: str = "command") -> np.ndarray:
    """numpy array from a Float64MultiArray, checking length and finiteness."""
    values = np.asarray(msg.data, dtype=np.float64)
    if expected_len is not None and values.size != expected_len:
        raise ValueError(f"{what} has {values.size} values, expected {expected_len}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} contains non-finite values: {values.tolist()}")
    return values
