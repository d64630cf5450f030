"""MELD's latent state model (after SLAC, Lee et al. 2020; Zhao et al. 2020).

Two layers of latent variables per time step, z1 (small, stochastic) and z2 (large, carries memory):

    prior      p(z1_0) = N(0, I)                     p(z2_0 | z1_0)
               p(z1_t | z2_{t-1}, a_{t-1})            p(z2_t | z1_t, z2_{t-1}, a_{t-1})
    posterior  q(z1_0 | x_0)                          q(z2_0 | z1_0)      = p(z2_0 | z1_0)
               q(z1_t | x_t, z2_{t-1}, a_{t-1})       q(z2_t | z1_t, ...) = p(z2_t | z1_t, ...)
    decoders   p(image_t | z_t)   (fixed std)         p(reward_t | z_t)   (learned std)

MELD's observation x_t is the image *and* the reward that arrived with it ([I_t, r_{t-1}] in the
paper's indexing): the reward is tiled and concatenated to the conv features, so the task (which port)
becomes part of the latent state and the posterior *is* the belief. Because q(z2|.) shares p(z2|.), the
KL term only involves z1. ELBO = log p(images) + w_r log p(rewards) - KL(q(z1) || p(z1)).

The image is the 64x128 side-by-side stack of scene and wrist camera; the encoder's 5 conv layers end
with a rectangular (4x8) filter so the stack collapses to one feature vector, and the decoder mirrors it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from belief.checks import is_whole_number
from belief.networks import mlp


@dataclass
class ModelConfig:
    image_height: int = 64
    image_width: int = 128  # 128 = two 64x64 cameras side by side; 64 = one camera
    action_dim: int = 5
    base_depth: int = 32  # conv filters base, 2x, 4x, 8x, 8x (32...256 as in SLAC/MELD)
    z1_dim: int = 32
    z2_dim: int = 256
    hidden: int = 0  # Gaussian heads' hidden width; 0 = 8 * base_depth (256, as in MELD)
    decoder_std: float = math.sqrt(0.1)  # fixed image likelihood std (MELD default)
    reward_weight: float = 8.0  # MELD's elbo_reward_weight
    reward_repeat: int = 0  # copies of the reward tiled onto the features; 0 = base_depth
    reward_scale: float = 1.0  # rewards are multiplied by this before entering / being reconstructed
    kl_weight: float = 1.0
    # frames per sequence whose image is reconstructed in a gradient step; 0 = all. A random subset is an
    # unbiased estimate of the same per-frame image log-likelihood at a fraction of the decoder's cost,
    # which dominates a CPU step (KL and reward terms still cover every frame).
    decoded_frames: int = 0
    # weight of a one-step-ahead reward term: r_{t+1} decoded from the dynamics prior's prediction of
    # z_{t+1} from the posterior z_t and a_t (PlaNet-style overshooting, one step, reward only). 0 = MELD.
    # The posterior sees each reward as an input, so the plain reward term can be met by echoing the
    # current reward without inferring the task; this one can only be met by carrying the task in z_t.
    predictive_reward_weight: float = 0.0
    # how far ahead that term predicts: rewards r_{t+1} ... r_{t+K} from the prior rolled open loop from
    # the posterior z_t with the actions taken (PlaNet's latent overshooting, on the reward). K > 1 asks
    # z_t to hold the task for K steps without new evidence, and the rollouts from an episode's last
    # frames run through the reset frame into the next episode: the port must survive the boundary.
    predictive_reward_horizon: int = 1
    # weight of a task-identification term: cross-entropy of a head on the posterior mean of z2 that
    # predicts a discrete task label (the cable twin's correct port) at every frame of a trial. The label
    # is privileged, used in meta-training only (as the shaped reward is); 0 = MELD. It asks the belief to
    # hold p(task | history so far), and to carry it over the episode boundary.
    task_id_weight: float = 0.0
    task_classes: int = 0  # number of label values; the trainer sets it from the task set
    # append that head's class probabilities softmax(task_head(mu2)) to the belief the actor and critic see
    # (and the exported policy computes): a low-dimensional, already-decoded task signal next to the 2 x
    # (z1 + z2) posterior parameters, the way the privileged oracle gets the port as a one-hot. The head
    # is still trained by the ELBO's task term only (the actor-critic sees the belief detached). False = MELD.
    task_probs_in_belief: bool = False
    # feed the transition heads (z1 prior, z1 posterior, z2 transition) an explicit episode-start flag,
    # 1 where the previous action is exactly zero: the reset frame of every episode after the first
    # (trials and the policy server enter it with prev_action = 0; a policy never commands exact zeros).
    # The arm jumps back to its start pose there while the task stays the same; without the flag the
    # heads must tell that jump from "no motion" by an all-zero action vector alone, learnt from one
    # boundary per trial (RL^2 gives its recurrent policy such a termination flag). False = MELD.
    episode_start_input: bool = False
    # at the reset frame of every episode after the first (previous action exactly zero), z2 is carried
    # over unchanged instead of drawn from the transition: z1 still reads the new image (the arm jumped
    # back to its start pose), but that jump cannot rewrite the slow latent that holds the task. The same
    # rule applies to the open-loop rollouts of the predictive reward term. False = MELD.
    carry_z2_over_reset: bool = False
    # size of a task latent c held beside z1/z2 for the whole trial (PEARL's permutation-invariant
    # context posterior, filtered): every frame adds one Gaussian factor N(mu_i, std_i) from its features
    # and previous action, and q(c_t) is the product of N(0, I) with the factors of frames 0..t. Sums
    # only grow, so no transition and no reset can rewrite what earlier frames said about the task.
    # c joins the reward decoder's input (and the predictive rollouts', fixed over the rollout), the task
    # head reads its mean instead of mu2, and (mu_c, std_c) join the belief. KL(q(c_T) || N(0, I)) enters
    # the ELBO once per trial (divided by its length, like the per-frame terms). 0 = MELD.
    task_latent_dim: int = 0
    # at the reset frame of every episode after the first (previous action exactly zero), z1 and z2
    # restart as at a trial's start (first-step posterior, N(0, I) prior) and only the task latent c
    # carries the trial's memory over: episode 2 then starts from the belief state episode 1 started
    # from, except that c already names the task, so reading c is the actor's one way to do better in
    # episode 2 than in episode 1. Needs task_latent_dim > 0. False = MELD.
    restart_z_each_episode: bool = False
    # the task latent's accumulated evidence (precision and weighted-mean sums) is scaled by this at each
    # episode's reset frame: the same estimate carried with less confidence, in filtering and the exported
    # step alike, so the actor trains on the belief it acts on in episode 2 (evaluate --carry-scale showed
    # a fully carried, collapsed task belief costs episode 2's insertion). 1 = carried whole (MELD).
    task_evidence_carry: float = 1.0
    # the task latent's accumulated precision is capped at this, per dimension, at each episode's reset
    # frame, its estimate (posterior mean) kept: a confident estimate is carried less confidently while
    # weak evidence (a failed episode's, spread over many frames) is carried whole, where
    # task_evidence_carry pulls it to the prior with the rest. In filtering and the exported step alike.
    # 0 = no cap (MELD).
    task_evidence_cap: float = 0.0
    # false: the actor sees the task latent's columns of the belief at its prior (mean 0, std 1), so the
    # task reaches it only through the task head's port probabilities (needs task_probs_in_belief); the
    # critic still sees the whole belief. The actor's input keeps its size, so a warm start from an agent
    # that saw the whole belief still fits. Tried against the carried belief's cost to episode 2's
    # insertion, it did not help (the confident probabilities alone moved the actor, docs/meld.md,
    # fifteenth session); training on with the whole belief did. True = MELD.
    actor_sees_task_latent: bool = True
    # true: the actor sees the task head's port probabilities as a one-hot of the most probable port
    # (ties to the lowest index), the critic still the probabilities themselves (needs
    # task_probs_in_belief). The actor commits to one port under an uncertain belief instead of
    # averaging over ports: after a failed episode the belief moves mass off the port it tried, the
    # most probable port becomes another one, and the actor would go there with the skill it learnt
    # under a confident belief. Same input size, so a warm start fits. Tried in the sparse stage, the
    # actor kept a habitual port whatever the one-hot said (docs/meld.md, twenty-seventh session).
    # False = the probabilities (MELD).
    actor_commits_to_port: bool = False
    # true: acting, the committed actor is held to the port the head names at each episode's first frame
    # (the reset frame) for the whole episode; the belief's port probabilities are those of that frame
    # (`MeldPolicy`, exported step alike). The head's argmax flipped 3 times a trial within episode 1
    # (docs/meld.md, thirtieth session), each flip re-targeting the arm mid-reach. Needs
    # actor_commits_to_port and an actor-critic trained on the true port (agent.ac_true_port), which
    # never sees the head's probabilities. False = the head's current argmax at every step.
    actor_holds_episode_port: bool = False
    # n > 0: the held port is re-taken from the head once the head has named another port on n consecutive
    # frames, so an episode can leave a port the belief has ruled out (the plug seated there without the
    # latch's click) for the next one: a search within the episode driven by the belief. Consecutive frames,
    # not the first disagreement, because the head's argmax flickers during a reach (thirtieth session).
    # Needs actor_holds_episode_port. 0 = held for the whole episode.
    actor_retakes_port_after: int = 0

    def __post_init__(self):
        if self.image_height % 16 or self.image_width % 16:
            raise ValueError(f"image size must be a multiple of 16 for the 4 strided convs, got "
                             f"{self.image_height}x{self.image_width}")
        for name in ("base_depth", "z1_dim", "z2_dim", "action_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
        if self.predictive_reward_weight < 0:
            raise ValueError(f"ModelConfig.predictive_reward_weight must be >= 0, got {self.predictive_reward_weight}")
        if not isinstance(self.predictive_reward_horizon, int) or self.predictive_reward_horizon < 1:
            raise ValueError(f"ModelConfig.predictive_reward_horizon must be >= 1, got {self.predictive_reward_horizon}")
        if self.task_id_weight < 0:
            raise ValueError(f"ModelConfig.task_id_weight must be >= 0, got {self.task_id_weight}")
        if self.task_id_weight > 0 and self.task_classes == 1:
            raise ValueError("ModelConfig.task_classes must be >= 2 for the task-identification term")
        for name in ("task_probs_in_belief", "episode_start_input", "carry_z2_over_reset", "restart_z_each_episode",
                     "actor_sees_task_latent", "actor_commits_to_port", "actor_holds_episode_port"):
            if not isinstance(getattr(self, name), bool):  # a YAML typo ("ture") must not switch one on
                raise ValueError(f"ModelConfig.{name} must be true or false, got {getattr(self, name)!r}")
        if self.task_probs_in_belief and self.task_id_weight <= 0:
            raise ValueError("ModelConfig.task_probs_in_belief needs the task head: set task_id_weight > 0")
        if not is_whole_number(self.task_latent_dim) or self.task_latent_dim < 0:
            raise ValueError(f"ModelConfig.task_latent_dim must be a whole number >= 0 (0 = MELD), got "
                             f"{self.task_latent_dim!r}")
        if self.restart_z_each_episode and not self.task_latent_dim:
            raise ValueError("ModelConfig.restart_z_each_episode needs a task latent to carry the trial's memory: "
                             "set task_latent_dim > 0")
        if self.restart_z_each_episode and self.carry_z2_over_reset:
            raise ValueError("ModelConfig.restart_z_each_episode and carry_z2_over_reset contradict each other "
                             "(z2 restarts vs z2 carried over the reset frame): set one")
        if isinstance(self.task_evidence_carry, bool) or not 0.0 < self.task_evidence_carry <= 1.0:
            raise ValueError(f"ModelConfig.task_evidence_carry must be in (0, 1] (1 = carried whole), got "
                             f"{self.task_evidence_carry!r}")
        if self.task_evidence_carry != 1.0 and not self.task_latent_dim:
            raise ValueError("ModelConfig.task_evidence_carry scales the task latent's evidence: set task_latent_dim > 0")
        if isinstance(self.task_evidence_cap, bool) or not self.task_evidence_cap >= 0.0:
            raise ValueError(f"ModelConfig.task_evidence_cap must be a precision >= 0 (0 = no cap), got "
                             f"{self.task_evidence_cap!r}")
        if self.task_evidence_cap and not self.task_latent_dim:
            raise ValueError("ModelConfig.task_evidence_cap caps the task latent's evidence: set task_latent_dim > 0")
        if self.task_evidence_cap and self.task_evidence_carry != 1.0:
            raise ValueError("ModelConfig.task_evidence_cap and task_evidence_carry both temper the carried task "
                             "evidence (cap vs scale): set one")
        if not self.actor_sees_task_latent and not (self.task_latent_dim and self.task_probs_in_belief):
            raise ValueError("ModelConfig.actor_sees_task_latent: false hides the task latent from the actor and "
                             "leaves it the port probabilities: it needs task_latent_dim > 0 and task_probs_in_belief")
        if self.actor_commits_to_port and not self.task_probs_in_belief:
            raise ValueError("ModelConfig.actor_commits_to_port turns the task head's port probabilities into the "
                             "most probable port for the actor: it needs task_probs_in_belief")
        if self.actor_holds_episode_port and not self.actor_commits_to_port:
            raise ValueError("ModelConfig.actor_holds_episode_port holds the committed actor's port over an episode: "
                             "it needs actor_commits_to_port")
        if not is_whole_number(self.actor_retakes_port_after) or self.actor_retakes_port_after < 0:
            raise ValueError(f"ModelConfig.actor_retakes_port_after must be a whole number of frames >= 0 (0 = held "
                             f"for the episode), got {self.actor_retakes_port_after!r}")
        if self.actor_retakes_port_after and not self.actor_holds_episode_port:
            raise ValueError("ModelConfig.actor_retakes_port_after re-takes the held port within an episode: it needs "
                             "actor_holds_episode_port")
        if self.decoded_frames < 0:
            raise ValueError(f"ModelConfig.decoded_frames must be >= 0 (0 = all), got {self.decoded_frames}")

    @property
    def feature_dim(self) -> int:
        return 8 * self.base_depth

    @property
    def hidden_dim(self) -> int:
        return self.hidden or 8 * self.base_depth

    @property
    def repeat(self) -> int:
        return self.reward_repeat or self.base_depth

    @property
    def belief_dim(self) -> int:
        """Size of what the actor and critic see: (mean, std) of z1, z2 and the task latent c, then the
        task head's class probabilities when task_probs_in_belief."""
        return (2 * (self.z1_dim + self.z2_dim + self.task_latent_dim)
                + (self.task_classes if self.task_probs_in_belief else 0))


