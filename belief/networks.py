"""Small building blocks shared by the belief models: MLPs and weight initialisation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, activation: type[nn.Module] = nn.ReLU,
        out_scale: float | None = None, layer_norm: bool = False) -> nn.Sequential:
    """Fully connected net in -> hidden... -> out. `out_scale` shrinks the last layer's init (as rlkit's
    init_w=3e-3 does) so heads start near zero output; `layer_norm` puts a LayerNorm after each hidden
    Linear (before the activation)."""
    if in_dim <= 0 or out_dim <= 0:
        raise ValueError(f"mlp needs positive input/output sizes, got in={in_dim} out={out_dim}")
    layers: list[nn.Module] = []
    dims = [in_dim, *hidden]
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        layers += [nn.Linear(a, b), *([nn.LayerNorm(b)] if layer_norm else []), activation()]
    last = nn.Linear(dims[-1], out_dim)
    if out_scale is not None:
        nn.init.uniform_(last.weight, -out_scale, out_scale)
        nn.init.uniform_(last.bias, -out_scale, out_scale)
    layers.append(last)
    return nn.Sequential(*layers)


class GatedExperts(nn.Module):
    """`experts` MLP heads mixed by the probabilities in the input's last `experts` columns:
    out = sum_k p_k head_k(x). A task-conditioned net whose output cannot ignore the task probabilities
    (a plain MLP may learn to, when they carry little signal early in training)."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, experts: int,
                 activation: type[nn.Module] = nn.ReLU, out_scale: float | None = None):
        super().__init__()
        if not 2 <= experts <= in_dim:
            raise ValueError(f"GatedExperts needs 2 <= experts <= in_dim ({in_dim}), got {experts}")
        self.experts, self.out_dim = experts, out_dim
        self.heads = mlp(in_dim, hidden, experts * out_dim, activation, out_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = self.heads(x).reshape(list(x.shape[:-1]) + [self.experts, self.out_dim])
        return (x[..., -self.experts:].unsqueeze(-1) * outs).sum(-2)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging target <- (1 - tau) target + tau source, in place."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.mul_(1.0 - tau).add_(s, alpha=tau)


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)
