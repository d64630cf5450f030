"""Export a trained PEARL/PERIL agent as a single-step policy with an explicit belief state.

State layout (float32, all explicit so the policy server can carry it across the episodes of a trial):
    [ sum of precisions (L) | sum of precision-weighted means (L) | previous env obs (D) |
      previous env action (A) | has_previous (1) ]
The product of Gaussians makes the posterior over z a function of these two running sums, so each
step folds in the factor of the last transition (o_{t-1}, a_{t-1}, r_{t-1}) and acts on the posterior
mean z (deterministic: the server needs a reproducible policy). The initial state holds the
demonstrations' sums for PERIL (recorded for one task at export time, or computed later with the
TorchScript method `inner.state_from_context`) and zeros (= the prior) for PEARL.

For the Pymunk arm families the ROS observation is the env observation followed by the joint positions
and commands are joint velocities: the module maps its end-effector action through the same damped
least-squares IK as the env (`sim.pymunk2d.kinematics`) and returns joint velocities / limit in [-1, 1].
The previous action it needs for the context is its own EE action, kept in the state (the server's
`prev_action` input, in joint space, is not used).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from belief.context_encoder import MIN_VAR
from belief.policy_file import ActionSpec, ObservationSpec, PolicyMetadata, save_policy


class PlanarDLS(nn.Module):
    """EE velocity [vx, vy, w] -> joint velocities by damped least squares, as sim.pymunk2d.kinematics."""

    def __init__(self, lengths, damping: float, velocity_limit: float, ee_scale):
        super().__init__()
        self.register_buffer("lengths", torch.tensor(lengths, dtype=torch.float32))
        self.register_buffer("ee_scale", torch.tensor(ee_scale, dtype=torch.float32))
        self.lam2 = float(damping) ** 2
        self.limit = float(velocity_limit)

    def forward(self, q: Tensor, action: Tensor) -> Tensor:
        theta = torch.cumsum(q, 0)
        dx = -self.lengths * torch.sin(theta)
        dy = self.lengths * torch.cos(theta)
        jac = torch.stack([dx.flip(0).cumsum(0).flip(0), dy.flip(0).cumsum(0).flip(0), torch.ones_like(q)])
        v = action * self.ee_scale
        eye = torch.eye(3, dtype=q.dtype)
        qd = jac.t() @ torch.linalg.solve(jac @ jac.t() + self.lam2 * eye, v.unsqueeze(-1)).squeeze(-1)
        peak = qd.abs().max()
        qd = qd * torch.clamp(self.limit / peak.clamp_min(1e-12), max=1.0)  # keep direction, respect limit
        return qd / self.limit


class _NoIK(nn.Module):
    """The env's action is the command already (no arm kinematics)."""

    def forward(self, q: Tensor, action: Tensor) -> Tensor:
        return action


class BeliefPolicy(nn.Module):
    """step(obs, prev_action, reward, state) -> (action, state) for PEARL/PERIL."""

    def __init__(self, agent, initial_state: Tensor, ik: PlanarDLS | None = None):
        super().__init__()
        cfg = agent.config
        self.obs_dim, self.env_action_dim, self.latent_dim = agent.obs_dim, agent.action_dim, cfg.latent_dim
        self.use_next_obs = bool(cfg.use_next_obs_in_context)
        self.encoder = agent.encoder.net  # shared weights, copied into the archive
        self.actor = agent.sac.actor.net
        self.ik = ik if ik is not None else _NoIK()
        self.register_buffer("init_state", initial_state.detach().clone().float())
        self.state_dim = int(initial_state.numel())
        self.min_var = MIN_VAR

    def initial_state(self) -> Tensor:
        return self.init_state.clone()

    @torch.jit.export
    def state_from_context(self, context: Tensor) -> Tensor:
        """Initial state (prior + the given context rows (N, C), e.g. demonstrations)."""
        mu, raw = self.encoder(context).chunk(2, dim=-1)
        prec = 1.0 / (F.softplus(raw) + self.min_var)
        rest = torch.zeros(self.state_dim - 2 * self.latent_dim)
        return torch.cat([prec.sum(0), (prec * mu).sum(0), rest])

    def step(self, obs: Tensor, prev_action: Tensor, reward: Tensor, state: Tensor):
        L, D, A = self.latent_dim, self.obs_dim, self.env_action_dim
        obs = obs.to(torch.float32)
        env_obs = obs[:D]
        prec_sum, prec_mu = state[:L], state[L:2 * L]
        prev_obs, prev_act, has = state[2 * L:2 * L + D], state[2 * L + D:2 * L + D + A], state[-1:]
        if self.use_next_obs:
            row = torch.cat([prev_obs, prev_act, reward, env_obs])
        else:
            row = torch.cat([prev_obs, prev_act, reward])
        mu, raw = self.encoder(row).chunk(2, dim=-1)
        prec = has / (F.softplus(raw) + self.min_var)  # no factor before the first transition exists
        prec_sum = prec_sum + prec
        prec_mu = prec_mu + prec * mu
        z = prec_mu / (prec_sum + 1.0)  # posterior mean, the N(0, I) prior included
        mean, _ = self.actor(torch.cat([env_obs, z])).chunk(2, dim=-1)
        ee_action = torch.tanh(mean)
        action = self.ik(obs[D:], ee_action)
        new_state = torch.cat([prec_sum, prec_mu, env_obs, ee_action, torch.ones(1)])
        return action, new_state


