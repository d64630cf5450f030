import math

import pytest
import torch
import torch.nn.functional as F

import belief.sac as sac_module
from belief.sac import SAC, SACConfig, TanhGaussianActor


def test_log_prob_matches_sampled_log_prob():
    torch.manual_seed(0)
    actor = TanhGaussianActor(5, 3, (32,))
    feats = torch.randn(16, 5)
    action, logp, mean_action = actor(feats)
    assert action.shape == (16, 3) and logp.shape == (16, 1)
    assert torch.all(action.abs() < 1)
    assert torch.allclose(actor.log_prob(feats, action), logp, atol=1e-3)
    assert torch.allclose(actor.act_mean(feats), mean_action)


def test_log_prob_is_normalised_density_1d():
    # integrate pi(a) over (-1, 1) numerically: must be ~1 for a tanh-Gaussian
    torch.manual_seed(0)
    actor = TanhGaussianActor(2, 1, (8,))
    feats = torch.randn(1, 2).expand(20001, 2)
    a = torch.linspace(-1 + 1e-5, 1 - 1e-5, 20001).unsqueeze(-1)
    dens = actor.log_prob(feats, a).exp().squeeze(-1)
    assert math.isclose(torch.trapezoid(dens, a.squeeze(-1)).item(), 1.0, abs_tol=1e-2)


def test_update_changes_actor_critic_and_learns_bandit():
    torch.manual_seed(0)
    sac = SAC(2, 1, SACConfig(hidden=(32, 32), gamma=0.0, actor_lr=1e-2, critic_lr=1e-2, alpha=0.01))
    # one-step bandit: reward = -(a - 0.5)^2, optimum a = 0.5
    for _ in range(300):
        obs = torch.randn(64, 2)
        act = torch.rand(64, 1) * 2 - 1
        rew = -(act - 0.5).pow(2)
        info = sac.update(obs, act, rew, obs, torch.ones(64, 1))
    assert set(info) >= {"critic_loss", "actor_loss", "alpha", "q_mean", "entropy"}
    assert abs(sac.actor.act_mean(torch.randn(10, 2)).mean().item() - 0.5) < 0.15


def test_auto_alpha_moves_and_fixed_alpha_stays():
    torch.manual_seed(0)
    batch = (torch.randn(8, 3), torch.rand(8, 2) * 2 - 1, torch.randn(8, 1), torch.randn(8, 3), torch.zeros(8, 1))
    auto = SAC(3, 2, SACConfig(hidden=(16,)))
    fixed = SAC(3, 2, SACConfig(hidden=(16,), alpha=0.2))
    auto.update(*batch)
    fixed.update(*batch)
    assert auto.alpha.item() != pytest.approx(1.0)
    assert fixed.alpha.item() == pytest.approx(0.2)


def test_fixed_alpha_survives_loading_a_learned_temperature():
    # a warm start from an agent that learned its temperature: the configured fixed one must still hold
    learned = SAC(3, 2, SACConfig(hidden=(16,)))
    with torch.no_grad():
        learned.log_alpha.fill_(math.log(0.017))
    fixed = SAC(3, 2, SACConfig(hidden=(16,), alpha=0.2))
    fixed.load_state_dict(learned.state_dict())
    assert fixed.alpha.item() == pytest.approx(0.2)
    agent = torch.nn.ModuleDict({"sac": SAC(3, 2, SACConfig(hidden=(16,), alpha=0.2))})  # loaded as a part
    agent.load_state_dict({f"sac.{k}": v for k, v in learned.state_dict().items()})
    assert agent["sac"].alpha.item() == pytest.approx(0.2)
    loaded, source = fixed.state_dict(), learned.state_dict()
    assert all(torch.equal(loaded[k], source[k]) for k in source if k != "log_alpha")  # the rest is loaded
    auto = SAC(3, 2, SACConfig(hidden=(16,)))
    auto.load_state_dict(learned.state_dict())
    assert auto.alpha.item() == pytest.approx(0.017)  # a learned temperature is carried on


