"""Small building blocks shared by the belief models: MLPs and weight initialisation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, activation: type[nn.Module] = nn.ReLU,
        out_scale: float | None = None) -> nn.Sequential:
    """Fully connected net in -> hidden... -> out. `out_scale` shrinks the last layer's init (as rlkit's
    init_w=3e-3 does) so heads start near zero output."""
    if in_dim <= 0 or out_dim <= 0:
        raise ValueError(f"mlp needs positive input/output sizes, got in={in_dim} out={out_dim}")
    layers: list[nn.Module] = []
    dims = [in_dim, *hidden]
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        layers += [nn.Linear(a, b), activation()]
    last = nn.Linear(dims[-1], out_dim)
    if out_scale is not None:
        nn.init.uniform_(last.weight, -out_scale, out_scale)
        nn.init.uniform_(last.bias, -out_scale, out_scale)
    layers.append(last)
    return nn.Sequential(*layers)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging target <- (1 - tau) target + tau source, in place."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.mul_(1.0 - tau).add_(s, alpha=tau)


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)