def state_dim(agent) -> int:
    return 2 * agent.config.latent_dim + agent.obs_dim + agent.action_dim + 1


def initial_state_for(agent, context: np.ndarray | None) -> Tensor:
    """Belief state before the first step: zeros (the prior) plus the context's sums, if any."""
    state = torch.zeros(state_dim(agent))
    if context is not None and len(context):
        with torch.no_grad():
            prec, prec_mu = agent.encoder.factor_stats(torch.as_tensor(np.asarray(context, dtype=np.float32)))
        L = agent.config.latent_dim
        state[:L], state[L:2 * L] = prec.sum(0), prec_mu.sum(0)
    return state


def planar_ik_for(env) -> PlanarDLS | None:
    """The env's IK as a module, if the env is a Pymunk arm family (EE actions, joint commands)."""
    unwrapped = getattr(env, "unwrapped", env)
    geom = getattr(unwrapped, "geom", None)
    scale = getattr(unwrapped, "_scale", None)
    if geom is None or scale is None:
        return None
    return PlanarDLS(geom.lengths.tolist(), geom.damping, geom.joint_velocity_limit, np.asarray(scale).tolist())


def build_policy(agent, env=None, context: np.ndarray | None = None, *, algo: str, env_name: str,
                 version: str = "0", control_rate_hz: float = 10.0):
    """(module, metadata) ready for belief.policy_file.save_policy."""
    ik = planar_ik_for(env) if env is not None else None
    module = BeliefPolicy(agent, initial_state_for(agent, context), ik).eval()
    if ik is not None:
        unwrapped = env.unwrapped
        from sim.pymunk2d.robot import JOINT_NAMES as names  # noqa: N811
        obs_shape = [agent.obs_dim + len(names)]
        action = ActionSpec(joint_names=list(names), scale=[ik.limit] * len(names))
        control_rate_hz = 1.0 / float(unwrapped.config.control_dt)
    else:
        obs_shape = [agent.obs_dim]
        action = ActionSpec(joint_names=[f"a{i}" for i in range(agent.action_dim)], scale=[1.0] * agent.action_dim)
    reward_topic = "reward/sparse" if agent.config.encoder_reward == "sparse" else "reward/shaped"
    meta = PolicyMetadata(
        algo=algo, observation=ObservationSpec(topic="observation/state", shape=obs_shape, dtype="float32"),
        action=action, state_dim=module.state_dim, control_rate_hz=control_rate_hz, model_version=version,
        reward_topic=reward_topic, env=env_name,
        extra={"latent_dim": agent.config.latent_dim, "env_obs_dim": agent.obs_dim,
               "ee_action_dim": agent.action_dim, "demonstrations": int(context is not None and len(context) > 0),
               "state_layout": "prec_sum[L], prec_mu_sum[L], prev_obs[D], prev_ee_action[A], has_prev[1]"})
    return module, meta


def export_command(args) -> int:
    """`meldbot export CHECKPOINT -o policy.ts|policy.pt2 [--task TASK_ID]`."""
    from belief import checkpoint as ckpt_io
    from belief.registry import make_env, make_task_set
    from belief.training import agent_from_checkpoint, record_demos

    state = ckpt_io.load(args.checkpoint)
    agent, cfg = agent_from_checkpoint(state)
    env = make_env(cfg.env, seed=cfg.seed, **cfg.env_kwargs)
    context = None
    if agent.uses_demos:
        if not args.task:
            raise ValueError(f"{cfg.algo} starts from demonstrations of the task: pass --task TASK_ID "
                             f"(e.g. a held-out task id) to record them with the expert")
        tasks = make_task_set(cfg.env, seed=cfg.seed)
        demos = record_demos(env, tasks.by_id(args.task), agent.config.n_demos, cfg.demo_noise, seed=cfg.seed)
        context = agent.context(demos.transitions())
    version = f"{cfg.algo}-{cfg.env}-s{cfg.seed}-it{state['iteration']}" + (f"-{args.task}" if args.task else "")
    module, meta = build_policy(agent, env, context, algo=cfg.algo, env_name=cfg.env, version=version)
    path = save_policy(module, meta, Path(args.output))
    print(f"exported {version} to {path} (state_dim {meta.state_dim}, obs {meta.observation.shape}, "
          f"action {meta.action.joint_names})")
    return 0
