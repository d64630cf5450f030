"""WidowX 250 Ethernet-cable insertion: a router with RJ45 ports on a two-axis rig (rail, rotation).

A task is a rig pose (rail within +-1 cm, rotation within +-8 deg: 2 cm and 16 deg of travel) and the
index of the one correct port. The plug sits in a holder clamped between the (closed) fingers, its
cable is a chain of capsules that drags on the table. The ports face up and all look the same; the
plug enters any of them when aligned within the clearance, but the latch clicks (success) only when
it is seated deep enough, square and the right way round, in the correct port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.mujoco.mjcf import fmt, slab_with_holes
from sim.mujoco.robots import WIDOWX, widowx_xml
from sim.mujoco.scene import RigSpec, finger_actuators, scene_xml, velocity_actuators
from sim.tasks import Task, TaskSet, balanced_labels

if TYPE_CHECKING:
    from sim.mujoco.core import ArmSim

# RJ45 (TIA-568 plug ~11.7 mm wide, 8 mm thick incl. body), jack clearance 0.5 mm a side
PLUG_W, PLUG_T, PLUG_L = 0.0117, 0.0080, 0.021
CLEARANCE = 0.0005
PORT_W, PORT_T = PLUG_W + 2 * CLEARANCE, PLUG_T + 2 * CLEARANCE
PORT_DEPTH = 0.018  # cavity depth below the router's top face
LATCH_DEPTH = 0.013  # plug tip depth at which the latch tab clicks behind the jack's shoulder
SEAT_DEPTH = 0.016  # where a seated plug's tip ends up (goal of the shaped reward)
N_PORTS, PORT_PITCH = 4, 0.018
AT_PORT_HEIGHT = 0.02  # tip at most this far above an opening, and over it, is "at" that port (diagnostic)
ALIGN_TOL = np.radians(6.0)  # yaw / tilt beyond which the latch tab cannot engage
RAIL_RANGE, ROT_RANGE = 0.01, np.radians(8.0)  # task sampling: +-1 cm, +-8 deg
# shaped reward (meta-training only), see insertion_reward
REWARD_DIST_WEIGHT, REWARD_ROT_WEIGHT = 10.0, 1.0  # per metre (lateral + axial), per radian
REWARD_CENTRE_BONUS, REWARD_CENTRE_SCALE = 0.5, 0.002  # up to +0.5, felt within a few mm of the port axis
# shaped_port="nearest": insertion is paid at whichever port the plug is over, the correct one's latch on top
# ("untried": the same, less the ports an earlier episode of the trial seated in without the click)
REWARD_LATCH_BONUS = 2.0
SHAPED_PORTS = ("correct", "nearest", "untried")

ROUTER_BASE = (0.30, 0.0, 0.0)  # rig carriage on the table, in front of the arm
ROUTER_SIZE = (0.07, 0.11, 0.05)  # x, y, height
CABLE_LINKS, CABLE_LINK_LEN = 8, 0.05

RIG = RigSpec(body="rig", joint_names=("rail", "rotation"), kinds=("slide", "hinge"),
              axes=((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)), lower=(-0.015, np.radians(-10.0)),
              upper=(0.015, np.radians(10.0)), speed=(0.02, np.radians(20.0)))


def port_offsets() -> np.ndarray:
    return (np.arange(N_PORTS) - (N_PORTS - 1) / 2) * PORT_PITCH


def _plug_xml() -> str:
    """Holder + RJ45 plug + cable, in the fingers frame (x: out of the gripper, y: across the fingers)."""
    cable, closing = "", ""
    for i in range(CABLE_LINKS):
        pos = "0.0 0 -0.011" if i == 0 else f"0 0 {-CABLE_LINK_LEN}"
        cable += (f'<body name="cable{i}" pos="{pos}">'
                  f'<joint name="cable{i}_a" type="hinge" axis="0 1 0" stiffness="0.004" damping="0.004" armature="0.0002" range="-1.4 1.4"/>'
                  f'<joint name="cable{i}_b" type="hinge" axis="1 0 0" stiffness="0.004" damping="0.004" armature="0.0002" range="-1.4 1.4"/>'
                  f'<geom type="capsule" fromto="0 0 0 0 0 {-CABLE_LINK_LEN}" size="0.003" mass="0.006" '
                  f'material="cable" contype="2" conaffinity="0" friction="0.8"/>')
        closing += "</body>"
    tip_x = 0.024 + PLUG_L
    return f"""
