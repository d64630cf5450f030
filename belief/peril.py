"""PERIL (Prat & Johns): PEARL whose context starts from K demonstrations, plus imitation terms.

Losses added to PEARL's (weights from the paper):
- behaviour cloning, ``bc_weight`` (0.5): -log pi(a_demo | s_demo, z) on the task's demonstration buffer,
  trained into the actor (z detached);
- mutual information, ``mi_weight`` (0.2): a Barber-Agakov lower bound on I(z; a | s) with the policy
  as decoder, -log pi(a | s, z) with the gradient going to the encoder only (actor weights frozen for
  this term), averaged over the task's demonstrations (weight 1) and its replay, where each replayed
  action is weighted by rho = min(pi(a|s,z) / pi_b(a|s,z), mi_clip): a truncated importance weight
  against a frozen copy of the behaviour policy taken at each collection round, so off-policy actions
  count in proportion to how likely the current policy still is to take them;
- auxiliary task descriptor (PERIL-A), ``aux_weight`` (4.0): MSE of a head on z predicting the
  privileged task descriptor (standardised over the training tasks; constant fields left out), into
  encoder and head.
Context per gradient step = demonstration transitions + the latest round's exploration. Demonstration
buffers keep successful rollouts that beat the worst stored demonstration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from belief.buffers import DemoBuffer
from belief.networks import mlp, set_requires_grad
from belief.pearl import PEARLAgent, PEARLConfig, TrainData
from belief.sac import TanhGaussianActor

BC_ACTION_CLIP = 0.995  # demonstrated actions at +-1 would make atanh blow up


@dataclass
class PERILConfig(PEARLConfig):
    n_demos: int = 3
    bc_weight: float = 0.5
    mi_weight: float = 0.2
    aux_weight: float = 0.0  # 4.0 for PERIL-A
    mi_clip: float = 1.0
    demo_context_size: int = 64  # demonstration transitions in each training context
    demo_batch_size: int = 64  # demonstration transitions per task for the BC loss
    demo_buffer_size: int = 6  # demos + better rollouts kept per task
    aux_hidden: tuple[int, ...] = (64,)


class PERILAgent(PEARLAgent):
    algo = "peril"
    uses_demos = True

    @staticmethod
    def default_config() -> PERILConfig:
        return PERILConfig()

    def _build_extras(self) -> None:
        cfg: PERILConfig = self.config
        # frozen behaviour policy for the MI term's importance weights
        self.behaviour = TanhGaussianActor(self.obs_dim + cfg.latent_dim, self.action_dim, cfg.sac.hidden)
        self.behaviour.load_state_dict(self.sac.actor.state_dict())
        set_requires_grad(self.behaviour, False)
        self.aux_head = (mlp(cfg.latent_dim, cfg.aux_hidden, self.descriptor_dim)
                         if cfg.aux_weight > 0 and self.descriptor_dim > 0 else None)
        if cfg.aux_weight > 0 and self.descriptor_dim <= 0:
            raise ValueError("PERIL-A (aux_weight > 0) needs task descriptors (descriptor_dim > 0)")

    def encoder_parameters(self):
        params = list(self.encoder.parameters())
        return params + list(self.aux_head.parameters()) if self.aux_head is not None else params

    def initial_context(self, demos: DemoBuffer | None) -> np.ndarray:
        if demos is None or len(demos) == 0:
            raise ValueError("PERIL needs demonstrations of the task to start from")
        return self.context(demos.transitions(self.config.n_demos))

    def sample_context(self, data: TrainData, task: int, rng: np.random.Generator) -> np.ndarray:
        cfg: PERILConfig = self.config
        demo = self.context(data.demos[task].sample(cfg.demo_context_size, rng))
        return np.concatenate([demo, self.context(data.replay.enc[task].sample(cfg.context_size, rng))])

    def on_collection_round(self) -> None:
        self.behaviour.load_state_dict(self.sac.actor.state_dict())

    def extra_losses(self, z: Tensor, obs: Tensor, batch: dict, data: TrainData, tasks: np.ndarray,
                     rng: np.random.Generator):
        cfg: PERILConfig = self.config
        info = {}
        n_tasks = len(tasks)
        # behaviour cloning into the actor (z detached: imitation does not shape the belief)
        demo = [data.demos[int(t)].sample(cfg.demo_batch_size, rng) for t in tasks]
        d_obs = torch.as_tensor(np.stack([d["obs"] for d in demo]))
        d_act = torch.as_tensor(np.stack([d["actions"] for d in demo])).clamp(-BC_ACTION_CLIP, BC_ACTION_CLIP)
        zd = z.detach().unsqueeze(1).expand(n_tasks, cfg.demo_batch_size, cfg.latent_dim)
        bc = -self.sac.actor.log_prob(torch.cat([d_obs, zd], -1), d_act).mean()
        info["bc_nll"] = bc.item()
        actor_loss = cfg.bc_weight * bc if cfg.bc_weight > 0 else None

        enc_loss = None
        if cfg.mi_weight > 0:
            # demonstrations: expert data, weight 1; replay: truncated importance weights vs pi_b
            d_feats = torch.cat([d_obs, z.unsqueeze(1).expand_as(zd)], -1)
            mi_demo = -_log_prob_frozen(self.sac.actor, d_feats, d_act).mean()
            zb = z.unsqueeze(1).expand(n_tasks, obs.shape[1], cfg.latent_dim)
            feats = torch.cat([obs, zb], -1)
            actions = batch["actions"].clamp(-BC_ACTION_CLIP, BC_ACTION_CLIP)
            logp = _log_prob_frozen(self.sac.actor, feats, actions)
            with torch.no_grad():
                rho = (logp - self.behaviour.log_prob(feats, actions)).exp().clamp(max=cfg.mi_clip)
            mi = 0.5 * (mi_demo - (rho * logp).mean())
            info["mi_loss"] = mi.item()
            info["mi_rho"] = rho.mean().item()
            enc_loss = cfg.mi_weight * mi
        if self.aux_head is not None:
            # standardised targets: descriptor dims that vary across training tasks, unit scale, so the
            # loss is not diluted by constant fields (family one-hot, unused angles)
            desc = torch.as_tensor(data.descriptors, dtype=torch.float32)
            mean, std = desc.mean(0), desc.std(0, unbiased=False)
            varying = std > 1e-6
            target = ((desc[torch.as_tensor(np.asarray(tasks))] - mean) / std.clamp_min(1e-6))[:, varying]
            aux = F.mse_loss(self.aux_head(z)[:, varying], target)
            info["aux_mse"] = aux.item()
            enc_loss = cfg.aux_weight * aux if enc_loss is None else enc_loss + cfg.aux_weight * aux
        return enc_loss, actor_loss, info


def _log_prob_frozen(actor: TanhGaussianActor, feats: Tensor, actions: Tensor) -> Tensor:
    """actor.log_prob with the actor's weights left out of the graph: the gradient reaches the inputs (z)
    only. requires_grad is recorded at forward time, so restoring it afterwards is safe."""
    set_requires_grad(actor, False)
    try:
        return actor.log_prob(feats, actions)
    finally:
        set_requires_grad(actor, True)


def make_peril_a_config(**kw) -> PERILConfig:
    kw.setdefault("aux_weight", 4.0)
    return PERILConfig(**kw)
