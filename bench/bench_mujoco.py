"""MuJoCo twin throughput: control steps/s with and without rendering against raw `mj_step` at the
same number of physics steps (the physics floor), and render time per frame at 64x64 and 240x320."""

from __future__ import annotations

import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

import sim  # noqa: E402,F401


def _rate(fn, n: int) -> float:
    fn()  # warm-up (renderer creation, first contacts)
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def bench_env(env_id: str, steps: int = 40) -> dict:
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.2, 0.2, (steps + 1, env.action_space.shape[0]))
    it = iter(actions)
    state_sps = _rate(lambda: env.step(next(it)), steps)
    physics_steps = env.ticks_per_step * env.sim.substeps
    m, d = env.sim.model, env.sim.data
    raw_sps = _rate(lambda: mujoco.mj_step(m, d, nstep=physics_steps), steps)
    env.close()

    img_env = gym.make(env_id, image_obs=True).unwrapped
    img_env.reset(seed=0)
    it = iter(actions)
    image_sps = _rate(lambda: img_env.step(next(it)), steps // 2)
    render_small = 1000.0 / _rate(lambda: img_env.sim.render("scene", 64, 64), 20)
    render_big = 1000.0 / _rate(lambda: img_env.sim.render("scene", 240, 320), 10)
    img_env.close()
    return {"env": env_id, "physics_steps": physics_steps, "state_sps": state_sps, "raw_sps": raw_sps,
            "image_sps": image_sps, "render64_ms": render_small, "render240_ms": render_big}


def main() -> None:
    print(f"{'env':26s} {'phys/ctrl':>9s} {'state st/s':>10s} {'raw mj_step':>11s} {'floor ratio':>11s} "
          f"{'image st/s':>10s} {'img/state':>9s} {'64px ms':>8s} {'320x240 ms':>10s}")
    for env_id in ("meldbot/WidowXCable-v0", "meldbot/SawyerPeg-v0"):
        r = bench_env(env_id)
        print(f"{r['env']:26s} {r['physics_steps']:9d} {r['state_sps']:10.1f} {r['raw_sps']:11.1f} "
              f"{r['state_sps'] / r['raw_sps']:11.2f} {r['image_sps']:10.1f} {r['image_sps'] / r['state_sps']:9.2f} "
              f"{r['render64_ms']:8.2f} {r['render240_ms']:10.2f}")
    print("floor ratio = env control steps/s over raw mj_step calls/s with the same physics steps "
          "(1.0 = no overhead beyond physics); image st/s renders scene+wrist 64x64 once per control step")


if __name__ == "__main__":
    main()