<geom name="holder" type="box" pos="0.012 0 0" size="0.012 0.015 0.010" material="robot_light" mass="0.01"/>
<geom name="plug" type="box" pos="{0.024 + PLUG_L / 2} 0 0" size="{PLUG_L / 2} {PLUG_T / 2} {PLUG_W / 2}" material="plug" mass="0.005"/>
<geom name="latch_tab" type="box" pos="{0.024 + PLUG_L * 0.6} {PLUG_T / 2 + 0.0006} 0" size="{PLUG_L * 0.3} 0.0006 0.003"
      material="plug" contype="0" conaffinity="0" mass="0"/>
<site name="plug_tip" pos="{tip_x} 0 0" xyaxes="0 0 1 0 -1 0" size="0.002"/>
{cable}{closing}"""


def _router_xml() -> str:
    sx, sy, h = ROUTER_SIZE
    slab = slab_with_holes("router_", sx, sy, h, PORT_DEPTH, port_offsets(), PORT_W, PORT_T, "device")
    body_h = h - PORT_DEPTH
    ports = "\n".join(f'<site name="port{k}" pos="0 {y:.6g} {h}" xyaxes="0 1 0 1 0 0" size="0.002"/>'
                      f'<geom type="box" pos="0 {y:.6g} {body_h + 0.0005}" size="{PORT_T / 2} {PORT_W / 2} 0.0005" '
                      f'material="socket" contype="0" conaffinity="0"/>'
                      for k, y in enumerate(port_offsets()))
    return f"""
<geom name="rig_rail" type="box" pos="{ROUTER_BASE[0]} 0 0.002" size="0.05 0.09 0.002" material="robot_dark" contype="0" conaffinity="0"/>
<body name="rig" mocap="true" pos="{fmt(ROUTER_BASE)}">
  <geom name="router_body" type="box" pos="0 0 {body_h / 2}" size="{sx / 2} {sy / 2} {body_h / 2}" material="device"/>
  {"".join(slab)}
  {ports}
</body>"""


def build_xml() -> str:
    bodies = widowx_xml(_plug_xml()) + _router_xml()
    actuators = velocity_actuators(WIDOWX) + "\n" + finger_actuators(WIDOWX)
    return scene_xml("widowx_cable", bodies, actuators, ((0.58, -0.30, 0.36), (0.27, 0.0, 0.07), 45))


def make_task_set(seed: int = 0, n_train: int = 20, n_test: int = 10) -> TaskSet:
    """Seeded tasks: rig pose (rail m, rotation rad) and the correct port; descriptor [rail, rot, port].

    Poses are uniform over the rig's range; each split holds every port equally often (to within one),
    so neither split rewards a policy that always goes to the same port.
    """
    if n_train < 1 or n_test < 0:
        raise ValueError(f"need n_train >= 1 and n_test >= 0, got {n_train}, {n_test}")
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    rails, rots = rng.uniform(-RAIL_RANGE, RAIL_RANGE, n), rng.uniform(-ROT_RANGE, ROT_RANGE, n)
    ports = np.concatenate([balanced_labels(rng, n_train, N_PORTS), balanced_labels(rng, n_test, N_PORTS)])
    tasks = []
    for i, (rail, rot, port) in enumerate(zip(rails, rots, ports.tolist(), strict=True)):
        split, idx = ("train", i) if i < n_train else ("test", i - n_train)
        tasks.append(Task("widowx_cable", f"{split}-{idx:02d}", np.array([rail, rot, port]),
                          {"rail": float(rail), "rotation": float(rot), "port": int(port)}))
    return TaskSet("widowx_cable", seed, tuple(tasks[:n_train]), tuple(tasks[n_train:]))


def insertion_reward(local_tip: np.ndarray, angle: float) -> float:
    """Shaped reward from the plug tip in the correct port's frame (z into the jack) and the angle (rad)
    between the plug's and the port's frames.

    Lateral (distance to the port axis) and axial (depth to the seat) errors count separately: with
    one Euclidean distance to the seat 16 mm down the jack, centring over the opening changes the
    reward by ~0.03 mm per mm, nothing a learner can feel, while the plug enters only when centred
    within 1 mm. The bounded bonus rises steeply over the last few mm of centring for the same
    reason; the angle weight makes the router's +-8 deg yaw (the latch allows 6) worth matching."""
    lateral = float(np.hypot(local_tip[0], local_tip[1]))
    axial = abs(SEAT_DEPTH - float(local_tip[2]))
    centre = REWARD_CENTRE_BONUS * (1.0 - np.tanh(lateral / REWARD_CENTRE_SCALE))
    return float(centre - REWARD_DIST_WEIGHT * (lateral + axial) - REWARD_ROT_WEIGHT * angle)


def rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (rad) of the rotation between two rotation matrices."""
    return float(np.arccos(np.clip((np.trace(a.T @ b) - 1.0) / 2.0, -1.0, 1.0)))


class CableTask:
    """The family's per-env logic: scene, task application, rewards/latch, observation, expert."""

    name = "widowx_cable"
    arm = WIDOWX
    rig = RIG
    tool_site = "plug_tip"
    control_hz = 3.3
    state_dim = 17

    def __init__(self, shaped_port: str = "correct"):
        """shaped_port: where the shaped (meta-training) reward measures the insertion: "correct" (the task's
        port, as in MELD) or "nearest" (the port nearest the plug's axis, plus REWARD_LATCH_BONUS while the
        correct port is latched), so pushing into any port pays and only the latch tells the ports apart, or
        "untried" (as "nearest" among the ports no earlier episode of the trial seated in without the click:
        a port that failed stops paying in the trial's later episodes, which pays a search across them)."""
        if shaped_port not in SHAPED_PORTS:
            raise ValueError(f"widowx_cable shaped_port must be one of {SHAPED_PORTS}, got {shaped_port!r}")
        self.shaped_port = shaped_port
        self.latched_port = -1
        self.ruled_out: set[int] = set()  # seated without the click in an earlier episode of this trial
        self._seated_wrong: set[int] = set()  # ... in this episode
        self._ready = None

    build_xml = staticmethod(build_xml)
    make_task_set = staticmethod(make_task_set)

    def rig_pose(self, task: Task) -> np.ndarray:
        return np.array([task.params["rail"], task.params["rotation"]])

    def ready_pose(self, sim: ArmSim) -> np.ndarray:
        """Plug pointing down 6 cm above the router's centre (computed once by IK)."""
        if self._ready is None:
            target = np.array([ROUTER_BASE[0], 0.0, ROUTER_SIZE[2] + 0.06])
            down = np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1]], dtype=float)  # port frame at zero rig pose
            q0 = np.array([0.0, 0.3, 0.3, 1.0, 0.0])
            self._ready, _ = sim.solve_ik(self.tool_site, target, down, q0=q0, iterations=300)
        return self._ready

    def start_pose(self, sim: ArmSim, rng: np.random.Generator) -> np.ndarray:
        return self.ready_pose(sim) + rng.uniform(-0.05, 0.05, self.arm.n)

    def reset_episode(self, new_trial: bool = True) -> None:
        """Called at every episode start; `new_trial=False` for a later episode of the same trial (the ports
        that failed so far stay ruled out for shaped_port="untried")."""
        self.ruled_out = set() if new_trial else self.ruled_out | self._seated_wrong
        self._seated_wrong = set()
        self.latched_port = -1

    def state(self, sim: ArmSim) -> np.ndarray:
        pos, mat = sim.site_pose(self.tool_site)
        rig = sim.rig.position if sim.rig is not None else np.zeros(2)
        return np.concatenate([sim.q, sim.qdot, pos, mat[:2, 0], rig]).astype(np.float32)

    def _port_frames(self, sim: ArmSim):
        return [sim.site_pose(f"port{k}") for k in range(N_PORTS)]

    def evaluate(self, sim: ArmSim, task: Task) -> dict:
        tip, tip_mat = sim.site_pose(self.tool_site)
        frames = self._port_frames(sim)
        for k, (pos, mat) in enumerate(frames):
            local = mat.T @ (tip - pos)
            square = tip_mat[:, 0] @ mat[:, 0] >= np.cos(ALIGN_TOL) and tip_mat[:, 2] @ mat[:, 2] >= np.cos(ALIGN_TOL)
            centred = abs(local[0]) <= CLEARANCE + 5e-4 and abs(local[1]) <= CLEARANCE + 5e-4
            if local[2] >= LATCH_DEPTH and square and centred:
                self.latched_port = k
            elif self.latched_port == k and local[2] < LATCH_DEPTH - 0.002:
                self.latched_port = -1  # pulled out
        # which port the plug is at (diagnostic: did the policy pick the right port, inserted or not)
        local_tips = [mat.T @ (tip - pos) for pos, mat in frames]
        lateral = [float(np.hypot(v[0], v[1])) for v in local_tips]
        nearest = int(np.argmin(lateral))
        near = local_tips[nearest]
        at_port = nearest if lateral[nearest] <= PORT_PITCH / 2 and -near[2] <= AT_PORT_HEIGHT else -1
        goal_pos, goal_mat = frames[task.params["port"]]
        goal = goal_pos + goal_mat[:, 2] * SEAT_DEPTH
        d_trans = float(np.linalg.norm(tip - goal))
        d_rot = rotation_angle(tip_mat, goal_mat)
        success = self.latched_port == task.params["port"]
        if self.latched_port >= 0 and not success:
            self._seated_wrong.add(self.latched_port)
        if self.shaped_port == "correct":
            dense = insertion_reward(local_tips[task.params["port"]], d_rot)
        else:  # the ports share the router's frame: the same angle
            paying = [k for k in range(N_PORTS) if self.shaped_port == "nearest" or k not in self.ruled_out]
            paid = min(paying, key=lateral.__getitem__)
            dense = insertion_reward(local_tips[paid], d_rot) + (REWARD_LATCH_BONUS if success else 0.0)
        return {"dense_reward": dense, "sparse_reward": 1.0 if success else 0.0,
                "success": bool(success), "latched_port": int(self.latched_port),
                "goal_distance": d_trans, "goal_angle": d_rot,
                "port_at_tip": at_port, "at_correct_port": at_port == task.params["port"]}

    def tip_distance_to_port(self, sim: ArmSim, port: int) -> float:
        """Distance (m) from the plug's tip to port `port`'s opening."""
        return float(np.linalg.norm(sim.site_pose(self.tool_site)[0] - sim.site_pose(f"port{port}")[0]))

    def tip_over_port(self, sim: ArmSim, port: int, radius: float) -> bool:
        """Whether the plug's tip is within `radius` (m) of port `port`'s axis and at most AT_PORT_HEIGHT
        above its opening (or in it)."""
        pos, mat = sim.site_pose(f"port{port}")
        local = mat.T @ (sim.site_pose(self.tool_site)[0] - pos)
        return bool(np.hypot(local[0], local[1]) <= radius and -local[2] <= AT_PORT_HEIGHT)

    def expert_velocity(self, sim: ArmSim, task: Task, period: float) -> np.ndarray:
        """Privileged scripted expert: hover over the correct port, square up, then push in."""
        tip, tip_mat = sim.site_pose(self.tool_site)
        pos, mat = self._port_frames(sim)[task.params["port"]]
        local = mat.T @ (tip - pos)
        lateral = np.abs(local[:2]).max()
        square = tip_mat[:, 0] @ mat[:, 0] >= np.cos(np.radians(1.5))
        if lateral < 6e-4 and square:
            depth = min(local[2] + 0.012, SEAT_DEPTH)  # descend at most 12 mm per control step
        elif local[2] > -0.003:
            depth = local[2] - 0.012  # misaligned at/in the opening: back out first
        else:
            depth = -0.012  # hover above the port
        target = pos + mat @ np.array([0.0, 0.0, depth])
        q_target, _ = sim.solve_ik(self.tool_site, target, mat, q0=sim.q)
        return (q_target - sim.q) / period