def test_feature_gradient_reaches_upstream_module_only_through_critic():
    torch.manual_seed(0)
    upstream = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(upstream.parameters(), lr=0.1)
    sac = SAC(3, 1, SACConfig(hidden=(16,)))
    x = torch.randn(8, 4)
    before = upstream.weight.clone()
    feats = upstream(x)
    sac.update(feats, torch.zeros(8, 1), torch.ones(8, 1), feats.detach(), torch.zeros(8, 1),
               extra_optimizers=[opt])
    assert not torch.equal(before, upstream.weight)


def test_bad_shapes_and_config_rejected():
    sac = SAC(3, 1, SACConfig(hidden=(8,)))
    with pytest.raises(ValueError, match="rewards and dones"):
        sac.update(torch.zeros(4, 3), torch.zeros(4, 1), torch.zeros(4), torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="gamma"):
        SACConfig(gamma=1.5)


def test_grad_clip_bounds_gradients_of_critic_extra_and_actor(monkeypatch):
    calls = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm):
        params = list(params)
        calls.append(len(params))
        return real(params, max_norm)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    upstream = torch.nn.Linear(4, 3)
    sac = SAC(3, 1, SACConfig(hidden=(8,), grad_clip=1.0))
    feats = upstream(torch.randn(8, 4))
    sac.update(feats, torch.zeros(8, 1), 100 * torch.ones(8, 1), feats.detach(), torch.zeros(8, 1),
               extra_optimizers=[torch.optim.SGD(upstream.parameters(), lr=0.1)])
    assert calls == [len(list(sac.critic.parameters())), 2, len(list(sac.actor.parameters()))]
    assert all(p.grad is None or p.grad.norm() <= 1.0 + 1e-5 for p in upstream.parameters())


def test_asymmetric_critic_teaches_an_actor_that_sees_other_features():
    """critic_feature_dim: Q sees the task (1 number), the actor a 2-d observation whose first entry
    names it; the actor learns the task-dependent optimum through the critic, the next action comes
    from the actor's own next features, and update refuses to guess the actor's features."""
    torch.manual_seed(0)
    sac = SAC(2, 1, SACConfig(hidden=(32, 32), gamma=0.5, actor_lr=1e-2, critic_lr=1e-2, alpha=0.01),
              critic_feature_dim=1)
    assert sac.critic.q1[0].in_features == 1 + 1 and sac.actor.net[0].in_features == 2
    for _ in range(300):
        sign = torch.randint(0, 2, (64, 1)).float() * 2 - 1
        task = 0.5 * sign
        actor_obs = torch.cat([sign, torch.randn(64, 1)], -1)
        act = torch.rand(64, 1) * 2 - 1
        rew = -(act - task).pow(2)
        sac.update(task, act, rew, task, torch.ones(64, 1), actor_obs=actor_obs, next_actor_obs=actor_obs)
    probe = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert sac.actor.act_mean(probe).squeeze(-1).tolist() == pytest.approx([0.5, -0.5], abs=0.15)
    with pytest.raises(ValueError, match="actor_obs and next_actor_obs"):
        sac.update(task, act, rew, task, torch.ones(64, 1), actor_obs=actor_obs)


