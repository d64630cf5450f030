"""Gymnasium environments for PERIL's 2D families (Reach2D, Stick2D, Peg2D, Key2D and the mixed set).

Action: end-effector velocity [vx, vy, w] in [-1, 1]^3, scaled to `max_linear_speed` / `max_angular_speed`
and turned into joint velocities by damped least squares on the arm Jacobian once per control step;
the joint motors then hold those velocities through `substeps` physics steps (contacts may stall them).
Observation (state): [x / pos_scale, y / pos_scale, cos(angle), sin(angle)] of the tool tip relative to
the base; the task (goal) is never in it. `image_obs=True`: a 64x64x3 uint8 render (no goal marker).
Rewards: dense = -|goal - tip| (Key2D: - 0.5 |turn - target|), sparse = 1 on success; `reward` is the
dense one unless `reward_mode="sparse"`. Episodes never terminate early; `truncated` at 60 steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pymunk

from sim.pymunk2d import families as fam
from sim.pymunk2d.kinematics import dls_joint_velocities, inverse
from sim.pymunk2d.render import ARM_COLOR, PLANAR_VIEW, TOOL_COLOR, draw_scene
from sim.pymunk2d.robot import PlanarArm
from sim.pymunk2d.task_sets import make_task_set
from sim.tasks import Task, TaskSet, check_action

REWARD_MODES = ("dense", "sparse")


@dataclass(frozen=True)
class Planar2DConfig:
    control_dt: float = 0.1  # s per env step (10 Hz, the ROS twin's control rate)
    substeps: int = 10  # physics steps per control step
    max_linear_speed: float = 0.25  # m/s at |action| = 1
    max_angular_speed: float = 1.0  # rad/s at |action| = 1
    episode_steps: int = 60  # PERIL
    start_noise_xy: float = 0.015  # m, uniform +- around the family's start pose
    start_noise_angle: float = 0.05  # rad
    pos_scale: float = 1.0  # m: observation position normalisation (the arm's reach is ~1 m)
    image_size: int = 64
    render_size: int = 256  # env.render() (viewer) resolution
    solver_iterations: int = 20
    collision_bias: float = 0.7**60  # fraction of overlap left after 1 s: resolve penetration fast
    collision_slop: float = 0.0003  # m; pymunk's default (0.1) assumes pixels and would let pegs overlap walls


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class Planar2DEnv(gym.Env):
    """One PERIL family (or `family="multi2d"`: whichever family the current task belongs to)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, family: str = "peg2d", render_mode: str | None = None, image_obs: bool = False,
                 reward_mode: str = "dense", task_seed: int = 0, config: Planar2DConfig | None = None):
        if family != "multi2d":
            fam.family_index(family)  # validates
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {REWARD_MODES}, not {reward_mode!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', not {render_mode!r}")
        self.family = family
        self.render_mode = render_mode
        self.image_obs = bool(image_obs)
        self.reward_mode = reward_mode
        self.config = cfg = config or Planar2DConfig()
        self.task_set: TaskSet = make_task_set(family, seed=task_seed)
        self.episode_steps = cfg.episode_steps
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
        if self.image_obs:
            self.observation_space = gym.spaces.Box(0, 255, shape=(cfg.image_size, cfg.image_size, 3), dtype=np.uint8)
        else:
            # the arm reaches < 1 m: normalised positions stay inside +-1.2 (with the default pos_scale)
            bound = 1.2 / cfg.pos_scale
            self.observation_space = gym.spaces.Box(np.array([-bound, -bound, -1, -1], np.float32),
                                                    np.array([bound, bound, 1, 1], np.float32), dtype=np.float32)
        self._scale = (cfg.max_linear_speed, cfg.max_linear_speed, cfg.max_angular_speed)
        self._substep_dt = cfg.control_dt / cfg.substeps
        self.task: Task | None = None
        self.arm: PlanarArm | None = None
        self.fixture: fam.Fixture | None = None
        self.space: pymunk.Space | None = None
        self.steps = 0
        self.name = f"meldbot/{family}"

    # --- episode ---------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        task = (options or {}).get("task")
        if task is None:
            task = self.task_set.train[int(self.np_random.integers(len(self.task_set.train)))]
        if not isinstance(task, Task):
            raise ValueError(f"{self.name}: options['task'] must be a sim.tasks.Task, not {type(task).__name__}")
        if task.family not in fam.FAMILIES or (self.family != "multi2d" and task.family != self.family):
            raise ValueError(f"{self.name}: cannot host task {task.task_id!r} of family {task.family!r}")
        self._build(task)
        return self._observation(), self._info(self.arm.ee_pose(), reset=True)

    def _build(self, task: Task):
        cfg = self.config
        spec = fam.SPECS[task.family]
        self.task = task
        self.geom = fam.arm_geometry(task.family)
        self.space = space = pymunk.Space()
        space.gravity = (0.0, 0.0)
        space.iterations = cfg.solver_iterations
        space.collision_slop = cfg.collision_slop
        space.collision_bias = cfg.collision_bias
        noise = self.np_random.uniform(-1.0, 1.0, size=3) * [cfg.start_noise_xy, cfg.start_noise_xy,
                                                             cfg.start_noise_angle]
        q0 = inverse(self.geom, np.asarray(spec.start_pose) + noise)
        self.fixture = fam.FIXTURES[task.family](space, task.params)
        self.arm = PlanarArm(space, self.geom, q0, fam.tool_polys(task.family, self.geom))
        self._fixture_updates = type(self.fixture).update is not fam.Fixture.update
        self._collect_drawables()
        self.steps = 0

    def step(self, action):
        self._require_reset()
        a = check_action(action, (3,), self.name).clip(-1.0, 1.0)
        return self.step_joint_velocities(self.joint_velocities_for(a), _checked=True)

    def joint_velocities_for(self, action) -> np.ndarray:
        """The IK the env applies: EE action in [-1, 1]^3 -> joint velocities (rad/s) at the current q."""
        s = self._scale
        return dls_joint_velocities(self.geom, self.arm.joint_positions(),
                                    (action[0] * s[0], action[1] * s[1], action[2] * s[2]))

    def step_joint_velocities(self, joint_velocities, _checked: bool = False):
        """One control step with joint velocities (rad/s) instead of an EE action: what the ROS twin does
        with velocity commands. Same return value as `step`."""
        self._require_reset()
        qd = joint_velocities if _checked else check_action(joint_velocities, (3,), f"{self.name} joint velocities")
        self.arm.command(qd)
        space, dt = self.space, self._substep_dt
        if self._fixture_updates:
            fixture, arm = self.fixture, self.arm
            for _ in range(self.config.substeps):
                space.step(dt)
                fixture.update(arm.tip())
        else:
            for _ in range(self.config.substeps):
                space.step(dt)
        self.steps += 1
        ee = self.arm.ee_pose()
        info = self._info(ee)
        reward = info["sparse_reward"] if self.reward_mode == "sparse" else info["dense_reward"]
        return self._observation(ee), reward, False, self.steps >= self.episode_steps, info

    def _require_reset(self):
        if self.arm is None:
            raise RuntimeError(f"{self.name}: call reset() before step()")

    # --- observation, reward, info ---------------------------------------------------------------
    def _observation(self, ee=None):
        if self.image_obs:
            return self.render_image(self.config.image_size, show_goal=False)
        return self.state_observation(ee)

    def state_observation(self, ee=None) -> np.ndarray:
        ee = self.arm.ee_pose() if ee is None else ee
        s = self.config.pos_scale
        return np.array([ee[0] / s, ee[1] / s, math.cos(ee[2]), math.sin(ee[2])], dtype=np.float32)

    def _info(self, ee, reset: bool = False) -> dict:
        success = bool(self.fixture.success(ee))
        return {"sparse_reward": 1.0 if success else 0.0, "dense_reward": float(self.fixture.dense_reward(ee)),
                "success": success, "task": self.task.descriptor.copy(), "task_id": self.task.task_id,
                "family": self.task.family}

    # --- privileged access -------------------------------------------------------------------------
    def expert_action(self) -> np.ndarray:
        from sim.pymunk2d.expert import expert_action

        return expert_action(self)

    # --- rendering -------------------------------------------------------------------------------
    def _collect_drawables(self):
        """Every drawn shape's local vertices, concatenated, with the body each vertex moves with."""
        tool_start = len(self.arm.shapes) - len(fam.tool_polys(self.task.family, self.geom))
        shapes = [(s, TOOL_COLOR if i >= tool_start else ARM_COLOR) for i, s in enumerate(self.arm.shapes)]
        shapes += self.fixture.drawn
        bodies: list = []
        local, owner, self._poly_meta = [], [], []
        for shape, color in shapes:
            if shape.body not in bodies:
                bodies.append(shape.body)
            verts = [tuple(v) for v in shape.get_vertices()]
            local += verts
            owner += [bodies.index(shape.body)] * len(verts)
            self._poly_meta.append((len(verts), color))
        self._draw_bodies = bodies
        self._draw_local = np.array(local)
        self._draw_owner = np.array(owner)
        self._draw_splits = np.cumsum([n for n, _ in self._poly_meta])[:-1]

    def scene_polygons(self):
        """[(world vertices, rgb)] of every shape, from the current body poses."""
        poses = np.array([(b.position.x, b.position.y, b.angle) for b in self._draw_bodies])[self._draw_owner]
        c, s = np.cos(poses[:, 2]), np.sin(poses[:, 2])
        lx, ly = self._draw_local[:, 0], self._draw_local[:, 1]
        world = np.stack([poses[:, 0] + c * lx - s * ly, poses[:, 1] + s * lx + c * ly], axis=1)
        return [(w, color) for w, (_, color) in zip(np.split(world, self._draw_splits), self._poly_meta, strict=True)]

    def render_image(self, size: int | None = None, show_goal: bool = False) -> np.ndarray:
        """The scene as (size, size, 3) uint8; `show_goal` adds the hidden goal marker (viewer only)."""
        self._require_reset()
        joints = [tuple(b.position) for b in self.arm.bodies]
        goal = self.fixture.goal if show_goal else None
        return draw_scene(size or self.config.image_size, self.scene_polygons(), PLANAR_VIEW, joints=joints,
                          goal=goal, goal_radius=fam.REACH_TOLERANCE if self.task.family == "reach2d" else 0.015)

    def render(self):
        if self.render_mode == "rgb_array":
            return self.render_image(self.config.render_size, show_goal=True)
        return None


def _family_env(family: str, name: str) -> type[Planar2DEnv]:
    """A Planar2DEnv subclass fixed to one family: Gymnasium entry points name a class."""

    def __init__(self, **kwargs):
        Planar2DEnv.__init__(self, family=family, **kwargs)

    return type(name, (Planar2DEnv,), {"__init__": __init__, "__doc__": f"Planar2DEnv(family={family!r})"})


Reach2DEnv = _family_env("reach2d", "Reach2DEnv")
Stick2DEnv = _family_env("stick2d", "Stick2DEnv")
Peg2DEnv = _family_env("peg2d", "Peg2DEnv")
Key2DEnv = _family_env("key2d", "Key2DEnv")
Multi2DEnv = _family_env("multi2d", "Multi2DEnv")
