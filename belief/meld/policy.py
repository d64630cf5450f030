"""The per-step MELD policy: filter one (image, prev_action, reward) into the belief, then act on it.

Explicit state (float32): ``[first_flag, z2]`` -- the only thing the filter carries between steps --
then, with a task latent, the running sums of its factors' precisions and weighted means (2 x c).
``first_flag`` is 1 at the start of a trial (first-step posterior q(z1|x_0), p(z2|z1)), then 0. The belief
is *not* reset at episode boundaries inside a trial: that is how episode 2 knows which port was right
(with ModelConfig.restart_z_each_episode z restarts at the reset frame, prev_action all zeros, and the
task latent's sums alone carry over). With ModelConfig.actor_holds_episode_port the state ends with
the port probabilities of the episode's first frame (k), which the belief carries in place of the
current ones for the rest of the episode; with ModelConfig.actor_retakes_port_after n > 0 it ends with
one more number, the count of consecutive frames the head has named another port, and the held
probabilities are re-taken from the head when it reaches n.
`step` is deterministic (posterior means as latents, mean action tanh(mu)); `step_sampled` draws the
latents and the action, as during data collection. Both run the same code, so training, evaluation and
the exported module agree.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from belief.meld.model import LatentModel, capped_evidence
from belief.sac import LOG_STD_MAX, LOG_STD_MIN, TanhGaussianActor


class MeldPolicy(nn.Module):
    def __init__(self, model: LatentModel, actor: TanhGaussianActor):
        super().__init__()
        self.model = model
        # only the actor's MLP: TanhGaussianActor.forward is not TorchScript-compatible, and the
        # deterministic action tanh(mu) is all the exported step needs (checked against act_mean in tests)
        self.actor_net = actor.net
        self.log_std_min, self.log_std_max = float(LOG_STD_MIN), float(LOG_STD_MAX)
        self.z2_dim = model.z2_dim
        self.z1_dim = model.z1_dim
        self.task_latent_dim = model.task_latent_dim
        self.holds_port = model.actor_holds_episode_port
        self.task_classes = model.task_classes
        self.retake_after = model.actor_retakes_port_after if self.holds_port else 0
        self.state_dim = (1 + model.z2_dim + 2 * model.task_latent_dim
                          + (model.task_classes if self.holds_port else 0) + (1 if self.retake_after else 0))

    @torch.jit.export
    def initial_state(self) -> torch.Tensor:
        state = torch.zeros(self.state_dim)
        state[0] = 1.0
        return state

    @torch.jit.unused
    def tempered_state(self, state: torch.Tensor, scale: float) -> torch.Tensor:
        """`state` with the task latent's evidence (its precision and weighted-mean sums) scaled by `scale`
        in [0, 1]: about the same estimate, held with less confidence (0 = the prior). An evaluation
        diagnostic at episode starts."""
        if not 0.0 <= scale <= 1.0:
            raise ValueError(f"carried evidence scale must be in [0, 1], got {scale}")
        if self.task_latent_dim == 0:
            raise ValueError("a tempered carry needs the task latent (agent.model.task_latent_dim > 0)")
        z2_end, c2 = 1 + self.z2_dim, 2 * self.task_latent_dim
        return torch.cat([state[:z2_end], state[z2_end:z2_end + c2] * scale, state[z2_end + c2:]])

    @torch.jit.unused
    def capped_state(self, state: torch.Tensor, cap: float) -> torch.Tensor:
        """`state` with the task latent's evidence capped at precision `cap` per dimension, its estimate
        (posterior mean) kept: a confident estimate is held less confidently while weak evidence (a
        failed episode's) is carried whole, where `tempered_state` pulls weak evidence to the prior. An
        evaluation diagnostic at episode starts."""
        if not cap > 0.0:
            raise ValueError(f"carried evidence cap must be a precision > 0, got {cap}")
        if self.task_latent_dim == 0:
            raise ValueError("a capped carry needs the task latent (agent.model.task_latent_dim > 0)")
        z2_end, c = 1 + self.z2_dim, self.task_latent_dim
        prec, wmean = capped_evidence(state[z2_end:z2_end + c], state[z2_end + c:z2_end + 2 * c], cap)
        return torch.cat([state[:z2_end], prec, wmean, state[z2_end + 2 * c:]])

    @torch.jit.export
    def belief(self, obs: torch.Tensor, prev_action: torch.Tensor, reward: torch.Tensor,
               state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Deterministic filter step: (belief (belief_dim,), new state)."""
        return self._filter(obs, prev_action, reward, state, None, None)

    def _filter(self, obs: torch.Tensor, prev_action: torch.Tensor, reward: torch.Tensor, state: torch.Tensor,
                noise1: Optional[torch.Tensor], noise2: Optional[torch.Tensor]  # noqa: UP045 (TorchScript)
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """One filter step (means when the noises are None): (belief (belief_dim,), new state)."""
        feat = self.model.features(obs.unsqueeze(0), reward.reshape(1))
        first = state[0:1] > 0.5
        z2_end = 1 + self.z2_dim
        a_prev = prev_action.unsqueeze(0)
        mu1, std1, z1, mu2, std2, z2 = self.model.filter_step(
            feat, state[1:z2_end].unsqueeze(0), a_prev, first, noise1, noise2)
        parts = [torch.zeros(1, device=z2.device), z2[0]]
        mu_c: Optional[torch.Tensor] = None  # noqa: UP045
        std_c: Optional[torch.Tensor] = None  # noqa: UP045
        if self.task_latent_dim > 0:
            sums_end = z2_end + 2 * self.task_latent_dim
            mu_c, std_c, sums = self.model.task_step(feat, a_prev, state[z2_end:sums_end].unsqueeze(0))
            parts.append(sums[0])
        belief = self.model.belief_vector(mu1, std1, mu2, std2, mu_c, std_c)[0]
        if self.holds_port:
            # the reset frame (and a trial's first) takes the head's probabilities; later frames keep them
            # (or, with retake_after, re-take them once the head has named another port that many frames)
            k, end = self.task_classes, state.shape[0] - (1 if self.retake_after else 0)
            live, held = belief[belief.shape[0] - k:], state[end - k:end]
            take = first | self.model.reset_frame(a_prev)[0]
            if self.retake_after:
                away = torch.where(live.argmax() != held.argmax(), state[end:] + 1.0, torch.zeros_like(state[end:]))
                take = take | (away >= self.retake_after)
                held = torch.where(take, live, held)
                parts += [held, torch.where(take, torch.zeros_like(away), away)]
            else:
                held = torch.where(take, live, held)
                parts.append(held)
            belief = torch.cat([belief[:belief.shape[0] - k], held])
        return belief, torch.cat(parts)

    @torch.jit.export
    def act(self, belief: torch.Tensor) -> torch.Tensor:
        """Deterministic action tanh(mu) (same as TanhGaussianActor.act_mean)."""
        mean, _ = self.actor_net(self.model.actor_input(belief)).chunk(2, dim=-1)
        return torch.tanh(mean)

    @torch.jit.export
    def step(self, obs: torch.Tensor, prev_action: torch.Tensor, reward: torch.Tensor,
             state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        belief, new_state = self.belief(obs, prev_action, reward, state)
        return self.act(belief), new_state

    def forward(self, obs, prev_action, reward, state):
        return self.step(obs, prev_action, reward, state)

    @torch.jit.unused
    def handed(self, belief: torch.Tensor, port: int) -> torch.Tensor:
        """`belief` with the task head's port probabilities replaced by `port`'s one-hot (a task class):
        what the actor sees when it is handed the port (meta-training's handed trials, an evaluation
        diagnostic)."""
        k = self.model.task_classes
        if not self.model.task_probs_in_belief:
            raise ValueError("handing the actor a port needs the port probabilities in the belief "
                             "(agent.model.task_probs_in_belief)")
        if not 0 <= port < k:
            raise ValueError(f"handed_port must be a task class in [0, {k}), got {port}")
        return torch.cat([belief[:-k], torch.nn.functional.one_hot(torch.tensor(port), k).to(belief)])

    @torch.no_grad()
    def step_sampled(self, obs: torch.Tensor, prev_action: torch.Tensor, reward: torch.Tensor,
                     state: torch.Tensor, handed_port: int | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stochastic step for data collection: sampled latents and action. (action, state, belief).
        With `handed_port` (a task class) the actor acts on that port's one-hot in place of the task
        head's probabilities (meta-training only, TrainConfig.true_port_share); the belief returned is
        the model's own."""
        n1 = torch.randn(1, self.z1_dim, device=state.device)
        n2 = torch.randn(1, self.z2_dim, device=state.device)
        belief, new_state = self._filter(obs, prev_action, reward, state, n1, n2)
        seen = belief if handed_port is None else self.handed(belief, handed_port)
        mean, log_std = self.actor_net(self.model.actor_input(seen)).chunk(2, dim=-1)
        log_std = log_std.clamp(self.log_std_min, self.log_std_max)
        action = torch.tanh(mean + log_std.exp() * torch.randn_like(mean))
        return action, new_state, belief
