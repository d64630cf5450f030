"""PEARL (Rakelly et al. 2019): probabilistic context encoder + SAC on [obs, z].

The encoder is trained by the critic's gradient plus a KL(q(z|c) || N(0, I)) penalty; the actor sees z
detached. Context comes from the per-task encoder buffer (the latest collection round only), RL batches
from the full per-task buffer. The encoder can see a different reward than the critic (sparse vs dense:
PEARL's sparse-reward setting). Meta-test exploration is posterior sampling: z from the prior for the
first trajectory, then from the posterior over everything collected so far (`adapt`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from belief.buffers import DemoBuffer, MultiTaskReplay, context_array
from belief.context_encoder import ContextEncoder, context_dim, kl_to_standard_normal
from belief.sac import SAC, SACConfig

REWARD_KEYS = {"dense": "rewards", "sparse": "sparse_rewards"}


@dataclass
class PEARLConfig:
    latent_dim: int = 8
    encoder_hidden: tuple[int, ...] = (200, 200, 200)
    encoder_lr: float = 3e-4
    kl_weight: float = 0.1
    use_next_obs_in_context: bool = False  # oyster's default
    encoder_reward: str = "sparse"  # what the encoder sees
    critic_reward: str = "dense"  # what the critic is trained on
    meta_batch: int = 8  # tasks per gradient step
    batch_size: int = 128  # RL transitions per task per step
    context_size: int = 64  # context transitions per task per step
    sac: SACConfig = field(default_factory=SACConfig)

    def __post_init__(self):
        if isinstance(self.sac, dict):
            self.sac = SACConfig(**self.sac)
        self.encoder_hidden = tuple(int(h) for h in self.encoder_hidden)
        for name in ("encoder_reward", "critic_reward"):
            if getattr(self, name) not in REWARD_KEYS:
                raise ValueError(f"{name} must be one of {sorted(REWARD_KEYS)}, got {getattr(self, name)!r}")
        for name in ("latent_dim", "meta_batch", "batch_size", "context_size"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class TrainData:
    """Everything sampled by a gradient step: buffers per training task and their descriptors."""

    replay: MultiTaskReplay
    demos: list[DemoBuffer]
    descriptors: np.ndarray  # (n_tasks, descriptor_dim) privileged task descriptors (PERIL-A's target)


def synthetic_train_data(n_tasks: int, obs_dim: int, action_dim: int, descriptor_dim: int, n: int,
                         rng: np.random.Generator, capacity: int = 2000) -> TrainData:
    """Random buffers, one random demonstration per task (tests and benchmarks)."""
    from belief.buffers import random_path

    replay = MultiTaskReplay(n_tasks, obs_dim, action_dim, capacity)
    demos = []
    for t in range(n_tasks):
        path = random_path(n, obs_dim, action_dim, rng)
        replay.add_path(t, path)
        demo = DemoBuffer(6)
        demo.add(path)
        demos.append(demo)
    return TrainData(replay, demos, rng.normal(size=(n_tasks, descriptor_dim)).astype(np.float32))


class PEARLAgent(nn.Module):
    algo = "pearl"
    uses_demos = False

    def __init__(self, obs_dim: int, action_dim: int, config: PEARLConfig | None = None, descriptor_dim: int = 0):
        super().__init__()
        self.config = cfg = config or self.default_config()
        self.obs_dim, self.action_dim, self.descriptor_dim = obs_dim, action_dim, descriptor_dim
        self.latent_dim = cfg.latent_dim
        self.encoder = ContextEncoder(context_dim(obs_dim, action_dim, cfg.use_next_obs_in_context),
                                      cfg.latent_dim, cfg.encoder_hidden)
        self.sac = SAC(obs_dim + cfg.latent_dim, action_dim, cfg.sac)
        self._build_extras()
        self.encoder_optim = torch.optim.Adam(self.encoder_parameters(), lr=cfg.encoder_lr)

    @staticmethod
    def default_config() -> PEARLConfig:
        return PEARLConfig()

    def _build_extras(self) -> None:
        """Subclasses add modules here (before the encoder optimiser is made)."""

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    # --- inference -----------------------------------------------------------------------------
    def context(self, batch: dict) -> np.ndarray:
        return context_array(batch, REWARD_KEYS[self.config.encoder_reward], self.config.use_next_obs_in_context)

    @torch.no_grad()
    def posterior(self, context: np.ndarray) -> tuple[Tensor, Tensor]:
        """q(z | context) for context rows (N, C), N >= 0 -> (mean, var) each (L,)."""
        ctx = torch.as_tensor(np.asarray(context, dtype=np.float32)).reshape(-1, self.encoder.context_dim)
        return self.encoder.posterior(ctx)

    @torch.no_grad()
    def act(self, obs: np.ndarray, z: Tensor, deterministic: bool = False) -> np.ndarray:
        feats = torch.cat([torch.as_tensor(np.asarray(obs, dtype=np.float32)), z]).unsqueeze(0)
        if deterministic:
            action = self.sac.actor.act_mean(feats)
        else:
            action, _, _ = self.sac.actor(feats)
        return action.squeeze(0).numpy().astype(np.float32)

    def initial_context(self, demos: DemoBuffer | None) -> np.ndarray:
        """Context a trial starts from: empty for PEARL (z from the prior)."""
        return np.zeros((0, self.encoder.context_dim), dtype=np.float32)

    # --- training --------------------------------------------------------------------------------
    def sample_context(self, data: TrainData, task: int, rng: np.random.Generator) -> np.ndarray:
        return self.context(data.replay.enc[task].sample(self.config.context_size, rng))

    def on_collection_round(self) -> None:
        """Called after each data-collection round (PERIL refreshes its behaviour policy)."""

    def extra_losses(self, z: Tensor, obs: Tensor, batch: dict, data: TrainData, tasks: np.ndarray,
                     rng: np.random.Generator) -> tuple[Tensor | None, Tensor | None, dict]:
        """(extra encoder-side loss, extra actor loss, metrics); none for PEARL."""
        return None, None, {}

    def train_step(self, data: TrainData, tasks: np.ndarray, rng: np.random.Generator) -> dict:
        """One gradient step on a meta-batch of training-task indices."""
        cfg = self.config
        ctx = torch.as_tensor(np.stack([self.sample_context(data, int(t), rng) for t in tasks]))
        batches = [data.replay.rl[int(t)].sample(cfg.batch_size, rng) for t in tasks]
        batch = {k: torch.as_tensor(np.stack([b[k] for b in batches])) for k in batches[0]}
        mu, var = self.encoder.posterior(ctx)
        z = self.encoder.sample(mu, var)
        kl = kl_to_standard_normal(mu, var).mean()
        n_tasks, n_batch = len(tasks), cfg.batch_size
        zb = z.unsqueeze(1).expand(n_tasks, n_batch, cfg.latent_dim)
        feats = torch.cat([batch["obs"], zb], -1).reshape(n_tasks * n_batch, -1)
        next_feats = torch.cat([batch["next_obs"], zb.detach()], -1).reshape(n_tasks * n_batch, -1)
        enc_extra, actor_extra, info = self.extra_losses(z, batch["obs"], batch, data, tasks, rng)
        enc_loss = cfg.kl_weight * kl if enc_extra is None else cfg.kl_weight * kl + enc_extra
        flat = {k: v.reshape(n_tasks * n_batch, -1) for k, v in batch.items()}
        info.update(self.sac.update(feats, flat["actions"], flat[REWARD_KEYS[cfg.critic_reward]], next_feats,
                                    flat["dones"], critic_aux_loss=enc_loss, actor_aux_loss=actor_extra,
                                    extra_optimizers=[self.encoder_optim]))
        info["kl"] = kl.item()
        info["z_var"] = var.mean().item()
        return info

    def optimizer_state(self) -> dict:
        return {"sac": self.sac.optimizer_state(), "encoder": self.encoder_optim.state_dict()}

    def load_optimizer_state(self, state: dict) -> None:
        self.sac.load_optimizer_state(state["sac"])
        self.encoder_optim.load_state_dict(state["encoder"])


def rollout(env, task, policy, seed: int | None = None, max_steps: int | None = None) -> dict:
    """One episode of `policy(obs) -> action` on `task`; returns a path (see belief.buffers)."""
    obs, _ = env.reset(seed=seed, options={"task": task})
    rows = {k: [] for k in ("obs", "actions", "rewards", "sparse_rewards", "next_obs", "dones")}
    success = False
    limit = max_steps or int(getattr(env.unwrapped, "episode_steps", 1000))
    for _ in range(limit):
        action = np.asarray(policy(obs), dtype=np.float32)
        next_obs, reward, terminated, truncated, info = env.step(action)
        rows["obs"].append(np.asarray(obs, dtype=np.float32))
        rows["actions"].append(action)
        rows["rewards"].append([float(info.get("dense_reward", reward))])
        rows["sparse_rewards"].append([float(info.get("sparse_reward", 0.0))])
        rows["next_obs"].append(np.asarray(next_obs, dtype=np.float32))
        rows["dones"].append([float(terminated)])
        success = success or bool(info.get("success", False))
        obs = next_obs
        if terminated or truncated:
            break
    path = {k: np.asarray(v, dtype=np.float32) for k, v in rows.items()}
    path["success"] = success
    path["return"] = float(path["rewards"].sum())
    path["sparse_return"] = float(path["sparse_rewards"].sum())
    return path


def adapt(env, agent: PEARLAgent, task, n_traj: int, start_context: np.ndarray, seeds, *,
          deterministic: bool, z_mode: str = "sample"):
    """Posterior-sampling adaptation: before each trajectory z ~ q(z | context so far) (the prior when the
    context is empty), then the trajectory's transitions join the context. Yields (path, context)."""
    context = start_context
    for k in range(n_traj):
        mu, var = agent.posterior(context)
        z = mu if z_mode == "mean" else agent.encoder.sample(mu, var)
        path = rollout(env, task, lambda o, z=z: agent.act(o, z, deterministic), seed=int(seeds[k]))
        context = np.concatenate([context, agent.context(path)])
        yield path, context
