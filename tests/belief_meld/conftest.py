"""Tiny MELD configurations: 16x32 images, a few channels, so every test runs in seconds on a CPU."""

from __future__ import annotations

import pytest
import torch

from belief.meld.agent import AgentConfig, MeldAgent
from belief.meld.model import ModelConfig
from belief.sac import SACConfig
from tests.belief_meld.fake_env import FakeImageEnv

EPISODES, HORIZON = 2, 4


def tiny_agent_config(**kw) -> AgentConfig:
    model = ModelConfig(image_height=16, image_width=32, action_dim=2, base_depth=2, z1_dim=3, z2_dim=5,
                        hidden=16)
    return AgentConfig(model=model, sac=SACConfig(hidden=(16, 16)), **kw)


@pytest.fixture
def fake_env():
    env = FakeImageEnv(episode_steps=HORIZON)
    yield env
    env.close()


@pytest.fixture(params=["meld", "episode-start-flag", "task-probs", "carry-z2", "task-latent", "restart-z",
                        "tempered-carry", "capped-carry", "actor-probs-only", "actor-commits"])
def agent(request):
    """A tiny agent: plain MELD, with the episode-start flag (ModelConfig.episode_start_input), with
    the task head's class probabilities in the belief (task_probs_in_belief, 4 classes), with z2
    carried over the reset frame (carry_z2_over_reset), and with a task latent (task_latent_dim 4, the
    task head reading it, its probabilities in the belief and gating the actor's heads), and with that
    task latent as the only memory over the reset frame (restart_z_each_episode, plain actor), and that
    with the task latent's evidence carried at 0.1 x over the reset frame (task_evidence_carry), or
    its precision capped at 2 there (task_evidence_cap), and that with the task latent hidden from the
    actor, which sees the task through the probabilities only (actor_sees_task_latent false), or through
    a one-hot of the most probable port (actor_commits_to_port)."""
    torch.manual_seed(0)
    cfg = tiny_agent_config()
    cfg.model.episode_start_input = request.param == "episode-start-flag"
    cfg.model.carry_z2_over_reset = request.param == "carry-z2"
    tempered = ("tempered-carry", "capped-carry", "actor-probs-only", "actor-commits")
    if request.param in ("task-latent", "restart-z", *tempered):
        cfg.model.task_latent_dim, cfg.task_gated_actor = 4, request.param == "task-latent"
    cfg.model.restart_z_each_episode = request.param in ("restart-z", *tempered)
    cfg.model.task_evidence_carry = 0.1 if request.param == "tempered-carry" else 1.0
    cfg.model.task_evidence_cap = 2.0 if request.param in ("capped-carry", "actor-probs-only") else 0.0
    cfg.model.actor_sees_task_latent = request.param != "actor-probs-only"
    cfg.model.actor_commits_to_port = request.param == "actor-commits"
    if request.param in ("task-probs", "task-latent", "restart-z", *tempered):
        cfg.model.task_id_weight, cfg.model.task_classes, cfg.model.task_probs_in_belief = 1.0, 4, True
    return MeldAgent(cfg, EPISODES, HORIZON)
