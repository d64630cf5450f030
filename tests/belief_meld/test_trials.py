"""Trials: the belief is carried across the episodes of a trial and reset between trials."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from belief.meld.policy import MeldPolicy
from belief.meld.trials import run_trial
from tests.belief_meld.conftest import EPISODES, HORIZON


def test_online_filter_matches_the_model_on_the_stored_trial(agent, fake_env):
    """What the acting filter computed step by step equals the model's filtering of the buffered trial:
    the buffer layout (actions, reward inputs, reset frames) is the one the policy saw."""
    policy = MeldPolicy(agent.model, agent.sac.actor)
    res = run_trial(fake_env, fake_env.tasks.train[0], policy, EPISODES, "mean", seed=0)
    T = EPISODES * (HORIZON + 1)
    assert res.trial.images.shape == (T, 16, 32, 3) and res.beliefs.shape == (T, agent.cfg.model.belief_dim)
    assert res.trial.reward_dense[0] == 0 and res.trial.reward_dense[HORIZON + 1] == 0  # reset frames
    assert not res.trial.actions[HORIZON].any()  # the "reset action" between episodes
    with torch.no_grad():
        post = agent.model.posterior(torch.as_tensor(res.trial.images[None]),
                                     torch.as_tensor(res.trial.actions[None]),
                                     torch.as_tensor(res.trial.reward_dense[None]), sample=False)
    assert np.allclose(agent.model.belief(post)[0].detach().numpy(), res.beliefs, atol=1e-5)


def test_belief_carries_over_the_episode_boundary(agent, fake_env):
    policy = MeldPolicy(agent.model, agent.sac.actor)
    res = run_trial(fake_env, fake_env.tasks.train[0], policy, EPISODES, "mean", seed=0)
    ep2_start = HORIZON + 1
    # the same first frame of episode 2 filtered from a fresh belief gives a different belief
    with torch.no_grad():
        fresh, _ = policy.belief(torch.as_tensor(res.trial.images[ep2_start]), torch.zeros(2), torch.zeros(1),
                                 policy.initial_state())
    assert not np.allclose(fresh.numpy(), res.beliefs[ep2_start], atol=1e-4)
    # and episode 2's beliefs depend on what happened in episode 1 (its rewards)
    with torch.no_grad():
        rewards = torch.as_tensor(res.trial.reward_dense[None]).clone()
        rewards[0, 1:HORIZON + 1] += 5.0
        post = agent.model.posterior(torch.as_tensor(res.trial.images[None]),
                                     torch.as_tensor(res.trial.actions[None]), rewards, sample=False)
    assert not np.allclose(agent.model.belief(post)[0, ep2_start].detach().numpy(), res.beliefs[ep2_start], atol=1e-4)


def test_belief_is_reset_between_trials(agent, fake_env):
    policy = MeldPolicy(agent.model, agent.sac.actor)
    a = run_trial(fake_env, fake_env.tasks.train[0], policy, EPISODES, "mean", seed=3)
    run_trial(fake_env, fake_env.tasks.train[1], policy, EPISODES, "mean", seed=4)  # a different trial between
    b = run_trial(fake_env, fake_env.tasks.train[0], policy, EPISODES, "mean", seed=3)
    assert np.array_equal(a.beliefs, b.beliefs) and np.array_equal(a.trial.actions, b.trial.actions)
    assert a.beliefs.shape[0] == EPISODES * (HORIZON + 1)


def test_random_and_sampled_trials_and_reward_decoding(agent, fake_env):
    policy = MeldPolicy(agent.model, agent.sac.actor)
    rnd = run_trial(fake_env, fake_env.tasks.train[0], None, EPISODES, "random", seed=0)
    assert rnd.beliefs is None and np.abs(rnd.trial.actions).max() <= 1
    smp = run_trial(fake_env, fake_env.tasks.train[0], policy, EPISODES, "sample", seed=0, decode_reward=True)
    assert smp.reward_mean.shape == smp.reward_var.shape == (EPISODES * (HORIZON + 1),)
    assert (smp.reward_var > 0).all() and len(smp.episode_success) == EPISODES


def test_belief_reset_control_starts_each_episode_knowing_nothing(agent, fake_env):
    """carry_belief=False (the evaluation control): episode 1 is the same trial; episode 2 starts from the
    same pose but with a fresh belief, exactly as if it were a trial's first frame."""
    policy = MeldPolicy(agent.model, agent.sac.actor)
    carried = run_trial(fake_env, fake_env.tasks.train[0], policy, EPISODES, "mean", seed=2)
    reset = run_trial(fake_env, fake_env.tasks.train[0], policy, EPISODES, "mean", seed=2, carry_belief=False)
    L = HORIZON + 1
    assert np.array_equal(carried.beliefs[:L], reset.beliefs[:L])
    assert np.array_equal(carried.trial.images[L], reset.trial.images[L])  # same start pose
    with torch.no_grad():
        fresh, _ = policy.belief(torch.as_tensor(reset.trial.images[L]), torch.zeros(2), torch.zeros(1),
                                 policy.initial_state())
    np.testing.assert_allclose(reset.beliefs[L], fresh.numpy(), atol=1e-6)
    assert not np.allclose(carried.beliefs[L], reset.beliefs[L], atol=1e-4)


