"""Loss shapes and where their gradients go (PEARL/PERIL)."""

import numpy as np
import pytest
import torch

from belief.context_encoder import kl_to_standard_normal
from belief.pearl import PEARLAgent, PEARLConfig, synthetic_train_data
from belief.peril import PERILAgent, PERILConfig
from belief.sac import SACConfig

OBS, ACT, DESC = 3, 2, 4
SMALL = dict(latent_dim=3, encoder_hidden=(16,), meta_batch=2, batch_size=5, context_size=4,
             sac=SACConfig(hidden=(16,)))


def _data(n_tasks=3, seed=0):
    return synthetic_train_data(n_tasks, OBS, ACT, DESC, 12, np.random.default_rng(seed), capacity=100)


def _grads(module):
    return {n: p.grad for n, p in module.named_parameters()}


def _touched(module):
    return {n for n, g in _grads(module).items() if g is not None and g.abs().sum() > 0}


def _zero(*modules):
    for m in modules:
        for p in m.parameters():
            p.grad = None


@pytest.fixture
def peril_a():
    torch.manual_seed(0)
    return PERILAgent(OBS, ACT, PERILConfig(**SMALL, aux_weight=4.0, demo_context_size=4, demo_batch_size=5),
                      descriptor_dim=DESC)


def test_peril_extra_losses_reach_the_right_parameters(peril_a):
    agent, data, rng = peril_a, _data(), np.random.default_rng(0)
    tasks = np.array([0, 2])
    ctx = torch.as_tensor(np.stack([agent.sample_context(data, t, rng) for t in tasks]))
    assert ctx.shape == (2, 4 + 4, agent.encoder.context_dim)
    mu, var = agent.encoder.posterior(ctx)
    assert mu.shape == var.shape == (2, 3)
    z = agent.encoder.sample(mu, var)
    batch = {k: torch.as_tensor(np.stack([data.replay.rl[t].sample(5, rng)[k] for t in tasks])) for k in
             ("obs", "actions", "rewards", "sparse_rewards", "next_obs", "dones")}
    enc_loss, actor_loss, info = agent.extra_losses(z, batch["obs"], batch, data, tasks, rng)
    assert enc_loss.shape == actor_loss.shape == ()
    assert {"bc_nll", "mi_loss", "mi_rho", "aux_mse"} <= set(info)
    assert 0 < info["mi_rho"] <= 1.0

    # behaviour cloning: actor only
    actor_loss.backward(retain_graph=True)
    assert _touched(agent.sac.actor) and not _touched(agent.encoder) and not _touched(agent.aux_head)
    assert not _touched(agent.sac.critic) and not _touched(agent.behaviour)
    _zero(agent)
    # MI + aux: encoder and aux head, never the actor, critic or frozen behaviour policy
    enc_loss.backward()
    assert _touched(agent.encoder) and _touched(agent.aux_head)
    assert not _touched(agent.sac.actor) and not _touched(agent.sac.critic) and not _touched(agent.behaviour)
    assert all(p.requires_grad for p in agent.sac.actor.parameters())  # restored after the frozen pass


def test_kl_and_critic_gradients(peril_a):
    agent = peril_a
    ctx = torch.randn(2, 5, agent.encoder.context_dim)
    mu, var = agent.encoder.posterior(ctx)
    kl = kl_to_standard_normal(mu, var)
    assert kl.shape == (2,) and torch.all(kl >= 0)
    kl.mean().backward()
    assert _touched(agent.encoder) and not _touched(agent.sac.actor) and not _touched(agent.sac.critic)
    _zero(agent)
    z = agent.encoder.sample(*agent.encoder.posterior(ctx))
    feats = torch.cat([torch.randn(2, OBS), z], -1)
    loss, _ = agent.sac.critic_loss(feats, torch.zeros(2, ACT), torch.ones(2, 1), feats.detach(), torch.zeros(2, 1))
    loss.backward()
    assert _touched(agent.sac.critic) and _touched(agent.encoder)
    assert not _touched(agent.sac.actor) and not _touched(agent.sac.critic_target)


@pytest.mark.parametrize("algo", ["pearl", "peril"])
def test_train_step_updates_and_reports(algo):
    torch.manual_seed(0)
    agent = (PEARLAgent(OBS, ACT, PEARLConfig(**SMALL)) if algo == "pearl"
             else PERILAgent(OBS, ACT, PERILConfig(**SMALL, demo_context_size=4, demo_batch_size=5)))
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    info = agent.train_step(_data(), np.array([0, 1]), np.random.default_rng(0))
    assert {"critic_loss", "actor_loss", "kl", "alpha"} <= set(info)
    assert all(np.isfinite(v) for v in info.values())
    after = agent.state_dict()
    for prefix in ("encoder.", "sac.actor.", "sac.critic.", "sac.critic_target."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix
    if algo == "peril":
        # the behaviour policy only changes at collection rounds
        assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("behaviour."))
        agent.on_collection_round()
        assert torch.equal(agent.behaviour.net[0].weight, agent.sac.actor.net[0].weight)


def test_config_errors_are_named():
    with pytest.raises(ValueError, match="encoder_reward"):
        PEARLConfig(encoder_reward="shaped")
    with pytest.raises(ValueError, match="descriptor"):
        PERILAgent(OBS, ACT, PERILConfig(**SMALL, aux_weight=4.0), descriptor_dim=0)
