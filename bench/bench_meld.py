"""MELD throughput and latency: model (ELBO) steps/s, actor-critic steps/s, exported step latency.

Reduced-config sizes (config/train_meld.yaml) on the real 64x128 stacked image by default; `--config`
takes the sizes and batch from a training config and `--device cuda` times the training steps on a GPU:
`python -m bench.bench_meld --config config/train_meld_full.yaml --device cuda`. The exported step
(TorchScript and torch.export) runs on the CPU, as the policy server does, and is timed against calling
the same eager module in this process. `python -m bench meld`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from belief.meld.agent import AgentConfig, MeldAgent
from belief.meld.export import build_metadata, export_policy
from belief.meld.model import ModelConfig
from belief.meld.policy import MeldPolicy
from belief.meld.train import TrainConfig, configure_torch
from belief.policy_file import LoadedPolicy
from belief.sac import SACConfig

EPISODES, HORIZON, BATCH = 2, 40, 4
DECODED_FRAMES = 16


REDUCED = AgentConfig(model=ModelConfig(base_depth=8, z1_dim=16, z2_dim=64, hidden=128),
                      sac=SACConfig(hidden=(128, 128)))


def _agent(cfg: AgentConfig, device: str, decoded_frames: int = 0) -> MeldAgent:
    torch.manual_seed(0)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, decoded_frames=decoded_frames))
    return MeldAgent(cfg, EPISODES, HORIZON, device)


def _batch(rng, batch: int) -> dict:
    T = EPISODES * (HORIZON + 1)
    return {"images": rng.integers(0, 255, (batch, T, 64, 128, 3), dtype=np.uint8),
            "actions": rng.uniform(-1, 1, (batch, T, 5)).astype(np.float32),
            "reward_dense": rng.normal(size=(batch, T)).astype(np.float32),
            "reward_sparse": np.zeros((batch, T), np.float32)}


def _sync() -> None:
    # CUDA kernels run asynchronously: a timer read without a sync measures the launch, not the work
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _rate(fn, n: int) -> float:
    fn()  # warm-up
    _sync()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    _sync()
    return n / (time.perf_counter() - t)


def _latency(fn, n: int) -> tuple[float, float]:
    for _ in range(5):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.bench_meld", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="training config whose model, SAC sizes and batch_trials to time "
                                    "(default: the reduced sizes, batch 4)")
    p.add_argument("--device", default="cpu", help="cpu or cuda: where the training steps run")
    args = p.parse_args(argv or [])
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {args.device}: CUDA is not available on this machine")
    agent_cfg, batch, repeats = REDUCED, BATCH, 3
    if args.config:
        train_cfg = TrainConfig.from_yaml(args.config, device=args.device)
        agent_cfg, batch = train_cfg.agent, train_cfg.batch_trials
    if args.device != "cpu":
        repeats = 20
    configure_torch(args.device)
    rng = np.random.default_rng(0)
    agent = _agent(agent_cfg, args.device)
    b = agent.to_tensors(_batch(rng, batch))
    print(f"device {args.device}, threads {torch.get_num_threads()}, "
          f"batch {batch} trials x {EPISODES * (HORIZON + 1)} frames of 64x128, config {args.config or 'reduced'}")
    model_rate = _rate(lambda: agent.model_step(b), repeats)
    _, beliefs = agent.model_step(b)
    ac_rate = _rate(lambda: agent.actor_critic_step(beliefs, b), 10)
    transitions = batch * EPISODES * HORIZON
    print(f"model ELBO steps/s:        {model_rate:8.2f}  ({model_rate * batch * EPISODES * (HORIZON + 1):.0f} frames/s)")
    print(f"actor-critic steps/s:      {ac_rate:8.2f}  ({ac_rate * transitions:.0f} transitions/s)")
    print(f"ratio actor-critic / model: {ac_rate / model_rate:7.1f}x")
    sub = _agent(agent_cfg, args.device, decoded_frames=DECODED_FRAMES)
    sub_rate = _rate(lambda: sub.model_step(b), repeats)
    print(f"model steps/s, {DECODED_FRAMES} of {EPISODES * (HORIZON + 1)} frames decoded: {sub_rate:6.2f}  "
          f"(ratio vs all decoded {sub_rate / model_rate:.2f}x; config/train_meld.yaml's decoded_frames)")

    # the policy server steps the exported model on the robot PC's CPU
    policy = MeldPolicy(copy.deepcopy(agent.model).cpu(), copy.deepcopy(agent.sac.actor).cpu()).eval()
    meta = build_metadata(agent.cfg, {"obs_shape": [64, 128, 3], "joint_names": [f"j{i}" for i in range(5)],
                                      "action_scale": [np.pi] * 5, "env": "bench"}, policy.state_dim)
    obs = rng.integers(0, 255, (64, 128, 3), dtype=np.uint8)
    prev, state0 = np.zeros(5, np.float32), policy.initial_state().numpy()
    obs_t, prev_t, rew_t, state_t = (torch.from_numpy(obs), torch.from_numpy(prev), torch.zeros(1),
                                     torch.from_numpy(state0))

    def eager():
        with torch.inference_mode():
            policy.step(obs_t, prev_t, rew_t, state_t)

    p50_e, p99_e = _latency(eager, 200)
    print(f"eager step latency:        p50 {p50_e:6.2f} ms  p99 {p99_e:6.2f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".ts", ".pt2"):
            loaded = LoadedPolicy(export_policy(policy, meta, Path(tmp) / f"meld{suffix}"))
            p50, p99 = _latency(lambda lp=loaded: lp.step(obs, prev, 0.0, state0), 200)
            print(f"exported {suffix:4s} step latency: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
                  f"(p50 ratio vs eager {p50 / p50_e:.2f}x)")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