def test_tempered_carry_keeps_the_task_estimate_with_less_evidence(agent, fake_env):
    """carry_belief=k in (0, 1) scales only the task latent's carried evidence; 0 resets, 1 carries it all;
    a capped carry caps its precision per dimension and keeps the estimate."""
    policy = MeldPolicy(agent.model, agent.sac.actor)
    task = fake_env.tasks.train[0]
    if policy.task_latent_dim == 0:
        with pytest.raises(ValueError, match="needs the task latent"):
            run_trial(fake_env, task, policy, EPISODES, "mean", seed=0, carry_belief=0.5)
        return
    state = policy.initial_state() + 1.0
    tempered = policy.tempered_state(state, 0.25)
    z2_end = 1 + policy.z2_dim
    assert torch.equal(tempered[:z2_end], state[:z2_end]) and torch.allclose(tempered[z2_end:], state[z2_end:] * 0.25)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\], got 1.5"):
        policy.tempered_state(state, 1.5)
    sums = state.clone()
    c = policy.task_latent_dim
    sums[z2_end:z2_end + c] = torch.linspace(0.5, 50.0, c)  # weak to strong evidence per dimension
    capped = policy.capped_state(sums, 5.0)
    prec, wmean = capped[z2_end:z2_end + c], capped[z2_end + c:]
    assert torch.equal(capped[:z2_end], sums[:z2_end]) and prec.max() == 5.0
    assert torch.equal(prec[sums[z2_end:z2_end + c] <= 5.0], sums[z2_end:z2_end + c][sums[z2_end:z2_end + c] <= 5.0])
    assert torch.allclose(wmean / (1 + prec), sums[z2_end + c:] / (1 + sums[z2_end:z2_end + c]))  # estimate kept
    with pytest.raises(ValueError, match="cap must be a precision > 0, got 0"):
        policy.capped_state(sums, 0)
    full, reset, half = (run_trial(fake_env, task, policy, EPISODES, "mean", seed=0, carry_belief=k)
                         for k in (True, False, 0.5))
    ep2 = HORIZON + 1
    capped_run = run_trial(fake_env, task, policy, EPISODES, "mean", seed=0,
                           carry_belief=lambda s: policy.capped_state(s, 1e-3))
    assert np.array_equal(capped_run.beliefs[:ep2], full.beliefs[:ep2])
    assert not np.allclose(capped_run.beliefs[ep2], full.beliefs[ep2])
    assert np.array_equal(half.beliefs[:ep2], full.beliefs[:ep2])  # episode 1 is the same trial
    assert not np.allclose(half.beliefs[ep2], full.beliefs[ep2]) and not np.allclose(half.beliefs[ep2], reset.beliefs[ep2])
