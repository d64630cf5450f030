"""The four PERIL task families: geometry, hidden task parameters, success, rewards and fixtures.

World frame: metres, the arm base at the origin, tasks in front of it (+x), seen from above (no
gravity). A fixture (hole, button recess, lock) has a mouth point M and an insertion axis u at angle
`angle`; (depth, lateral) are coordinates along u and its normal. The hidden task of a family is the
fixture pose (Reach2D: the goal point; Key2D adds the turn angle). The robot starts at a fixed
per-family pose (plus a little seeded noise) near the task region's interaction point E, so the
initial observation says nothing about the task.

Descriptor (the privileged ground truth, 8 floats, same layout for every family so a multi-family
belief model can decode it): [goal_x, goal_y, angle, turn, one-hot(reach, stick, peg, key)], where
goal is the point the tool tip must reach (the dense reward's target).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pymunk

from sim.pymunk2d.kinematics import ArmGeometry
from sim.pymunk2d.robot import box_vertices

FAMILIES = ("reach2d", "stick2d", "peg2d", "key2d")
DESCRIPTOR_SIZE = 8

# Colours (RGB) used by the renderer; the category is stored with each drawn shape.
STATIC_COLOR = (90, 92, 110)
MOVING_COLOR = (60, 110, 190)


@dataclass(frozen=True)
class FamilySpec:
    """Constants of one family: the tool, the start pose and the task distribution."""

    name: str
    tool_length: float  # m beyond the last link
    tool_half_width: float
    start_pose: tuple[float, float, float]  # nominal EE pose [x, y, angle] at reset
    mouth_x: tuple[float, float] = (0.0, 0.0)  # task distribution of the fixture mouth / goal
    mouth_y: tuple[float, float] = (-0.12, 0.12)
    angle: tuple[float, float] = (-0.3, 0.3)


SPECS = {
    # Reach starts further from its goals (PERIL's table: only Reach starts away from the task region).
    "reach2d": FamilySpec("reach2d", 0.05, 0.01, (0.35, 0.0, 0.0), (0.60, 0.80), (-0.30, 0.30), (0.0, 0.0)),
    "stick2d": FamilySpec("stick2d", 0.22, 0.008, (0.56, 0.0, 0.0), (0.66, 0.74)),
    "peg2d": FamilySpec("peg2d", 0.12, 0.02, (0.50, 0.0, 0.0), (0.62, 0.70)),
    "key2d": FamilySpec("key2d", 0.09, 0.009, (0.50, 0.0, 0.0), (0.62, 0.70)),
}

# Success thresholds and fixture dimensions (m, rad).
REACH_TOLERANCE = 0.04
PEG_HOLE_WIDTH = 0.046  # peg 0.040: 3 mm clearance each side, so a tilted peg jams on the edge
PEG_HOLE_DEPTH = 0.10
PEG_SUCCESS_DEPTH = 0.07
PEG_GOAL_DEPTH = 0.08
STICK_RECESS_WIDTH = 0.07
STICK_BUTTON_DEPTH = 0.10  # button face at rest, from the mouth
STICK_TRAVEL = 0.035
STICK_SUCCESS_PRESS = 0.02
STICK_GOAL_PRESS = 0.03
KEYWAY_WIDTH = 0.028  # key blade 0.018
KEY_PIVOT_DEPTH = 0.07  # where the cylinder turns; the key's bow stops the tip there
KEY_UNLATCH_DEPTH = 0.06
KEY_TURN_RANGE = (0.5, 1.1)  # |turn| of the hidden target
KEY_TURN_LIMIT = 1.4
KEY_TURN_TOLERANCE = 0.1
KEY_ANGLE_WEIGHT = 0.5  # dense reward adds 0.5 |turn - target| (PERIL)


def family_index(family: str) -> int:
    if family not in FAMILIES:
        raise ValueError(f"unknown 2D family {family!r} (known: {', '.join(FAMILIES)})")
    return FAMILIES.index(family)


def arm_geometry(family: str) -> ArmGeometry:
    return ArmGeometry(tool_length=SPECS[family].tool_length)


def tool_polys(family: str, geom: ArmGeometry) -> list[list[tuple[float, float]]]:
    """The tool's shapes in the last link's frame (x along the link, the tip at geom.lengths[2])."""
    spec = SPECS[family]
    l3 = geom.link_lengths[2]
    polys = [box_vertices(l3, l3 + spec.tool_length, spec.tool_half_width)]
    if family == "key2d":
        # The bow: wider than the keyway, so the blade goes in exactly KEY_PIVOT_DEPTH.
        blade_in = KEY_PIVOT_DEPTH
        bow_front = l3 + spec.tool_length - blade_in
        polys.append(box_vertices(bow_front - 0.02, bow_front, 0.025))
    return polys


def sample_params(family: str, rng: np.random.Generator) -> dict:
    """Draw one task's hidden parameters."""
    spec = SPECS[family]
    x = float(rng.uniform(*spec.mouth_x))
    y = float(rng.uniform(*spec.mouth_y))
    if family == "reach2d":
        return {"goal": [x, y]}
    params = {"mouth": [x, y], "angle": float(rng.uniform(*spec.angle))}
    if family == "key2d":
        params["turn"] = float(rng.choice([-1.0, 1.0]) * rng.uniform(*KEY_TURN_RANGE))
    return params


