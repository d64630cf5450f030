"""PEARL's permutation-invariant context encoder: one Gaussian factor per transition, combined by a
product of Gaussians (with the N(0, I) prior as one more factor).

Including the prior in the product makes the posterior defined for an empty context (it *is* the prior)
and lets the belief be carried as two running sums, which is what the exported single-step module
does: precision = 1 + sum_i 1/var_i, mean = (sum_i mu_i/var_i) / precision.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from belief.networks import mlp

MIN_VAR = 1e-7


def product_of_gaussians(mu: Tensor, var: Tensor, mask: Tensor | None = None,
                         include_prior: bool = True) -> tuple[Tensor, Tensor]:
    """Combine factors (..., N, L) into one Gaussian (..., L). `mask` (..., N) 1 = use, 0 = ignore."""
    prec = 1.0 / var.clamp_min(MIN_VAR)
    if mask is not None:
        prec = prec * mask.unsqueeze(-1)
    prec_sum, prec_mu_sum = prec.sum(-2), (prec * mu).sum(-2)
    return stats_to_posterior(prec_sum, prec_mu_sum, include_prior)


def stats_to_posterior(prec_sum: Tensor, prec_mu_sum: Tensor, include_prior: bool = True) -> tuple[Tensor, Tensor]:
    """Posterior (mean, variance) from the sufficient statistics sum(1/var), sum(mu/var)."""
    total = prec_sum + 1.0 if include_prior else prec_sum
    var = 1.0 / total.clamp_min(MIN_VAR)
    return prec_mu_sum * var, var


def kl_to_standard_normal(mu: Tensor, var: Tensor) -> Tensor:
    """KL(N(mu, diag var) || N(0, I)) summed over the last dim."""
    return 0.5 * (var + mu.pow(2) - 1.0 - var.clamp_min(MIN_VAR).log()).sum(-1)


def context_dim(obs_dim: int, action_dim: int, use_next_obs: bool = False) -> int:
    return obs_dim + action_dim + 1 + (obs_dim if use_next_obs else 0)


class ContextEncoder(nn.Module):
    """q(z | c): MLP on each transition (o, a, r[, o']) -> Gaussian factor; product over transitions."""

    def __init__(self, context_dim: int, latent_dim: int = 8, hidden: Sequence[int] = (200, 200, 200)):
        super().__init__()
        self.context_dim, self.latent_dim = context_dim, latent_dim
        self.net = mlp(context_dim, hidden, 2 * latent_dim)

    def factors(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """Per-transition (mu, var), each (..., N, L)."""
        if context.shape[-1] != self.context_dim:
            raise ValueError(f"context has {context.shape[-1]} features per transition, encoder expects "
                             f"{self.context_dim}")
        mu, raw = self.net(context).chunk(2, dim=-1)
        return mu, F.softplus(raw) + MIN_VAR

    def factor_stats(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """Per-transition (precision, precision * mean): what the running belief sums up."""
        mu, var = self.factors(context)
        prec = 1.0 / var
        return prec, prec * mu

    def posterior(self, context: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """q(z | c) for context (..., N, C) -> (mean, var) (..., L). N may be 0 (= the prior)."""
        if context.shape[-2] == 0:
            shape = (*context.shape[:-2], self.latent_dim)
            return context.new_zeros(shape), context.new_ones(shape)
        mu, var = self.factors(context)
        return product_of_gaussians(mu, var, mask)

    @staticmethod
    def sample(mu: Tensor, var: Tensor, noise: Tensor | None = None) -> Tensor:
        if noise is None:
            noise = torch.randn_like(mu)
        return mu + var.sqrt() * noise
