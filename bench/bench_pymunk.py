"""Pymunk 2D envs: env steps per second per family, single and vectorised, against the physics floor
(the same Pymunk space stepped bare: the same bodies, the same substeps, no IK/reward/observation), so
the environment's overhead prints as a ratio. Also the 64x64 image observation's cost."""

from __future__ import annotations

import time

import numpy as np

import sim  # noqa: F401
from sim.pymunk2d.task_sets import make_task_set
from sim.pymunk2d.vector import VectorTaskEnv
from sim.viewer import resolve_env_id

FAMILIES = ("reach2d", "stick2d", "peg2d", "key2d")
N_VEC = 16


def _rate(fn, min_time: float = 0.6) -> float:
    """Calls per second of fn() (each call may count several steps: fn returns how many)."""
    fn()  # warm-up
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_time:
        count += fn()
    return count / elapsed


def single_env_rate(short: str, image_obs: bool = False) -> float:
    import gymnasium as gym

    env = gym.make(resolve_env_id(short), image_obs=image_obs).unwrapped
    tasks = env.task_set.test
    rng = np.random.default_rng(0)
    actions = rng.uniform(env.action_space.low, env.action_space.high, size=(env.episode_steps, *env.action_space.shape))
    state = {"i": 0}

    def episode():
        env.reset(seed=state["i"], options={"task": tasks[state["i"] % len(tasks)]})
        state["i"] += 1
        for a in actions:
            env.step(a)
        return len(actions)

    return _rate(episode)


def vector_rate(short: str) -> float:
    tasks = list(make_task_set(short).test) * (N_VEC // 10 + 1)
    vec = VectorTaskEnv(short, tasks[:N_VEC])
    vec.reset()
    dims = vec.action_shape
    actions = np.random.default_rng(0).uniform(-1, 1, size=(64, N_VEC, *dims)) * vec.single_action_space.high
    state = {"i": 0}

    def step():
        vec.step(actions[state["i"] % 64])
        state["i"] += 1
        return N_VEC

    return _rate(step)


def physics_floor_rate(short: str) -> float:
    """A bare space holding exactly the env's bodies, stepped `substeps` times per env step."""
    import gymnasium as gym

    env = gym.make(resolve_env_id(short)).unwrapped
    env.reset(seed=0, options={"task": env.task_set.test[0]})
    env.arm.command([0.3, -0.3, 0.2])
    space, substeps, dt = env.space, env.config.substeps, env.config.control_dt / env.config.substeps

    def step():
        for _ in range(substeps):
            space.step(dt)
        return 1

    return _rate(step)


def main() -> None:
    print(f"{'family':10s} {'single/s':>10s} {'vector/s':>10s} {'physics floor/s':>16s} {'overhead x':>11s} "
          f"{'vec gain x':>11s} {'image obs/s':>12s}")
    for short in FAMILIES:
        single = single_env_rate(short)
        vec = vector_rate(short)
        floor = physics_floor_rate(short)
        image = single_env_rate(short, image_obs=True)
        print(f"{short:10s} {single:10.0f} {vec:10.0f} {floor:16.0f} {floor / single:11.2f} {vec / single:11.2f} "
              f"{image:12.0f}")
    single = single_env_rate("point_robot")
    vec = vector_rate("point_robot")
    pos, step = np.zeros(2), np.full(2, 0.01)

    def bare():  # the point robot has no physics: its floor is the numpy update itself
        nonlocal pos
        pos = pos + np.clip(step, -0.1, 0.1)
        return 1

    floor = _rate(bare)
    print(f"{'point_robot':10s} {single:10.0f} {vec:10.0f} {floor:16.0f} {floor / single:11.2f} {vec / single:11.2f} "
          f"{'':>12s}")
    print("overhead x = physics floor rate / env rate (1.0 = the env adds nothing to the physics); "
          f"vector = {N_VEC} tasks per call, counted in env steps")


if __name__ == "__main__":
    main()