def descriptor(family: str, params: dict) -> np.ndarray:
    """The 8-float ground truth (see module docstring)."""
    out = np.zeros(DESCRIPTOR_SIZE, dtype=np.float32)
    out[:2] = goal_point(family, params)
    out[2] = params.get("angle", 0.0)
    out[3] = params.get("turn", 0.0)
    out[4 + family_index(family)] = 1.0
    return out


def axis(params: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mouth M, insertion direction u, lateral n) of a fixture."""
    a = params["angle"]
    return (np.asarray(params["mouth"], dtype=np.float64), np.array([math.cos(a), math.sin(a)]),
            np.array([-math.sin(a), math.cos(a)]))


def goal_point(family: str, params: dict) -> np.ndarray:
    """Where the tool tip must be: the dense reward's target."""
    if family == "reach2d":
        return np.asarray(params["goal"], dtype=np.float64)
    mouth, u, _ = axis(params)
    depth = {"peg2d": PEG_GOAL_DEPTH, "stick2d": STICK_BUTTON_DEPTH + STICK_GOAL_PRESS,
             "key2d": KEY_PIVOT_DEPTH}[family]
    return mouth + depth * u


class Fixture:
    """What the arm interacts with, in a Pymunk space; subclasses per family."""

    family = ""

    def __init__(self, space: pymunk.Space, params: dict):
        self.space = space
        self.params = params
        self.goal = goal_point(self.family, params)
        if "angle" in params:  # plain floats: local() runs every physics substep for Key2D
            mouth, u, _ = axis(params)
            self._mx, self._my, self._ux, self._uy = float(mouth[0]), float(mouth[1]), float(u[0]), float(u[1])
        self.drawn: list[tuple[pymunk.Shape, tuple[int, int, int]]] = []  # for the renderer

    # frame helpers
    def local(self, point) -> tuple[float, float]:
        """(depth, lateral) of a world point in the fixture frame."""
        dx, dy = float(point[0]) - self._mx, float(point[1]) - self._my
        return dx * self._ux + dy * self._uy, dy * self._ux - dx * self._uy

    def world(self, depth: float, lateral: float) -> tuple[float, float]:
        return (self._mx + depth * self._ux - lateral * self._uy, self._my + depth * self._uy + lateral * self._ux)

    def _static_box(self, d0, d1, l0, l1, body=None, friction=0.4):
        body = body or self.space.static_body
        if body is self.space.static_body:
            verts = [self.world(d0, l0), self.world(d1, l0), self.world(d1, l1), self.world(d0, l1)]
        else:  # in the body's own frame (x along the axis)
            verts = [(d0, l0), (d1, l0), (d1, l1), (d0, l1)]
        shape = pymunk.Poly(body, verts)
        shape.friction = friction
        self.space.add(shape)
        self.drawn.append((shape, STATIC_COLOR if body is self.space.static_body else MOVING_COLOR))
        return shape

    def update(self, tip) -> None:
        """Called after every physics substep with the tool tip (x, y) (latches and other mechanisms)."""

    def success(self, ee_pose) -> bool:
        raise NotImplementedError

    def dense_reward(self, ee_pose) -> float:
        return -math.hypot(self.goal[0] - ee_pose[0], self.goal[1] - ee_pose[1])

    def turn(self) -> float:
        return 0.0


class ReachFixture(Fixture):
    family = "reach2d"

    def success(self, ee_pose) -> bool:
        return math.hypot(self.goal[0] - ee_pose[0], self.goal[1] - ee_pose[1]) < REACH_TOLERANCE


