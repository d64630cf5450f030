"""Soft actor-critic on an arbitrary feature vector (observation, optionally augmented with a belief).

Generic on purpose: PEARL/PERIL feed ``[obs, z]``, MELD feeds the latent-state posterior's parameters.
The actor is a tanh-squashed Gaussian written with explicit tensors (no ``torch.distributions``) so the
same module scripts/exports cleanly. Two Q networks with Polyak-averaged targets; the entropy
temperature is learned (``alpha=None``) or fixed.

Typical use::

    sac = SAC(feature_dim, action_dim, SACConfig())
    metrics = sac.update(feats, actions, rewards, next_feats, dones)

Callers that train something upstream of the features (a context encoder) pass features that carry
gradient and ``critic_aux_loss``/``extra_optimizers``: the critic loss then also trains that module,
while the actor always sees detached features (PEARL's design).

Asymmetric actor-critic: with ``critic_feature_dim`` the critic takes other (e.g. privileged,
training-time-only) features than the actor; ``update`` then gets the actor's own ``actor_obs`` and
``next_actor_obs``. Only the actor is deployed, so what the critic saw never has to exist on the robot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from belief.networks import mlp, set_requires_grad, soft_update

LOG_STD_MIN = -20.0
LOG_STD_MAX = 2.0
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_ATANH_EPS = 1e-6


@dataclass
class SACConfig:
    hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    alpha: float | None = None  # None: learn the temperature towards target_entropy
    init_alpha: float = 1.0
    target_entropy: float | None = None  # None: -action_dim
    reward_scale: float = 1.0
    grad_clip: float | None = None  # max global gradient norm per optimiser step (None: no clipping)
    # [low, high] the soft Bellman target is clipped to (None: not clipped): the bounds of the discounted
    # return (plus the entropy bonus) where rewards are bounded, so an overestimating critic cannot feed
    # its own error back through the target (on the cable twin q_mean climbed to 4x the bound, docs/meld.md)
    target_clip: tuple[float, float] | None = None
    # LayerNorm after each hidden layer of both Q nets (RLPD, Ball et al. 2023): the features feeding the
    # last layer have unit scale, so Q cannot exceed |w_last| * sqrt(width) however far the actor pushes it
    # off the data, which keeps high update-to-data critics from diverging without clipping the target
    critic_layer_norm: bool = False

    def __post_init__(self):
        self.hidden = tuple(int(h) for h in self.hidden)
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"SACConfig.gamma must be in [0, 1], got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"SACConfig.tau must be in (0, 1], got {self.tau}")
        if self.alpha is not None and self.alpha < 0:
            raise ValueError(f"SACConfig.alpha must be >= 0 or null (automatic), got {self.alpha}")
        if not isinstance(self.critic_layer_norm, bool):
            raise ValueError(f"SACConfig.critic_layer_norm must be true or false, got {self.critic_layer_norm!r}")
        if self.target_clip is not None:
            bounds = self.target_clip
            if not isinstance(bounds, list | tuple) or len(bounds) != 2 \
                    or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds) \
                    or not bounds[0] < bounds[1]:
                raise ValueError(f"SACConfig.target_clip must be null or [low, high] numbers with low < high, got "
                                 f"{bounds!r}")
            self.target_clip = (float(bounds[0]), float(bounds[1]))


def _log1m_tanh_sq(pre: Tensor) -> Tensor:
    """log(1 - tanh(x)^2), stable for large |x|."""
    return 2.0 * (math.log(2.0) - pre - F.softplus(-2.0 * pre))


class TanhGaussianActor(nn.Module):
    """pi(a | features) = tanh(N(mu, sigma)); actions in (-1, 1)."""

    def __init__(self, feature_dim: int, action_dim: int, hidden: Sequence[int] = (256, 256),
                 net: nn.Module | None = None):
        """`net` (features -> 2 x action_dim: means, log-stds) replaces the default MLP."""
        super().__init__()
        self.action_dim = action_dim
        self.net = net if net is not None else mlp(feature_dim, hidden, 2 * action_dim, out_scale=1e-3)

    def stats(self, features: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.net(features).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def forward(self, features: Tensor, noise: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Reparameterised sample: (action, log_prob (..., 1), deterministic action tanh(mu))."""
        mean, log_std = self.stats(features)
        if noise is None:
            noise = torch.randn_like(mean)
        pre = mean + log_std.exp() * noise
        action = torch.tanh(pre)
        log_prob = (-0.5 * noise.pow(2) - log_std - _HALF_LOG_2PI - _log1m_tanh_sq(pre)).sum(-1, keepdim=True)
        return action, log_prob, torch.tanh(mean)

    def act_mean(self, features: Tensor) -> Tensor:
        """The deterministic (evaluation/export) action tanh(mu)."""
        mean, _ = self.stats(features)
        return torch.tanh(mean)

    def log_prob(self, features: Tensor, action: Tensor) -> Tensor:
        """log pi(action | features) for given actions in [-1, 1] (clipped inside for atanh), (..., 1)."""
        mean, log_std = self.stats(features)
        action = action.clamp(-1.0 + _ATANH_EPS, 1.0 - _ATANH_EPS)
        pre = torch.atanh(action)
        noise = (pre - mean) / log_std.exp()
        return (-0.5 * noise.pow(2) - log_std - _HALF_LOG_2PI - _log1m_tanh_sq(pre)).sum(-1, keepdim=True)


