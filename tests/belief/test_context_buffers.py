import numpy as np
import pytest
import torch

from belief.buffers import DemoBuffer, MultiTaskReplay, ReplayBuffer, context_array
from belief.context_encoder import (
    ContextEncoder,
    kl_to_standard_normal,
    product_of_gaussians,
    stats_to_posterior,
)


def _path(n, obs_dim=2, act_dim=1, ret=0.0, success=False, value=0.0):
    return {"obs": np.full((n, obs_dim), value), "actions": np.zeros((n, act_dim)), "rewards": np.zeros((n, 1)),
            "sparse_rewards": np.zeros((n, 1)), "next_obs": np.zeros((n, obs_dim)), "dones": np.zeros((n, 1)),
            "return": ret, "success": success}


def test_product_of_gaussians_matches_closed_form():
    # 1-D closed form with the N(0,1) prior as a factor: precision adds, mean is precision-weighted
    mu = torch.tensor([[[1.0], [3.0]]])
    var = torch.tensor([[[0.5], [2.0]]])
    pmu, pvar = product_of_gaussians(mu, var)
    prec = 1.0 + 1 / 0.5 + 1 / 2.0
    assert pvar.item() == pytest.approx(1 / prec)
    assert pmu.item() == pytest.approx((1.0 / 0.5 + 3.0 / 2.0) / prec)
    # without the prior it is oyster's _product_of_gaussians
    pmu, pvar = product_of_gaussians(mu, var, include_prior=False)
    assert pvar.item() == pytest.approx(1 / 2.5)
    assert pmu.item() == pytest.approx((2.0 + 1.5) / 2.5)


def test_posterior_is_permutation_invariant_and_masks_and_running_sums_agree():
    torch.manual_seed(0)
    enc = ContextEncoder(4, latent_dim=3, hidden=(16,))
    ctx = torch.randn(2, 7, 4)
    mu, var = enc.posterior(ctx)
    mu2, var2 = enc.posterior(ctx[:, torch.randperm(7)])
    assert torch.allclose(mu, mu2, atol=1e-6) and torch.allclose(var, var2, atol=1e-6)
    mask = torch.tensor([[1.0] * 4 + [0.0] * 3] * 2)
    mu_m, _ = enc.posterior(ctx, mask)
    assert torch.allclose(mu_m, enc.posterior(ctx[:, :4])[0], atol=1e-6)
    prec, prec_mu = enc.factor_stats(ctx)
    rmu, rvar = stats_to_posterior(prec.sum(1), prec_mu.sum(1))
    assert torch.allclose(rmu, mu, atol=1e-5) and torch.allclose(rvar, var, atol=1e-6)
    empty_mu, empty_var = enc.posterior(ctx[:, :0])
    assert torch.equal(empty_mu, torch.zeros(2, 3)) and torch.equal(empty_var, torch.ones(2, 3))


def test_kl_closed_form():
    mu, var = torch.tensor([[0.5, -1.0]]), torch.tensor([[2.0, 0.25]])
    expected = 0.5 * sum(v + m * m - 1 - np.log(v) for m, v in [(0.5, 2.0), (-1.0, 0.25)])
    assert kl_to_standard_normal(mu, var).item() == pytest.approx(expected, rel=1e-5)
    assert kl_to_standard_normal(torch.zeros(1, 2), torch.ones(1, 2)).item() == pytest.approx(0.0)


def test_encoder_rejects_wrong_width():
    with pytest.raises(ValueError, match="features per transition"):
        ContextEncoder(4, 2, (8,)).factors(torch.zeros(3, 5))


def test_ring_buffer_wraps_and_samples_only_stored_rows():
    buf = ReplayBuffer(2, 1, capacity=10)
    buf.add_path(_path(6, value=1.0))
    buf.add_path(_path(6, value=2.0))
    assert len(buf) == 10 and buf.ptr == 2
    rng = np.random.default_rng(0)
    batch = buf.sample(500, rng)
    assert set(np.unique(batch["obs"])) == {1.0, 2.0}
    assert batch["obs"].shape == (500, 2) and batch["dones"].shape == (500, 1)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(2, 1, 5).sample(1, rng)
    with pytest.raises(ValueError, match="'rewards' has"):
        p = _path(3)
        p["rewards"] = np.zeros((2, 1))
        buf.add_path(p)


def test_encoder_buffer_cleared_per_round_rl_buffer_keeps_everything():
    mt = MultiTaskReplay(2, 2, 1, capacity=100)
    mt.add_path(0, _path(5, value=1.0))
    mt.enc[0].clear()
    mt.add_path(0, _path(5, value=2.0))
    mt.add_path(0, _path(5, value=3.0), to_encoder=False)
    rng = np.random.default_rng(0)
    assert set(np.unique(mt.enc[0].sample(200, rng)["obs"])) == {2.0}
    assert set(np.unique(mt.rl[0].sample(400, rng)["obs"])) == {1.0, 2.0, 3.0}
    clone = MultiTaskReplay(2, 2, 1, capacity=100)
    clone.load_state_dict(mt.state_dict())
    assert np.array_equal(clone.rl[0].all()["obs"], mt.rl[0].all()["obs"]) and len(clone.enc[0]) == 5


def test_demo_buffer_keeps_rollouts_that_beat_demos():
    demos = DemoBuffer(max_paths=3)
    for r in (-5.0, -4.0, -3.0):
        demos.add(_path(4, ret=r, success=True))
    assert not demos.offer(_path(4, ret=-6.0, success=True))
    assert not demos.offer(_path(4, ret=-1.0, success=False))
    assert demos.offer(_path(4, ret=-2.0, success=True))
    assert [p["return"] for p in demos.paths] == [-2.0, -3.0, -4.0]
    assert context_array(demos.transitions(2)).shape == (8, 2 + 1 + 1)