def test_gated_experts_actor_acts_as_the_expert_its_probabilities_name():
    """GatedExperts as the actor's net: with one-hot probabilities in the last columns the output is that
    expert's head alone, in between it is their probability-weighted mix; a bandit whose optimum
    depends on which probability is 1 is learnt through the critic."""
    from belief.networks import GatedExperts

    torch.manual_seed(0)
    net = GatedExperts(4, (16,), 2, experts=2)
    x = torch.tensor([[0.3, -0.2, 1.0, 0.0], [0.3, -0.2, 0.0, 1.0], [0.3, -0.2, 0.25, 0.75]])
    heads = net.heads(x).reshape(3, 2, 2)
    out = net(x)
    assert torch.allclose(out[0], heads[0, 0]) and torch.allclose(out[1], heads[1, 1])
    assert torch.allclose(out[2], 0.25 * heads[2, 0] + 0.75 * heads[2, 1])
    with pytest.raises(ValueError, match="experts"):
        GatedExperts(4, (16,), 2, experts=1)
    sac = SAC(3, 1, SACConfig(hidden=(32, 32), gamma=0.5, actor_lr=1e-2, critic_lr=1e-2, alpha=0.01),
              actor_net=GatedExperts(3, (32, 32), 2, experts=2, out_scale=1e-3))
    assert sac.actor.net is not None and isinstance(sac.actor.net, GatedExperts)
    for _ in range(300):
        k = torch.randint(0, 2, (64,))
        obs = torch.cat([torch.randn(64, 1), torch.nn.functional.one_hot(k, 2).float()], -1)
        act = torch.rand(64, 1) * 2 - 1
        rew = -(act - (k.float() - 0.5).unsqueeze(-1)).pow(2)  # optimum -0.5 for expert 0, +0.5 for expert 1
        sac.update(obs, act, rew, obs, torch.ones(64, 1))
    probe = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert sac.actor.act_mean(probe).squeeze(-1).tolist() == pytest.approx([-0.5, 0.5], abs=0.15)


def test_target_clip_bounds_the_bellman_target_an_overestimating_critic_feeds_back(monkeypatch):
    """A target critic that overestimates 1000x: with target_clip the critic regresses onto the clipped
    bound, without it onto the overestimate. Bad bounds are refused by name."""
    torch.manual_seed(0)
    batch = (torch.randn(32, 3), torch.zeros(32, 1), torch.ones(32, 1), torch.randn(32, 3), torch.zeros(32, 1))
    targets = {}
    for clip in (None, (-5.0, 10.0)):
        sac = SAC(3, 1, SACConfig(hidden=(16,), gamma=0.99, alpha=0.0, target_clip=clip))
        with torch.no_grad():
            sac.critic_target.q1[-1].bias.fill_(1000.0)
            sac.critic_target.q2[-1].bias.fill_(1000.0)
        seen = []
        monkeypatch.setattr(sac_module.F, "mse_loss", lambda q, t, mse=F.mse_loss, seen=seen: seen.append(t) or mse(q, t))
        _, info = sac.critic_loss(*batch)
        monkeypatch.undo()
        targets[clip] = seen[0]
        assert info.get("target_clipped") == (None if clip is None else 1.0)  # the share of targets clipped
    assert torch.all(targets[None] > 900)
    assert torch.all(targets[(-5.0, 10.0)] == 10.0)
    for bad in ([1.0], [2.0, 1.0], "0,1", 5.0, [0, True]):
        with pytest.raises(ValueError, match=r"SACConfig.target_clip must be null or \[low, high\]"):
            SACConfig(target_clip=bad)
    assert SACConfig(target_clip=[-1, 2]).target_clip == (-1.0, 2.0)


def test_critic_layer_norm_bounds_q_however_far_the_input_is_from_the_data():
    """With critic_layer_norm the last layer sees unit-scale features, so |Q| <= |w_last| * sqrt(width) + |b|
    for any input; without it Q grows with the input (what lets an overestimating critic run away)."""
    torch.manual_seed(0)
    far = torch.randn(64, 3) * 1e4
    action = torch.rand(64, 1) * 2 - 1
    for layer_norm in (False, True):
        sac = SAC(3, 1, SACConfig(hidden=(16, 16), critic_layer_norm=layer_norm))
        norms = [m for m in sac.critic.q1 if isinstance(m, torch.nn.LayerNorm)]
        assert len(norms) == (2 if layer_norm else 0)
        last = sac.critic.q1[-1]
        bound = last.weight.norm().item() * 16 ** 0.5 + last.bias.abs().item()
        q1, _ = sac.critic(far, action)
        assert (q1.abs().max().item() <= bound) == layer_norm
        sac.update(far[:8] / 1e4, action[:8], torch.ones(8, 1), far[8:16] / 1e4, torch.zeros(8, 1))  # trains
    with pytest.raises(ValueError, match=r"SACConfig.critic_layer_norm must be true or false, got 'yes'"):
        SACConfig(critic_layer_norm="yes")