def normalise_image(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-0.5, 0.5]."""
    return images.float().div(255.0).sub(0.5).movedim(-1, -3)


class Encoder(nn.Module):
    """5 conv layers: 5x5/2, 3x3/2 x3, then a (H/16)x(W/16) 'valid' filter (4x8 for the stacked pair)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        b = cfg.base_depth
        self.convs = nn.ModuleList([
            nn.Conv2d(3, b, 5, 2, padding=2),
            nn.Conv2d(b, 2 * b, 3, 2, padding=1),
            nn.Conv2d(2 * b, 4 * b, 3, 2, padding=1),
            nn.Conv2d(4 * b, 8 * b, 3, 2, padding=1),
            nn.Conv2d(8 * b, 8 * b, (cfg.image_height // 16, cfg.image_width // 16)),
        ])
        self.out_dim = 8 * b

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = normalise_image(images)
        x = x.reshape([-1] + list(x.shape[-3:]))
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return x.reshape(list(images.shape[:-3]) + [self.out_dim])


class Decoder(nn.Module):
    """Mirror of the encoder: latent -> (H/16)x(W/16) -> ... -> H x W mean image (normalised units)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        b = cfg.base_depth
        self.deconvs = nn.ModuleList([
            nn.ConvTranspose2d(cfg.z1_dim + cfg.z2_dim, 8 * b, (cfg.image_height // 16, cfg.image_width // 16)),
            nn.ConvTranspose2d(8 * b, 4 * b, 3, 2, padding=1, output_padding=1),
            nn.ConvTranspose2d(4 * b, 2 * b, 3, 2, padding=1, output_padding=1),
            nn.ConvTranspose2d(2 * b, b, 3, 2, padding=1, output_padding=1),
            nn.ConvTranspose2d(b, 3, 5, 2, padding=2, output_padding=1),
        ])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.reshape(-1, z.shape[-1], 1, 1)
        for i, deconv in enumerate(self.deconvs):
            x = deconv(x)
            if i < len(self.deconvs) - 1:
                x = F.leaky_relu(x, 0.2)
        return x.reshape(list(z.shape[:-1]) + list(x.shape[-3:]))


def _leaky() -> nn.Module:
    return nn.LeakyReLU(0.2)


class GaussianHead(nn.Module):
    """Diagonal Gaussian whose mean and std come from a 2-hidden-layer MLP of the concatenated inputs."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int):
        super().__init__()
        self.net = mlp(in_dim, [hidden, hidden], 2 * out_dim, activation=_leaky)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = self.net(x).chunk(2, dim=-1)
        return mean, F.softplus(raw) + 1e-5


def gaussian_kl(mu_q, std_q, mu_p, std_p) -> torch.Tensor:
    """KL(N(mu_q, std_q) || N(mu_p, std_p)) summed over the last dim (analytic, >= 0)."""
    var_q, var_p = std_q.pow(2), std_p.pow(2)
    kl = torch.log(std_p / std_q) + (var_q + (mu_q - mu_p).pow(2)) / (2 * var_p) - 0.5
    return kl.sum(-1)


def gaussian_log_prob(x, mu, std) -> torch.Tensor:
    """log N(x; mu, std) summed over the last dim."""
    return (-0.5 * ((x - mu) / std).pow(2) - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)


def belief_columns(z1_dim: int, z2_dim: int, task_latent_dim: int = 0) -> dict[str, slice]:
    """Where mu1, std1, mu2, std2 (and mu_c, std_c with a task latent) sit in a belief vector
    (`LatentModel.belief`'s layout)."""
    names, sizes = ["mu1", "std1", "mu2", "std2"], [z1_dim, z1_dim, z2_dim, z2_dim]
    if task_latent_dim:
        names, sizes = names + ["mu_c", "std_c"], sizes + [task_latent_dim, task_latent_dim]
    ends = np.cumsum([0] + sizes)
    return {name: slice(int(a), int(b)) for name, a, b in zip(names, ends[:-1], ends[1:], strict=True)}


def task_posterior(prec_sum: torch.Tensor, wmean_sum: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q(c) = N(0, I) x prod_i N(mu_i, std_i) from the sums of the factors' precisions 1/std_i^2 and
    precision-weighted means mu_i/std_i^2: (mean, std)."""
    prec = 1.0 + prec_sum
    return wmean_sum / prec, prec.rsqrt()


def capped_evidence(prec_sum: torch.Tensor, wmean_sum: torch.Tensor, cap: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The task latent's evidence sums with the precision capped at `cap` per dimension and the
    posterior mean under the N(0, I) prior kept: (precision sums, weighted-mean sums)."""
    capped = prec_sum.clamp(max=cap)
    return capped, wmean_sum / (1.0 + prec_sum) * (1.0 + capped)


class LatentModel(nn.Module):
    """The MELD/SLAC sequential latent variable model; `filter_step` is the per-step belief update."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # plain attributes (not the dataclass) so TorchScript can compile the filtering step
        self.reward_scale, self.repeat = float(cfg.reward_scale), int(cfg.repeat)
        self.z1_dim, self.z2_dim, self.action_dim = cfg.z1_dim, cfg.z2_dim, cfg.action_dim
        self.episode_start_input = bool(cfg.episode_start_input)
        self.carry_z2_over_reset = bool(cfg.carry_z2_over_reset)
        self.restart_z_each_episode = bool(cfg.restart_z_each_episode)
        self.task_evidence_carry = float(cfg.task_evidence_carry)
        self.task_evidence_cap = float(cfg.task_evidence_cap)
        h, f, z1, z2 = cfg.hidden_dim, cfg.feature_dim + cfg.repeat, cfg.z1_dim, cfg.z2_dim
        a = cfg.action_dim + int(self.episode_start_input)  # the flag travels with the previous action
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.z1_first_posterior = GaussianHead(f, z1, h)          # q(z1_0 | x_0)
        self.z2_first = GaussianHead(z1, z2, h)                   # p(z2_0 | z1_0) = q(z2_0 | z1_0)
        # a_{t-1} below is the previous action, plus the episode-start flag when episode_start_input
        self.z1_prior = GaussianHead(z2 + a, z1, h)               # p(z1_t | z2_{t-1}, a_{t-1})
        self.z1_posterior = GaussianHead(f + z2 + a, z1, h)       # q(z1_t | x_t, z2_{t-1}, a_{t-1})
        self.z2_transition = GaussianHead(z1 + z2 + a, z2, h)     # p(z2_t | z1_t, z2_{t-1}, a_{t-1}) = q(.)
        self.task_latent_dim = int(cfg.task_latent_dim)
        c = self.task_latent_dim
        self.reward_decoder = GaussianHead(z1 + z2 + c, 1, h)     # p(r_t | z1_t, z2_t[, c_t])
        # one factor of q(c) per frame, from what arrived (image, reward) and the action that led there
        self.task_evidence = GaussianHead(f + a, c, h) if c else None
        # task-identification head on mu2 (on mu_c with a task latent): a training-only term, and part of
        # the exported filter only when task_probs_in_belief puts its probabilities in the belief
        self.task_head = (mlp(c or z2, [h], cfg.task_classes, activation=_leaky)
                          if cfg.task_id_weight > 0 and cfg.task_classes > 1 else None)
        if cfg.task_probs_in_belief and self.task_head is None:
            raise ValueError("ModelConfig.task_probs_in_belief needs task_classes >= 2 (set by the trainer from "
                             f"the task set), got {cfg.task_classes}")
        self.task_probs_in_belief = bool(cfg.task_probs_in_belief)
        self.actor_sees_task_latent = bool(cfg.actor_sees_task_latent)
        self.actor_commits_to_port = bool(cfg.actor_commits_to_port)
        self.actor_holds_episode_port = bool(cfg.actor_holds_episode_port)
        self.actor_retakes_port_after = int(cfg.actor_retakes_port_after)
        self.task_classes = int(cfg.task_classes) if self.task_probs_in_belief else 0
        # actor_input is the identity: the actor and the critic see the same belief (a plain attribute, not a
        # property: TorchScript compiles a module's properties)
        self.actor_sees_whole_belief = ((self.actor_sees_task_latent or self.task_latent_dim == 0)
                                        and not self.actor_commits_to_port)
        self.task_columns_start = 2 * (z1 + z2)  # mu_c, std_c follow the z1/z2 parameters (belief_columns)

    # --- observation features -------------------------------------------------------------------
    def features(self, images: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
        """Conv features of the images with the (scaled) input reward tiled on: (..., feature+repeat)."""
        r = (rewards * self.reward_scale).unsqueeze(-1).expand(list(rewards.shape) + [self.repeat])
        return torch.cat([self.encoder(images), r], dim=-1)

    def action_input(self, a_prev: torch.Tensor) -> torch.Tensor:
        """What the transition heads see of the previous action: the action itself, plus (with
        episode_start_input) a flag that is 1 where the whole action is exactly zero (an episode's reset)."""
        if self.episode_start_input:
            start = (a_prev == 0).all(-1, keepdim=True).to(a_prev.dtype)
            return torch.cat([a_prev, start], -1)
        return a_prev

    def reset_frame(self, a_prev: torch.Tensor) -> torch.Tensor:
        """(..., 1) bool: the raw previous action is all zeros, i.e. an episode's reset frame."""
        return (a_prev == 0).all(-1, keepdim=True)

    def z1_prior_after(self, z2_prev: torch.Tensor, a_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z1_t | z2_{t-1}, a_{t-1}) from the raw previous action; with restart_z_each_episode the
        first-step prior N(0, I) where that action is all zeros (a reset frame)."""
        mu, std = self.z1_prior(torch.cat([z2_prev, self.action_input(a_prev)], -1))
        if self.restart_z_each_episode:
            restart = self.reset_frame(a_prev)
            mu, std = mu.masked_fill(restart, 0.0), std.masked_fill(restart, 1.0)
        return mu, std

    def carried_z2(self, a_prev: torch.Tensor, z2_prev: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """z2 after the transition: `z2`, or (carry_z2_over_reset) `z2_prev` where the raw previous action
        is all zeros (a reset frame)."""
        if self.carry_z2_over_reset:
            return torch.where(self.reset_frame(a_prev), z2_prev, z2)
        return z2

    # --- one filtering step ---------------------------------------------------------------------
    def filter_step(self, feat: torch.Tensor, z2_prev: torch.Tensor, a_prev: torch.Tensor,
                    first: torch.Tensor, noise1: Optional[torch.Tensor] = None,  # noqa: UP045 (TorchScript)
                    noise2: Optional[torch.Tensor] = None):  # noqa: UP045
        """Posterior at one step. `first` (bool, broadcastable to batch) selects the first-step posterior.

        Returns (mu1, std1, z1, mu2, std2, z2); with noise None the latents are the means (deterministic
        filtering, used at test time and in the exported module)."""
        mu1_f, std1_f = self.z1_first_posterior(feat)
        a_raw, a_prev = a_prev, self.action_input(a_prev)
        mu1_n, std1_n = self.z1_posterior(torch.cat([feat, z2_prev, a_prev], -1))
        if first.dim() > 0:
            first = first.reshape(-1, 1)
        if self.restart_z_each_episode:  # a reset frame starts z afresh (skipped in plain MELD's step)
            first = first | self.reset_frame(a_raw)
        mu1, std1 = torch.where(first, mu1_f, mu1_n), torch.where(first, std1_f, std1_n)
        z1 = mu1 if noise1 is None else mu1 + std1 * noise1
        mu2_f, std2_f = self.z2_first(z1)
        mu2_n, std2_n = self.z2_transition(torch.cat([z1, z2_prev, a_prev], -1))
        mu2_n = self.carried_z2(a_raw, z2_prev, mu2_n)  # the belief's mean is the carried z2 there
        mu2, std2 = torch.where(first, mu2_f, mu2_n), torch.where(first, std2_f, std2_n)
        z2 = mu2 if noise2 is None else mu2 + std2 * noise2
        if self.carry_z2_over_reset:  # carried without noise (skipped entirely in plain MELD's step)
            z2 = torch.where(first, z2, self.carried_z2(a_raw, z2_prev, z2))
        return mu1, std1, z1, mu2, std2, z2

    # --- whole sequences --------------------------------------------------------------------------
    def posterior(self, images: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
                  sample: bool = True) -> dict[str, torch.Tensor]:
        """Filter a batch of sequences (B, T, ...); actions[:, t] is the action taken at frame t.

        Returns per-step posterior parameters and samples, each (B, T, dim)."""
        B, T = actions.shape[:2]
        feats = self.features(images, rewards)
        z2 = feats.new_zeros(B, self.cfg.z2_dim)
        a_prev = feats.new_zeros(B, self.cfg.action_dim)
        out: dict[str, list] = {k: [] for k in ("mu1", "std1", "z1", "mu2", "std2", "z2")}
        # the step flags and every step's noise made on the device up front: a tensor built from a Python
        # value inside the loop is a host-to-device copy that makes a CUDA step wait for the GPU each frame
        first_step = torch.ones((), dtype=torch.bool, device=feats.device)
        later_step = torch.zeros((), dtype=torch.bool, device=feats.device)
        noise1 = torch.randn(B, T, self.cfg.z1_dim, device=feats.device) if sample else None
        noise2 = torch.randn(B, T, self.cfg.z2_dim, device=feats.device) if sample else None
        for t in range(T):
            n1 = noise1[:, t] if noise1 is not None else None
            n2 = noise2[:, t] if noise2 is not None else None
            step = self.filter_step(feats[:, t], z2, a_prev, first_step if t == 0 else later_step, n1, n2)
            for k, v in zip(out, step, strict=True):
                out[k].append(v)
            z2, a_prev = step[5], actions[:, t]
        post = {k: torch.stack(v, 1) for k, v in out.items()}
        if self.task_latent_dim:
            a_prevs = torch.cat([torch.zeros_like(actions[:, :1]), actions[:, :-1]], 1)
            prec, wmean = self.task_factors(feats, a_prevs)
            reset = self.reset_frame(a_prevs)
            post["mu_c"], post["std_c"] = task_posterior(*self.carried_sums(prec, wmean, reset))
            post["c"] = post["mu_c"] + post["std_c"] * torch.randn_like(post["std_c"]) if sample else post["mu_c"]
        return post

    # --- the task latent (task_latent_dim > 0) -----------------------------------------------------
    def task_factors(self, feat: torch.Tensor, a_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One Gaussian factor of q(c) per frame from its features and previous action, as the sums
        `task_posterior` takes: (precision 1/std^2, precision-weighted mean)."""
        evidence = self.task_evidence
        if evidence is None:
            raise ValueError("task_factors needs a task latent (ModelConfig.task_latent_dim > 0)")
        mu, std = evidence(torch.cat([feat, self.action_input(a_prev)], -1))
        prec = std.pow(-2)
        return prec, mu * prec

    def carried_evidence(self, prec_sum: torch.Tensor, wmean_sum: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The task latent's evidence sums as an episode's reset frame carries them on: capped at
        `task_evidence_cap` (estimate kept), else scaled by `task_evidence_carry`."""
        if self.task_evidence_cap > 0.0:
            return capped_evidence(prec_sum, wmean_sum, self.task_evidence_cap)
        return prec_sum * self.task_evidence_carry, wmean_sum * self.task_evidence_carry

    def carried_sums(self, prec: torch.Tensor, wmean: torch.Tensor, reset: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Running sums of per-frame factors (precisions, weighted means; (B, T, d)) over a trial, carried
        on by `carried_evidence` at each reset frame (reset (B, T, 1) bool), as `task_step` does frame by
        frame; plain cumulative sums when the evidence is carried whole (MELD)."""
        if self.task_evidence_cap == 0.0 and self.task_evidence_carry == 1.0:
            return prec.cumsum(1), wmean.cumsum(1)
        p_sum, w_sum = torch.zeros_like(prec[:, 0]), torch.zeros_like(wmean[:, 0])
        p_out, w_out = [], []
        for t in range(prec.shape[1]):  # frame by frame: the cap is not linear
            p_carried, w_carried = self.carried_evidence(p_sum, w_sum)
            p_sum = torch.where(reset[:, t], p_carried, p_sum) + prec[:, t]
            w_sum = torch.where(reset[:, t], w_carried, w_sum) + wmean[:, t]
            p_out.append(p_sum)
            w_out.append(w_sum)
        return torch.stack(p_out, 1), torch.stack(w_out, 1)

    def task_step(self, feat: torch.Tensor, a_prev: torch.Tensor, sums: torch.Tensor):
        """Add one frame's factor to the running sums `sums` = [precisions, weighted means] (..., 2c):
        (mu_c, std_c, new sums). Zero sums are the prior N(0, I), the state at a trial's start."""
        prec, wmean = self.task_factors(feat, a_prev)
        c = self.task_latent_dim
        if self.task_evidence_cap > 0.0 or self.task_evidence_carry != 1.0:  # a reset frame tempers the evidence
            p_carried, w_carried = self.carried_evidence(sums[..., :c], sums[..., c:])
            sums = torch.where(self.reset_frame(a_prev), torch.cat([p_carried, w_carried], -1), sums)
        prec, wmean = sums[..., :c] + prec, sums[..., c:] + wmean
        mu_c, std_c = task_posterior(prec, wmean)
        return mu_c, std_c, torch.cat([prec, wmean], -1)

    def task_head_input(self, mu2: torch.Tensor, mu_c: Optional[torch.Tensor]) -> torch.Tensor:  # noqa: UP045
        """What the task head reads: mu_c with a task latent, else mu2."""
        if self.task_latent_dim and mu_c is not None:
            return mu_c
        return mu2

    def belief(self, post: dict[str, torch.Tensor]) -> torch.Tensor:
        """The actor/critic input of a filtered sequence (`belief_vector` of its posterior parameters)."""
        return self.belief_vector(post["mu1"], post["std1"], post["mu2"], post["std2"], post.get("mu_c"),
                                  post.get("std_c"))

    def belief_vector(self, mu1: torch.Tensor, std1: torch.Tensor, mu2: torch.Tensor, std2: torch.Tensor,
                      mu_c: Optional[torch.Tensor] = None,  # noqa: UP045 (TorchScript)
                      std_c: Optional[torch.Tensor] = None) -> torch.Tensor:  # noqa: UP045
        """The actor/critic input: posterior parameters (mu1, std1, mu2, std2[, mu_c, std_c]), see
        `belief_columns`, then the task head's class probabilities when task_probs_in_belief."""
        parts = [mu1, std1, mu2, std2]
        if mu_c is not None and std_c is not None:
            parts += [mu_c, std_c]
        head = self.task_head
        if self.task_probs_in_belief and head is not None:
            parts.append(torch.softmax(head(self.task_head_input(mu2, mu_c)), -1))
        return torch.cat(parts, -1)

    def actor_input(self, belief: torch.Tensor) -> torch.Tensor:
        """What the actor sees of a belief (..., belief_dim): all of it; with actor_sees_task_latent
        false, the task latent's columns at its prior (mu_c = 0, std_c = 1); with actor_commits_to_port,
        the port probabilities (the last task_classes columns) as a one-hot of the most probable port."""
        if not (self.actor_sees_task_latent or self.task_latent_dim == 0):
            a, c = self.task_columns_start, self.task_latent_dim
            mu_c = belief[..., a:a + c]
            belief = torch.cat([belief[..., :a], torch.zeros_like(mu_c), torch.ones_like(mu_c),
                                belief[..., a + 2 * c:]], -1)
        if self.actor_commits_to_port:
            k = self.task_classes
            probs = belief[..., belief.shape[-1] - k:]
            belief = torch.cat([belief[..., :belief.shape[-1] - k],
                                F.one_hot(probs.argmax(-1), k).to(belief.dtype)], -1)
        return belief

    def elbo(self, images: torch.Tensor, actions: torch.Tensor, reward_in: torch.Tensor,
             reward_target: torch.Tensor, reward_mask: torch.Tensor | None = None,
             task_labels: torch.Tensor | None = None, task_label_mask: torch.Tensor | None = None):
        """Negative ELBO (to minimise) over a batch of sequences, its terms, and the posterior.

        images uint8 (B,T,H,W,3); actions (B,T,A); reward_in / reward_target / reward_mask (B,T);
        task_labels (B,) int, needed when the task-identification term is on; task_label_mask (B,) bool,
        the trials the task head learns from (None = all; a batch of none gives the term 0)."""
        post = self.posterior(images, actions, reward_in, sample=True)
        B, T = actions.shape[:2]
        # z1 prior at each step from the previous *posterior* sample (as SLAC/MELD).
        mu1p0 = torch.zeros_like(post["mu1"][:, :1])
        std1p0 = torch.ones_like(post["std1"][:, :1])
        mu1p, std1p = self.z1_prior_after(post["z2"][:, :-1], actions[:, :-1])
        mu1p, std1p = torch.cat([mu1p0, mu1p], 1), torch.cat([std1p0, std1p], 1)
        kl = gaussian_kl(post["mu1"], post["std1"], mu1p, std1p)  # (B, T)
        z = torch.cat([post["z1"], post["z2"]], -1)
        if self.task_latent_dim:
            # the trial's one KL for its one task latent, spread over its frames like the per-step terms
            kl_c = gaussian_kl(post["mu_c"][:, -1], post["std_c"][:, -1], torch.zeros_like(post["mu_c"][:, -1]),
                               torch.ones_like(post["std_c"][:, -1]))
            kl = kl + (kl_c / T).unsqueeze(1)
        z_img, img = z, images
        if 0 < self.cfg.decoded_frames < T:
            frames = torch.randperm(T, device=z.device)[: self.cfg.decoded_frames]
            z_img, img = z[:, frames], images[:, frames]
        recon = self.decoder(z_img)  # (B, T or decoded_frames, 3, H, W)
        target = normalise_image(img)
        img_ll = gaussian_log_prob(recon.flatten(-3), target.flatten(-3),
                                   torch.full_like(recon.flatten(-3), self.cfg.decoder_std))
        r_mu, r_std = self.reward_decoder(z if not self.task_latent_dim else torch.cat([z, post["c"]], -1))
        r_ll = gaussian_log_prob((reward_target * self.cfg.reward_scale).unsqueeze(-1), r_mu, r_std)
        mask = torch.ones_like(r_ll) if reward_mask is None else reward_mask.float()
        r_ll_mean = (r_ll * mask).sum() / mask.sum().clamp_min(1.0)
        terms = {
            "kl": kl.mean(),
            "image_log_lik": img_ll.mean(),
            "reward_log_lik": r_ll_mean,
            "image_mse": (recon - target).pow(2).mean(),
            "reward_mse": (((r_mu.squeeze(-1) - reward_target * self.cfg.reward_scale) ** 2) * mask).sum()
            / mask.sum().clamp_min(1.0),
        }
        loss = -(terms["image_log_lik"] + self.cfg.reward_weight * terms["reward_log_lik"]
                 - self.cfg.kl_weight * terms["kl"])
        if self.cfg.predictive_reward_weight > 0:
            terms["predictive_reward_log_lik"] = self._predictive_reward_log_lik(post, actions, reward_target, mask)
            loss = loss - self.cfg.predictive_reward_weight * terms["predictive_reward_log_lik"]
        if self.task_head is not None:
            if task_labels is None:
                raise ValueError("the task-identification term (task_id_weight > 0) needs task_labels")
            ce, acc = self.task_id_terms(self.task_head_input(post["mu2"], post.get("mu_c")), task_labels)
            if task_label_mask is None:
                terms["task_id_ce"], terms["task_id_acc"] = ce.mean(), acc.mean()
            else:
                if tuple(task_label_mask.shape) != (B,):
                    raise ValueError(f"task_label_mask must hold one flag per trial, shape ({B},), got "
                                     f"{tuple(task_label_mask.shape)}")
                m = task_label_mask.to(ce.dtype).unsqueeze(1).expand_as(ce)
                terms["task_id_ce"] = (ce * m).sum() / m.sum().clamp_min(1.0)
                terms["task_id_acc"] = (acc * m).sum() / m.sum().clamp_min(1.0)
            loss = loss + self.cfg.task_id_weight * terms["task_id_ce"]
        return loss, terms, post

    def task_id_terms(self, head_input: torch.Tensor, task_labels: torch.Tensor):
        """Per-frame cross-entropy and accuracy (B, T) of the task head on its input (B, T, dim): mu2, or
        mu_c with a task latent (`task_head_input`), vs labels (B,)."""
        logits = self.task_head(head_input)
        labels = task_labels.long().reshape(-1, 1).expand(logits.shape[:2])
        ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").reshape(labels.shape)
        return ce, (logits.argmax(-1) == labels).float()

    def _predictive_reward_log_lik(self, post, actions, reward_target, mask):
        """Mean log-likelihood of r_{t+k}, k = 1..predictive_reward_horizon, under z_{t+k} sampled from the
        dynamics prior rolled open loop from the posterior z_t with the actions taken (and the task latent
        c_t held fixed: no new evidence on the way); averaged over every (t, k) whose frame t+k carries a
        real reward (`mask`)."""
        T = actions.shape[1]
        c = post.get("c")
        z2, total, count = post["z2"][:, :-1], actions.new_zeros(()), actions.new_zeros(())
        for k in range(1, min(self.cfg.predictive_reward_horizon, T - 1) + 1):
            n = T - k  # rollouts that start at t = 0 .. T-k-1 reach frame t+k inside the sequence
            a_raw = actions[:, k - 1:k - 1 + n]
            z2, a = z2[:, :n], self.action_input(a_raw)
            mu1, std1 = self.z1_prior_after(z2, a_raw)  # a rollout through the reset frame restarts there too
            z1 = mu1 + std1 * torch.randn_like(std1)
            mu2, std2 = self.z2_transition(torch.cat([z1, z2, a], -1))
            if self.restart_z_each_episode:
                restart = self.reset_frame(a_raw)
                mu2_f, std2_f = self.z2_first(z1)
                mu2, std2 = torch.where(restart, mu2_f, mu2), torch.where(restart, std2_f, std2)
            z2 = self.carried_z2(a_raw, z2, mu2 + std2 * torch.randn_like(std2))
            r_mu, r_std = self.reward_decoder(torch.cat([z1, z2] if c is None else [z1, z2, c[:, :n]], -1))
            ll = gaussian_log_prob((reward_target[:, k:] * self.cfg.reward_scale).unsqueeze(-1), r_mu, r_std)
            total, count = total + (ll * mask[:, k:]).sum(), count + mask[:, k:].sum()
        return total / count.clamp_min(1.0)

    def decode_reward(self, mu1, std1, mu2, std2, mu_c=None, std_c=None, n_samples: int = 16):
        """Reconstructed reward under the belief: mean and total variance over latent samples (unscaled)."""
        parts = [(mu1, std1), (mu2, std2)] + ([(mu_c, std_c)] if self.task_latent_dim else [])
        z = torch.cat([mu + std * torch.randn(n_samples, *mu.shape, device=mu.device) for mu, std in parts], -1)
        r_mu, r_std = self.reward_decoder(z)
        r_mu, r_std = r_mu.squeeze(-1) / self.cfg.reward_scale, r_std.squeeze(-1) / self.cfg.reward_scale
        mean = r_mu.mean(0)
        var = r_mu.var(0) + r_std.pow(2).mean(0)
        return mean, var