class TwinQ(nn.Module):
    def __init__(self, feature_dim: int, action_dim: int, hidden: Sequence[int] = (256, 256),
                 layer_norm: bool = False):
        super().__init__()
        self.q1 = mlp(feature_dim + action_dim, hidden, 1, layer_norm=layer_norm)
        self.q2 = mlp(feature_dim + action_dim, hidden, 1, layer_norm=layer_norm)

    def forward(self, features: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([features, action], dim=-1)
        return self.q1(x), self.q2(x)


def _log_temperature(alpha: float) -> float:
    return math.log(max(alpha, 1e-8))  # alpha 0 (no entropy term) as a tiny positive temperature


class SAC(nn.Module):
    """Actor, twin critic, target critic, temperature and their optimisers."""

    def __init__(self, feature_dim: int, action_dim: int, config: SACConfig | None = None,
                 critic_feature_dim: int | None = None, actor_net: nn.Module | None = None):
        """`actor_net` replaces the actor's default MLP (see TanhGaussianActor)."""
        super().__init__()
        cfg = config or SACConfig()
        self.config = cfg
        self.feature_dim, self.action_dim = feature_dim, action_dim
        self.critic_feature_dim = feature_dim if critic_feature_dim is None else critic_feature_dim
        self.actor = TanhGaussianActor(feature_dim, action_dim, cfg.hidden, actor_net)
        self.critic = TwinQ(self.critic_feature_dim, action_dim, cfg.hidden, cfg.critic_layer_norm)
        self.critic_target = TwinQ(self.critic_feature_dim, action_dim, cfg.hidden, cfg.critic_layer_norm)
        self.critic_target.load_state_dict(self.critic.state_dict())
        set_requires_grad(self.critic_target, False)
        init = cfg.alpha if cfg.alpha is not None else cfg.init_alpha
        self.log_alpha = nn.Parameter(torch.tensor(_log_temperature(init), dtype=torch.float32),
                                      requires_grad=cfg.alpha is None)
        self.target_entropy = float(-action_dim if cfg.target_entropy is None else cfg.target_entropy)
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.alpha_optim = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr) if cfg.alpha is None else None
        # also when the SAC is loaded as part of a larger module (an agent's state dict)
        self.register_load_state_dict_post_hook(SAC._keep_configured_alpha)

    @property
    def alpha(self) -> Tensor:
        return self.log_alpha.exp().detach()

    def _keep_configured_alpha(self, *_) -> None:
        """Load-state-dict post hook: a configured fixed temperature (`SACConfig.alpha`) wins over the loaded
        one; a warm start from an agent that learned its temperature would otherwise freeze that value."""
        if self.config.alpha is not None:
            with torch.no_grad():
                self.log_alpha.fill_(_log_temperature(self.config.alpha))

    # --- losses (usable on their own) ----------------------------------------------------------
    def critic_loss(self, obs: Tensor, actions: Tensor, rewards: Tensor, next_obs: Tensor,
                    dones: Tensor, next_actor_obs: Tensor | None = None) -> tuple[Tensor, dict]:
        """Soft Bellman error of both Q nets; gradient reaches the critic and whatever made `obs`.
        The next action is sampled from the actor on `next_actor_obs` (default: `next_obs`)."""
        cfg = self.config
        with torch.no_grad():
            next_action, next_logp, _ = self.actor((next_obs if next_actor_obs is None else next_actor_obs).detach())
            tq1, tq2 = self.critic_target(next_obs.detach(), next_action)
            target_v = torch.min(tq1, tq2) - self.alpha * next_logp
            target = cfg.reward_scale * rewards + (1.0 - dones) * cfg.gamma * target_v
            info = {}
            if cfg.target_clip is not None:
                clipped = target.clamp(*cfg.target_clip)
                info["target_clipped"] = (clipped != target).float().mean().item()  # binds on few states
                target = clipped
        q1, q2 = self.critic(obs, actions)
        loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        return loss, {"critic_loss": loss.item(), "q_mean": q1.mean().item(), **info}

    def actor_loss(self, obs: Tensor, critic_obs: Tensor | None = None) -> tuple[Tensor, Tensor, dict]:
        """E[alpha log pi(.|obs) - min Q(critic_obs, .)] (critic_obs defaults to obs); returns (loss,
        log_prob) so the temperature can be updated."""
        action, logp, _ = self.actor(obs)
        q1, q2 = self.critic(obs if critic_obs is None else critic_obs, action)
        loss = (self.alpha * logp - torch.min(q1, q2)).mean()
        return loss, logp, {"actor_loss": loss.item(), "entropy": -logp.mean().item()}

    def alpha_loss(self, log_prob: Tensor) -> Tensor:
        return -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()

    # --- one gradient step --------------------------------------------------------------------
    def update(self, obs: Tensor, actions: Tensor, rewards: Tensor, next_obs: Tensor, dones: Tensor, *,
               actor_obs: Tensor | None = None, next_actor_obs: Tensor | None = None,
               critic_aux_loss: Tensor | None = None,
               actor_aux_loss: Tensor | None = None,
               extra_optimizers: Sequence[torch.optim.Optimizer] = ()) -> dict:
        """Critic step (plus `critic_aux_loss`, stepping `extra_optimizers` too), actor step (plus
        `actor_aux_loss`, e.g. behaviour cloning), temperature step, target update.

        Shapes: obs/next_obs (B, critic F), actions (B, A), rewards/dones (B, 1). `actor_obs` and
        `next_actor_obs` (B, actor F) are the actor's features where they differ from the critic's
        (both needed then); they default to `obs`/`next_obs`. The actor never trains the feature extractor.
        """
        if rewards.dim() == 1 or dones.dim() == 1:
            raise ValueError(f"rewards and dones must be (B, 1), got {tuple(rewards.shape)} and {tuple(dones.shape)}")
        if self.critic_feature_dim != self.feature_dim and (actor_obs is None or next_actor_obs is None):
            raise ValueError(f"the critic takes {self.critic_feature_dim} features and the actor {self.feature_dim}: "
                             "update needs actor_obs and next_actor_obs")
        closs, info = self.critic_loss(obs, actions, rewards, next_obs, dones, next_actor_obs)
        total = closs if critic_aux_loss is None else closs + critic_aux_loss
        self.critic_optim.zero_grad(set_to_none=True)
        for opt in extra_optimizers:
            opt.zero_grad(set_to_none=True)
        total.backward()
        if self.config.grad_clip:
            for opt in (self.critic_optim, *extra_optimizers):
                nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], self.config.grad_clip)
        self.critic_optim.step()
        for opt in extra_optimizers:
            opt.step()

        aloss, logp, ainfo = self.actor_loss(obs.detach() if actor_obs is None else actor_obs.detach(),
                                             critic_obs=None if actor_obs is None else obs.detach())
        if actor_aux_loss is not None:
            aloss = aloss + actor_aux_loss
        self.actor_optim.zero_grad(set_to_none=True)
        aloss.backward()
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.actor.parameters(), self.config.grad_clip)
        self.actor_optim.step()
        info.update(ainfo)

        if self.alpha_optim is not None:
            self.alpha_optim.zero_grad(set_to_none=True)
            self.alpha_loss(logp).backward()
            self.alpha_optim.step()
        info["alpha"] = float(self.alpha)
        soft_update(self.critic_target, self.critic, self.config.tau)
        return info

    # --- checkpointing --------------------------------------------------------------------------
    def optimizer_state(self) -> dict:
        state = {"actor": self.actor_optim.state_dict(), "critic": self.critic_optim.state_dict()}
        if self.alpha_optim is not None:
            state["alpha"] = self.alpha_optim.state_dict()
        return state

    def load_optimizer_state(self, state: dict) -> None:
        self.actor_optim.load_state_dict(state["actor"])
        self.critic_optim.load_state_dict(state["critic"])
        if self.alpha_optim is not None:
            self.alpha_optim.load_state_dict(state["alpha"])