class PegFixture(Fixture):
    """A hole 3 mm wider than the peg each side, no chamfer: a tilted peg jams on its edge."""

    family = "peg2d"

    def __init__(self, space, params):
        super().__init__(space, params)
        hw, side = PEG_HOLE_WIDTH / 2, 0.08
        self._static_box(0.0, PEG_HOLE_DEPTH, hw, hw + side)
        self._static_box(0.0, PEG_HOLE_DEPTH, -hw - side, -hw)
        self._static_box(PEG_HOLE_DEPTH, PEG_HOLE_DEPTH + 0.03, -hw - side, hw + side)

    def success(self, ee_pose) -> bool:
        depth, lateral = self.local(ee_pose)
        return depth >= PEG_SUCCESS_DEPTH and abs(lateral) < PEG_HOLE_WIDTH / 2


class StickFixture(Fixture):
    """A recess with a spring-loaded button at its bottom; success = button pressed in 2 cm."""

    family = "stick2d"

    def __init__(self, space, params):
        super().__init__(space, params)
        hw, side, back = STICK_RECESS_WIDTH / 2, 0.05, STICK_BUTTON_DEPTH + 0.02 + STICK_TRAVEL + 0.005
        self._static_box(0.0, back, hw, hw + side)
        self._static_box(0.0, back, -hw - side, -hw)
        self._static_box(back, back + 0.03, -hw - side, hw + side)
        mouth, u, _ = axis(params)
        mass, thick, half = 0.2, 0.02, hw - 0.004
        body = pymunk.Body(mass, pymunk.moment_for_box(mass, (thick, 2 * half)))
        rest = mouth + (STICK_BUTTON_DEPTH + thick / 2) * u
        body.position = tuple(rest)
        body.angle = params["angle"]
        space.add(body)
        self.button = body
        self._static_box(-thick / 2, thick / 2, -half, half, body=body)
        groove_end = rest + STICK_TRAVEL * u
        space.add(pymunk.GrooveJoint(space.static_body, body, tuple(rest), tuple(groove_end), (0, 0)),
                  pymunk.RotaryLimitJoint(space.static_body, body, params["angle"], params["angle"]),
                  pymunk.DampedSpring(space.static_body, body, tuple(rest - 0.05 * u), (0, 0), 0.05, 40.0, 2.0))
        self._rest = rest
        self._u = u

    def press(self) -> float:
        return float((np.asarray(self.button.position) - self._rest) @ self._u)

    def success(self, ee_pose) -> bool:
        return self.press() >= STICK_SUCCESS_PRESS


class KeyFixture(Fixture):
    """A lock cylinder with a keyway; latched until the key is in, then it turns with the key."""

    family = "key2d"

    def __init__(self, space, params):
        super().__init__(space, params)
        mouth, u, _ = axis(params)
        self.target = float(params["turn"])
        body = pymunk.Body(0.5, 0.002)
        body.position = tuple(mouth + KEY_PIVOT_DEPTH * u)
        body.angle = params["angle"]
        space.add(body)
        self.cylinder = body
        hw, side, d0 = KEYWAY_WIDTH / 2, 0.04, -KEY_PIVOT_DEPTH
        bottom = 0.085 - KEY_PIVOT_DEPTH
        self._static_box(d0, bottom, hw, hw + side, body=body)
        self._static_box(d0, bottom, -hw - side, -hw, body=body)
        self._static_box(bottom, bottom + 0.02, -hw - side, hw + side, body=body)
        self.latch = pymunk.RotaryLimitJoint(space.static_body, body, params["angle"], params["angle"])
        friction = pymunk.SimpleMotor(space.static_body, body, 0.0)
        friction.max_force = 0.3  # the cylinder resists turning a little
        space.add(pymunk.PivotJoint(space.static_body, body, body.position), self.latch, friction)
        self.unlatched = False

    def update(self, tip) -> None:
        if not self.unlatched:
            depth, lateral = self.local(tip)
            if depth >= KEY_UNLATCH_DEPTH and abs(lateral) < KEYWAY_WIDTH / 2:
                a = self.params["angle"]
                self.latch.min, self.latch.max = a - KEY_TURN_LIMIT, a + KEY_TURN_LIMIT
                self.unlatched = True

    def turn(self) -> float:
        return float(self.cylinder.angle - self.params["angle"])

    def success(self, ee_pose) -> bool:
        return self.unlatched and abs(self.turn() - self.target) < KEY_TURN_TOLERANCE

    def dense_reward(self, ee_pose) -> float:
        return super().dense_reward(ee_pose) - KEY_ANGLE_WEIGHT * abs(self.turn() - self.target)


FIXTURES = {"reach2d": ReachFixture, "stick2d": StickFixture, "peg2d": PegFixture, "key2d": KeyFixture}
