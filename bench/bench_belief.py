"""PEARL/PERIL throughput and exported-policy latency.

- gradient steps/s of a PERIL meta-batch step (encoder + SAC + BC/MI/aux) vs a plain SAC step on the
  same batch size (the baseline), on synthetic Reach2D-sized data;
- exported single-step latency p50/p99 (TorchScript .ts and torch.export .pt2 through LoadedPolicy)
  vs calling the eager module's step in the same process.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

OBS, ACT, DESC = 4, 3, 8


def _rate(fn, seconds: float = 3.0) -> float:
    fn()  # warm-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def _latencies(fn, n: int = 300) -> np.ndarray:
    for _ in range(20):
        fn()
    out = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t
    return out * 1e6


def main() -> None:
    from belief.export import build_policy
    from belief.pearl import synthetic_train_data
    from belief.peril import PERILAgent, PERILConfig
    from belief.policy_file import LoadedPolicy, save_policy
    from belief.sac import SAC, SACConfig

    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = PERILConfig(aux_weight=4.0, encoder_hidden=(128, 128), meta_batch=8, batch_size=64, context_size=64,
                      demo_context_size=64, demo_batch_size=64, sac=SACConfig(hidden=(128, 128)))
    agent = PERILAgent(OBS, ACT, cfg, descriptor_dim=DESC)
    data = synthetic_train_data(8, OBS, ACT, DESC, 240, rng)
    peril_rate = _rate(lambda: agent.train_step(data, rng.choice(8, 8), rng))
    sac = SAC(OBS + cfg.latent_dim, ACT, cfg.sac)
    n = cfg.meta_batch * cfg.batch_size
    batch = (torch.randn(n, OBS + cfg.latent_dim), torch.rand(n, ACT) * 2 - 1, torch.randn(n, 1),
             torch.randn(n, OBS + cfg.latent_dim), torch.zeros(n, 1))
    sac_rate = _rate(lambda: sac.update(*batch))
    print(f"PERIL-A gradient steps/s (meta-batch 8 x 64, 1 thread): {peril_rate:.1f}")
    print(f"plain SAC steps/s, same batch (baseline):            {sac_rate:.1f}")
    print(f"ratio PERIL-A / SAC: {peril_rate / sac_rate:.2f}")

    demos = agent.context(data.demos[0].transitions())[:180]
    module, meta = build_policy(agent, None, demos, algo="peril-a", env_name="bench")
    obs, prev, rew = torch.zeros(OBS), torch.zeros(ACT), torch.zeros(1)
    state = module.initial_state()
    with torch.inference_mode():
        eager = _latencies(lambda: module.step(obs, prev, rew, state))
    print(f"eager step:        p50 {np.percentile(eager, 50):7.1f} us   p99 {np.percentile(eager, 99):7.1f} us")
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".ts", ".pt2"):
            policy = LoadedPolicy(save_policy(module, meta, Path(tmp) / f"p{suffix}"))
            s = policy.initial_state()
            o, a = np.zeros(OBS, np.float32), np.zeros(ACT, np.float32)
            lat = _latencies(lambda policy=policy, s=s, o=o, a=a: policy.step(o, a, 0.0, s))
            print(f"exported {suffix:4s} step: p50 {np.percentile(lat, 50):7.1f} us   p99 {np.percentile(lat, 99):7.1f} us"
                  f"   (p50 ratio vs eager {np.percentile(lat, 50) / np.percentile(eager, 50):.2f})")


if __name__ == "__main__":
    main()
