"""Tiny exportable policies for tests: deterministic, and able to misbehave on request."""

import torch
from torch import nn

from belief.policy_file import ActionSpec, ObservationSpec, PolicyMetadata, save_policy

JOINTS = ["shoulder", "elbow", "wrist"]


class CountingPolicy(nn.Module):
    """Action 0.5 on every joint; the belief counts steps. Reward 99 makes it return NaN."""

    def __init__(self):
        super().__init__()

    def initial_state(self) -> torch.Tensor:
        return torch.zeros(2)

    def step(self, obs: torch.Tensor, prev_action: torch.Tensor, reward: torch.Tensor, state: torch.Tensor):
        poison = torch.where(reward > 98.0, torch.full_like(reward, float("nan")), torch.ones_like(reward))
        action = torch.full((3,), 0.5) * poison
        new_state = torch.stack([state[0] + 1.0, obs.to(torch.float32).mean()])
        return action, new_state


def counting_metadata(obs_topic="observation/state", shape=(4,), dtype="float32", joints=None, rate=5.0,
                      extra=None):
    return PolicyMetadata(algo="test", observation=ObservationSpec(obs_topic, list(shape), dtype),
                          action=ActionSpec(list(joints or JOINTS), [2.0, 2.0, 2.0]), state_dim=2,
                          control_rate_hz=rate, reward_topic="reward/sparse", extra=dict(extra or {}))


def export_counting_policy(path, **meta_kwargs):
    return save_policy(CountingPolicy(), counting_metadata(**meta_kwargs), path)