def check_clone_radius(value, name: str) -> None:
    """Refuse, naming `name`, a teacher's clone radius that is not a distance (m) in [0, PORT_PITCH / 2)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < PORT_PITCH / 2:
        raise ValueError(f"{name} is a distance (m) from a port's axis in [0, {PORT_PITCH / 2:g}) "
                         f"(half the port pitch), got {value!r}")


class PortSearch:
    """Scripted port-blind search, a `belief.meld.trials.ScriptedController` for the cable twin.

    It knows the rig's geometry (where the ports are: on the robot, the rig's pose and its calibration)
    but not which port is correct. A port the plug seats in without the latch's click is ruled out for
    the rest of the trial (whoever moved the plug there); once a port latches, every later step of the
    trial goes straight to it. With `order="random"` each trial tries the ports in a random order with
    the privileged expert's motion, and also rules out a port it takes `timeout` steps to seat in:
    exploration data that shows what a trial's first episode can do within its horizon (about 7 control
    steps per wrong port at the reduced run's 0.1 action scale), never a policy. With `order="nearest"`
    it heads for the port nearest the plug's tip among those not ruled out, recomputed at every step, so
    its action is a function of what is seen and what the trial has ruled out: a teacher that labels
    the states a learner visits (DAgger, `run_trial` with a policy and this controller; no timeout then,
    since the learner, not the teacher, decides how long it stays). With `clone_radius` r > 0 (m) a
    teacher leaves the last centimetres to the reward: `clone_this_step` is False while the plug's tip is
    within r of the axis of the port it is heading for and at most AT_PORT_HEIGHT above its opening
    (centring and the push in, whose small corrections a cloning loss counts as small), True elsewhere,
    including backing out of a port it has ruled out. With `order="per_episode"` it tries one port per
    episode, as the learned agents do: the port nearest the plug's tip among those not ruled out by an
    earlier episode, recomputed at every step (a port seated in without the click is ruled out from the
    next episode on, so it stays in it to the episode's end), so its episode 2 succeeds where episode 1
    could not: a teacher of the cross-episode rule (after a failure another port, after a success the
    same one) rather than of a search that finishes within episode 1. With `order="true_port"` it is no
    search: it heads for the task's own port from every state (privileged, as the shaped reward is), the
    teacher of an actor that is handed the port it must reach (`AgentConfig.ac_true_port`), whose per-port
    heads then learn the way to ports their own trials never reached.
    """

    ORDERS = ("random", "nearest", "per_episode", "true_port")

    def __init__(self, action_scale: float = 1.0, timeout: int = 30, order: str = "random",
                 clone_radius: float = 0.0):
        if not 0.0 < action_scale <= 1.0:
            raise ValueError(f"PortSearch action_scale must be in (0, 1], got {action_scale}")
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
            raise ValueError(f"PortSearch timeout must be >= 1 control step, got {timeout}")
        if order not in self.ORDERS:
            raise ValueError(f"PortSearch order must be one of {self.ORDERS}, got {order!r}")
        check_clone_radius(clone_radius, "PortSearch clone_radius")
        self.action_scale, self.timeout, self.order_kind = float(action_scale), int(timeout), order
        self.clone_radius, self.clone_this_step = float(clone_radius), True
        self.order: list[int] = list(range(N_PORTS))
        self.ruled_out: set[int] = set()
        self.since, self.found, self.target = 0, -1, self.order[0]
        self.ruled_out_now: set[int] = set()  # order "per_episode": ruled out from the next episode on

    def start_trial(self, rng: np.random.Generator) -> None:
        self.order = [int(k) for k in rng.permutation(N_PORTS)]
        self.ruled_out, self.ruled_out_now, self.found, self.target = set(), set(), -1, self.order[0]

    def start_episode(self) -> None:
        self.since = 0
        self.ruled_out |= self.ruled_out_now
        self.ruled_out_now = set()

    def _choose(self, env) -> int:
        if self.order_kind == "true_port":
            return int(env.unwrapped.task.params["port"])
        if self.found >= 0:
            return self.found
        if len(self.ruled_out) == N_PORTS:  # every port ruled out (a timed-out correct one): start over
            self.ruled_out = set()
        left = [k for k in self.order if k not in self.ruled_out]
        if self.order_kind == "random":
            return left[0]
        u = env.unwrapped
        return min(left, key=lambda k: u.family.tip_distance_to_port(u.sim, k))

    def act(self, env, info: dict) -> np.ndarray:
        latched = info.get("latched_port", -1)
        if info.get("success"):
            self.found = int(latched)
        elif self.found < 0 and latched >= 0:  # seated without a click: not this one
            (self.ruled_out_now if self.order_kind == "per_episode" else self.ruled_out).add(int(latched))
        elif self.found < 0 and self.order_kind == "random" and self.since >= self.timeout:
            self.ruled_out.add(self.target)  # stuck
        target = self._choose(env)
        self.since = 0 if target != self.target else self.since
        self.target = target
        self.since += 1
        u = env.unwrapped
        self.clone_this_step = not (self.clone_radius and u.family.tip_over_port(u.sim, target, self.clone_radius))
        probe = Task(u.task.family, u.task.task_id, u.task.descriptor, {**u.task.params, "port": self.target})
        velocity = u.family.expert_velocity(u.sim, probe, u.period)
        return np.clip(velocity / u.vmax / self.action_scale, -1.0, 1.0).astype(np.float32)
