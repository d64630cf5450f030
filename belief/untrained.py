"""An untrained recurrent belief policy: the rehearsal's stand-in for a trained MELD/PEARL model.

Same interface and container as every trained policy (belief/policy_file.py): a conv encoder over the
stacked two-camera image, a GRU cell whose hidden vector is the explicit belief state carried across
the episodes of a trial, and a tanh actor. Weights are seeded, so a rehearsal is reproducible.
"""

from __future__ import annotations

import torch
from torch import nn

from belief.policy_file import ActionSpec, ObservationSpec, PolicyMetadata


class RecurrentBeliefPolicy(nn.Module):
    def __init__(self, image_shape=(64, 128, 3), action_dim: int = 3, state_dim: int = 32,
                 action_gain: float = 0.3):
        super().__init__()
        self.state_dim = state_dim
        self.action_gain = action_gain
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(16, 32, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d((2, 4)), nn.Flatten(),
        )
        self.cell = nn.GRUCell(32 * 8 + action_dim + 1, state_dim)
        self.actor = nn.Linear(state_dim, action_dim)

    def initial_state(self) -> torch.Tensor:
        return torch.zeros(self.state_dim)

    def step(self, obs: torch.Tensor, prev_action: torch.Tensor, reward: torch.Tensor, state: torch.Tensor):
        image = obs.to(torch.float32).permute(2, 0, 1).unsqueeze(0) / 255.0 - 0.5
        features = self.encoder(image)
        x = torch.cat([features, prev_action.unsqueeze(0), reward.unsqueeze(0)], dim=1)
        new_state = self.cell(x, state.unsqueeze(0))
        action = torch.tanh(self.actor(new_state)) * self.action_gain
        return action.squeeze(0), new_state.squeeze(0)


def untrained_policy(joint_names, velocity_limit, control_rate_hz: float = 5.0,
                     image_shape=(64, 128, 3), seed: int = 0, env: str = "planar_peg"):
    """(module, metadata) for a seeded untrained policy driving `joint_names` from the paired image.

    `velocity_limit` is one rad/s limit for every joint or one per joint.
    """
    limits = [float(velocity_limit)] * len(joint_names) if isinstance(velocity_limit, (int, float)) \
        else [float(v) for v in velocity_limit]
    if len(limits) != len(joint_names):
        raise ValueError(f"{len(limits)} velocity limits for {len(joint_names)} joints")
    torch.manual_seed(seed)
    module = RecurrentBeliefPolicy(image_shape=image_shape, action_dim=len(joint_names))
    meta = PolicyMetadata(
        algo="untrained",
        observation=ObservationSpec(topic="camera_pair/image_raw", shape=list(image_shape), dtype="uint8"),
        action=ActionSpec(joint_names=list(joint_names), scale=limits),
        state_dim=module.state_dim,
        control_rate_hz=control_rate_hz,
        model_version=f"untrained-seed{seed}",
        env=env,
    )
    return module, meta
