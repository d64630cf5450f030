"""ELBO terms of the MELD latent state model: shapes, KL >= 0, rectangular conv stack, gradient isolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from belief.meld.agent import reward_mask, transition_indices
from belief.meld.model import (
    Decoder,
    Encoder,
    LatentModel,
    ModelConfig,
    belief_columns,
    gaussian_kl,
    gaussian_log_prob,
    normalise_image,
)
from tests.belief_meld.conftest import EPISODES, HORIZON, tiny_agent_config


def _batch(B=3, T=EPISODES * (HORIZON + 1), H=16, W=32, A=2, seed=0):
    g = np.random.default_rng(seed)
    return {"images": g.integers(0, 255, (B, T, H, W, 3), dtype=np.uint8),
            "actions": g.uniform(-1, 1, (B, T, A)).astype(np.float32),
            "reward_dense": g.normal(size=(B, T)).astype(np.float32),
            "reward_sparse": (g.uniform(size=(B, T)) < 0.3).astype(np.float32),
            "task_label": g.integers(0, 4, B)}  # read only by a model with the task head


def test_stacked_camera_conv_stack_uses_rectangular_last_filter():
    cfg = ModelConfig(base_depth=2, z1_dim=3, z2_dim=5, hidden=8)  # the real 64x128 stacked image
    enc, dec = Encoder(cfg), Decoder(cfg)
    assert len(enc.convs) == 5 and enc.convs[-1].kernel_size == (4, 8)
    feats = enc(torch.zeros(2, 3, 64, 128, 3, dtype=torch.uint8))
    assert feats.shape == (2, 3, 16)
    assert dec(torch.zeros(2, 3, 8)).shape == (2, 3, 3, 64, 128)
    assert ModelConfig().feature_dim == 256 and ModelConfig().belief_dim == 2 * (32 + 256)


def test_gaussian_kl_is_nonnegative_and_zero_for_equal():
    g = torch.Generator().manual_seed(0)
    mq, mp = torch.randn(100, 7, generator=g), torch.randn(100, 7, generator=g)
    sq, sp = torch.rand(100, 7, generator=g) + 0.1, torch.rand(100, 7, generator=g) + 0.1
    kl = gaussian_kl(mq, sq, mp, sp)
    assert kl.shape == (100,) and (kl >= 0).all()
    assert torch.allclose(gaussian_kl(mq, sq, mq, sq), torch.zeros(100), atol=1e-6)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mq, sq), torch.distributions.Normal(mp, sp))
    assert torch.allclose(kl, ref.sum(-1), atol=1e-4)


def test_elbo_terms_shapes_and_signs():
    torch.manual_seed(0)
    model = LatentModel(tiny_agent_config().model)
    b = {k: torch.as_tensor(v) for k, v in _batch().items()}
    loss, terms, post = model.elbo(b["images"], b["actions"], b["reward_dense"], b["reward_dense"])
    B, T = b["actions"].shape[:2]
    for key, dim in (("mu1", 3), ("std1", 3), ("z1", 3), ("mu2", 5), ("std2", 5), ("z2", 5)):
        assert post[key].shape == (B, T, dim)
    assert (post["std1"] > 0).all() and (post["std2"] > 0).all()
    assert model.belief(post).shape == (B, T, model.cfg.belief_dim)
    assert terms["kl"].item() >= 0
    assert all(torch.isfinite(v) for v in terms.values()) and loss.dim() == 0
    expected = -(terms["image_log_lik"] + 8.0 * terms["reward_log_lik"] - terms["kl"])
    assert torch.allclose(loss, expected)
    loss.backward()
    assert all(p.grad is not None for p in model.reward_decoder.parameters())
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_reward_is_an_observation():
    """Changing only the input reward changes the posterior (the task is inferred from rewards)."""
    torch.manual_seed(0)
    model = LatentModel(tiny_agent_config().model)
    b = {k: torch.as_tensor(v) for k, v in _batch(B=1).items()}
    p1 = model.posterior(b["images"], b["actions"], b["reward_dense"], sample=False)
    p2 = model.posterior(b["images"], b["actions"], b["reward_dense"] + 1.0, sample=False)
    assert not torch.allclose(p1["mu1"], p2["mu1"])


def test_actor_critic_gradients_never_reach_the_model(agent):
    b = agent.to_tensors(_batch())
    _, beliefs = agent.model_step(b)
    assert not beliefs.requires_grad
    agent.model_optim.zero_grad(set_to_none=True)
    before = {k: v.clone() for k, v in agent.model.state_dict().items()}
    agent.actor_critic_step(beliefs, b)
    assert all(p.grad is None for p in agent.model.parameters())
    assert all(torch.equal(before[k], v) for k, v in agent.model.state_dict().items())
    assert any(p.grad is not None for p in agent.sac.actor.parameters())
    with pytest.raises(ValueError, match="detached"):
        agent.actor_critic_step(beliefs.clone().requires_grad_(True), b)


def test_model_step_does_not_touch_actor_critic(agent):
    before = {k: v.clone() for k, v in agent.sac.state_dict().items()}
    stats = agent.train_step(_batch(), train_actor_critic=False)
    assert "model_loss" in stats and "critic_loss" not in stats
    assert all(torch.equal(before[k], v) for k, v in agent.sac.state_dict().items())


def test_sparse_agent_sees_sparse_and_reconstructs_dense():
    torch.manual_seed(0)
    from belief.meld.agent import MeldAgent

    ag = MeldAgent(tiny_agent_config(reward_input="sparse"), EPISODES, HORIZON)
    b = ag.to_tensors(_batch())
    seen = {}
    orig = ag.model.elbo

    def spy(images, actions, reward_in, reward_target, *rest):
        seen["in"], seen["target"] = reward_in, reward_target
        return orig(images, actions, reward_in, reward_target, *rest)

    ag.model.elbo = spy
    ag.model_step(b)
    assert torch.equal(seen["in"], b["reward_sparse"]) and torch.equal(seen["target"], b["reward_dense"])


def test_transitions_bootstrap_across_the_episode_boundary_only():
    cur, nxt, done = transition_indices(2, 3)  # frames 0..3 episode 1, 4..7 episode 2
    assert cur.tolist() == [0, 1, 2, 4, 5, 6]
    assert nxt.tolist() == [1, 2, 4, 5, 6, 7]
    assert done.tolist() == [0, 0, 0, 0, 0, 1]


def test_decoding_a_subset_of_frames_estimates_the_same_image_term():
    """decoded_frames=k decodes k frames per sequence: same per-frame image log-likelihood in expectation,
    KL and reward terms unchanged, and frames left out this step get no image gradient."""
    b = {k: torch.as_tensor(v) for k, v in _batch().items()}
    full = LatentModel(tiny_agent_config().model)
    cfg = tiny_agent_config().model
    cfg.decoded_frames = 3
    sub = LatentModel(cfg)
    sub.load_state_dict(full.state_dict())
    calls = []
    sub.decoder.register_forward_hook(lambda mod, inp, out: calls.append(out.shape))
    torch.manual_seed(1)
    _, t_full, _ = full.elbo(b["images"], b["actions"], b["reward_dense"], b["reward_dense"])
    torch.manual_seed(1)
    _, t_sub, _ = sub.elbo(b["images"], b["actions"], b["reward_dense"], b["reward_dense"])
    assert calls == [(3, 3, 3, 16, 32)]  # (B, decoded frames, C, H, W)
    assert torch.equal(t_full["kl"], t_sub["kl"]) and torch.equal(t_full["reward_log_lik"], t_sub["reward_log_lik"])
    # the same per-frame term as the full model, on exactly the frames drawn (same RNG stream)
    torch.manual_seed(1)
    post = full.posterior(b["images"], b["actions"], b["reward_dense"], sample=True)
    frames = torch.randperm(b["actions"].shape[1])[:3]
    recon = full.decoder(torch.cat([post["z1"], post["z2"]], -1)[:, frames]).flatten(-3)
    target = normalise_image(b["images"][:, frames]).flatten(-3)
    per_frame = gaussian_log_prob(recon, target, torch.full_like(recon, cfg.decoder_std))
    assert torch.allclose(t_sub["image_log_lik"], per_frame.mean())
    with pytest.raises(ValueError, match="decoded_frames"):
        ModelConfig(decoded_frames=-1)


def test_several_actor_critic_updates_per_model_step():
    torch.manual_seed(0)
    from belief.meld.agent import MeldAgent

    ag = MeldAgent(tiny_agent_config(ac_updates_per_step=3), EPISODES, HORIZON)
    n = {"model": 0, "sac": 0}
    model_step, sac_update = ag.model_step, ag.sac.update
    ag.model_step = lambda b: (n.__setitem__("model", n["model"] + 1), model_step(b))[1]
    ag.sac.update = lambda *a, **k: (n.__setitem__("sac", n["sac"] + 1), sac_update(*a, **k))[1]
    ag.train_step(_batch())
    assert n == {"model": 1, "sac": 3}
    with pytest.raises(ValueError, match="ac_updates_per_step"):
        tiny_agent_config(ac_updates_per_step=0)


def test_predictive_reward_term_predicts_from_the_previous_step_only():
    """predictive_reward_weight adds log p(r_{t+1} | prior z_{t+1} from posterior z_t, a_t): the loss is the
    plain ELBO minus w x that term, and the term cannot see the reward it predicts (unlike the plain one,
    which the posterior can meet by echoing its reward input)."""
    b = {k: torch.as_tensor(v) for k, v in _batch().items()}
    cfg = tiny_agent_config().model
    cfg.predictive_reward_weight = 2.0
    model = LatentModel(cfg)
    plain = LatentModel(tiny_agent_config().model)
    plain.load_state_dict(model.state_dict())
    torch.manual_seed(3)
    loss, terms, _ = model.elbo(b["images"], b["actions"], b["reward_dense"], b["reward_dense"])
    torch.manual_seed(3)
    plain_loss, plain_terms, _ = plain.elbo(b["images"], b["actions"], b["reward_dense"], b["reward_dense"])
    assert "predictive_reward_log_lik" not in plain_terms
    assert torch.allclose(loss, plain_loss - 2.0 * terms["predictive_reward_log_lik"])
    # the last frame's input reward changes the plain reward term, not the one-step prediction of it
    r_in = b["reward_dense"].clone()
    r_in[:, -1] += 5.0
    torch.manual_seed(3)
    _, changed, _ = model.elbo(b["images"], b["actions"], r_in, b["reward_dense"])
    assert not torch.allclose(changed["reward_log_lik"], terms["reward_log_lik"])
    assert torch.allclose(changed["predictive_reward_log_lik"], terms["predictive_reward_log_lik"])
    model.zero_grad()
    terms["predictive_reward_log_lik"].backward()
    assert all(p.grad is not None for p in model.z2_transition.parameters())
    assert all(p.grad is not None for p in model.encoder.parameters())  # through the posterior z_t
    with pytest.raises(ValueError, match="predictive_reward_weight"):
        type(cfg)(predictive_reward_weight=-1.0)


def test_task_identification_term_reads_the_task_from_the_belief_mean():
    """task_id_weight adds w x cross-entropy of a head on mu2 predicting each trial's task label at every
    frame; it needs labels, trains the filter (not only the head) and leaves the plain ELBO unchanged."""
    b = {k: torch.as_tensor(v) for k, v in _batch().items()}
    cfg = tiny_agent_config().model
    cfg.task_id_weight, cfg.task_classes = 0.5, 4
    model = LatentModel(cfg)
    labels = torch.tensor([0, 3, 1])
    torch.manual_seed(3)
    loss, terms, post = model.elbo(b["images"], b["actions"], b["reward_dense"], b["reward_dense"],
                                   task_labels=labels)
    ce, acc = model.task_id_terms(post["mu2"], labels)
    assert ce.shape == acc.shape == b["actions"].shape[:2] and (ce >= 0).all()
    plain = -(terms["image_log_lik"] + 8.0 * terms["reward_log_lik"] - terms["kl"])
    assert torch.allclose(loss, plain + 0.5 * terms["task_id_ce"])
    model.zero_grad()
    terms["task_id_ce"].backward()
    assert all(p.grad is not None for p in model.task_head.parameters())
    assert all(p.grad is not None for p in model.z2_transition.parameters())  # the belief itself learns it
    with pytest.raises(ValueError, match="task_labels"):
        model.elbo(b["images"], b["actions"], b["reward_dense"], b["reward_dense"])
    assert LatentModel(tiny_agent_config().model).task_head is None  # off by default (MELD)


def test_task_label_mask_keeps_the_unflagged_trials_out_of_the_task_identification_term():
    """task_label_mask: the task-id term (and its accuracy) average over the flagged trials only; a batch
    with none flagged adds nothing; a mask not one flag per trial is refused by name."""
    b = {k: torch.as_tensor(v) for k, v in _batch().items()}
    cfg = tiny_agent_config().model
    cfg.task_id_weight, cfg.task_classes = 0.5, 4
    model = LatentModel(cfg)
    labels, keep = torch.tensor([0, 3, 1]), torch.tensor([True, False, True])
    args = (b["images"], b["actions"], b["reward_dense"], b["reward_dense"])
    torch.manual_seed(3)
    loss, terms, post = model.elbo(*args, task_labels=labels, task_label_mask=keep)
    ce, acc = model.task_id_terms(post["mu2"], labels)
    assert torch.allclose(terms["task_id_ce"], ce[keep].mean()) and torch.allclose(terms["task_id_acc"], acc[keep].mean())
    assert not torch.allclose(terms["task_id_ce"], ce.mean())
    plain = -(terms["image_log_lik"] + 8.0 * terms["reward_log_lik"] - terms["kl"])
    assert torch.allclose(loss, plain + 0.5 * terms["task_id_ce"])
    torch.manual_seed(3)
    _, none, _ = model.elbo(*args, task_labels=labels, task_label_mask=torch.zeros(3, dtype=torch.bool))
    assert none["task_id_ce"].item() == 0.0
    with pytest.raises(ValueError, match="task_label_mask must hold one flag per trial, shape \\(3,\\), got \\(2,\\)"):
        model.elbo(*args, task_labels=labels, task_label_mask=keep[:2])


def test_belief_columns_name_the_parts_of_the_belief():
    """belief_columns is the layout LatentModel.belief writes: the probe's memory part is mu2."""
    from belief.meld.model import belief_columns

    torch.manual_seed(0)
    model = LatentModel(tiny_agent_config().model)
    b = {k: torch.as_tensor(v) for k, v in _batch(B=1).items()}
    post = model.posterior(b["images"], b["actions"], b["reward_dense"], sample=False)
    belief = model.belief(post)
    cols = belief_columns(model.z1_dim, model.z2_dim)
    for name in ("mu1", "std1", "mu2", "std2"):
        assert torch.equal(belief[..., cols[name]], post[name])
    assert cols["std2"].stop == model.cfg.belief_dim


def test_episode_start_flag_marks_reset_frames_and_is_learnt():
    """episode_start_input: the transition heads see a flag that is 1 exactly where the previous action is
    all zeros (each episode's reset frame), and the ELBO trains the weights that read it."""
    cfg = tiny_agent_config().model
    cfg.episode_start_input = True
    model = LatentModel(cfg)
    a = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, -0.2], [0.0, 0.0]])
    assert model.action_input(a)[:, -1].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert torch.equal(LatentModel(tiny_agent_config().model).action_input(a), a)  # off by default (MELD)
    b = {k: torch.as_tensor(v) for k, v in _batch().items()}
    b["actions"][:, HORIZON] = 0.0  # the stored layout: the frame after an episode's last action
    loss, _, _ = model.elbo(b["images"], b["actions"], b["reward_dense"], b["reward_dense"])
    loss.backward()
    for head in (model.z1_prior, model.z1_posterior, model.z2_transition):
        assert head.net[0].weight.grad[:, -1].abs().sum() > 0  # the flag's input column


@pytest.mark.parametrize("sample", [False, True])
def test_z2_is_carried_unchanged_over_the_reset_frame_only(sample):
    """carry_z2_over_reset: at the reset frame (previous action all zeros, not the trial's first frame) z2
    and its mean are the previous z2, so the jump back to the start pose cannot rewrite it; z1 still
    reads the new image. Off (MELD), the transition draws a new z2 there."""
    cfg = tiny_agent_config().model
    cfg.carry_z2_over_reset = True
    torch.manual_seed(0)
    carrying, plain = LatentModel(cfg), LatentModel(tiny_agent_config().model)
    plain.load_state_dict(carrying.state_dict())
    b = {k: torch.as_tensor(v) for k, v in _batch().items()}
    b["actions"][:, HORIZON] = 0.0  # the stored layout: the frame after an episode's last action
    reset = HORIZON + 1
    torch.manual_seed(1)
    post = carrying.posterior(b["images"], b["actions"], b["reward_dense"], sample=sample)
    torch.manual_seed(1)
    ref = plain.posterior(b["images"], b["actions"], b["reward_dense"], sample=sample)
    assert torch.equal(post["z2"][:, reset], post["z2"][:, reset - 1])
    assert torch.equal(post["mu2"][:, reset], post["z2"][:, reset - 1])
    assert not torch.allclose(ref["z2"][:, reset], ref["z2"][:, reset - 1])
    for k in ("z1", "z2", "mu1"):  # identical before the reset frame; z1 there still reads the image
        assert torch.equal(post[k][:, :reset], ref[k][:, :reset]), k
    assert not torch.equal(post["mu1"][:, reset], post["mu1"][:, reset - 1])
    loss, terms, _ = carrying.elbo(b["images"], b["actions"], b["reward_dense"], b["reward_dense"])
    assert torch.isfinite(loss) and terms["kl"] >= 0
    with pytest.raises(ValueError, match="carry_z2_over_reset must be true or false"):
        ModelConfig(action_dim=2, carry_z2_over_reset="yes")


def test_z_restarts_at_the_reset_frame_and_only_the_task_latent_carries_over(monkeypatch):
    """restart_z_each_episode: from the reset frame (previous action all zeros) episode 2's z1/z2 are what
    filtering episode 2 alone gives, and the ELBO's z1 prior there is N(0, I) (as at a trial's start);
    the task latent still holds episode 1's evidence. Open-loop rollouts through the reset restart too."""
    cfg = tiny_agent_config().model
    cfg.task_latent_dim, cfg.restart_z_each_episode = 4, True
    cfg.predictive_reward_weight, cfg.predictive_reward_horizon = 1.0, 1
    torch.manual_seed(0)
    model = LatentModel(cfg)
    b = {k: torch.as_tensor(v) for k, v in _batch().items()}
    b["actions"][:, HORIZON] = 0.0  # the stored layout: the frame after an episode's last action
    reset = HORIZON + 1
    with torch.no_grad():
        post = model.posterior(b["images"], b["actions"], b["reward_dense"], sample=False)
        ep2 = model.posterior(b["images"][:, reset:], b["actions"][:, reset:], b["reward_dense"][:, reset:],
                              sample=False)
    for k in ("mu1", "std1", "mu2", "std2"):
        assert torch.allclose(post[k][:, reset:], ep2[k], atol=1e-6), k
    assert not torch.allclose(post["mu_c"][:, reset:], ep2["mu_c"], atol=1e-4)  # c carries episode 1 over
    # noise-free ELBO: its KL must equal the reference below, which takes N(0, I) as z1's prior at the
    # trial's first frame and at the reset frame, and the z1 prior head everywhere else
    monkeypatch.setattr(torch, "randn", lambda *a, **k: torch.zeros(*a, **{n: v for n, v in k.items()
                                                                         if n != "generator"}))
    monkeypatch.setattr(torch, "randn_like", torch.zeros_like)
    monkeypatch.setattr(torch, "randperm", lambda n, **k: torch.arange(n))
    with torch.no_grad():
        _, terms, _ = model.elbo(b["images"], b["actions"], b["reward_dense"], b["reward_dense"])
        p = post
        kl_reset = gaussian_kl(p["mu1"][:, reset], p["std1"][:, reset], torch.zeros_like(p["mu1"][:, reset]),
                               torch.ones_like(p["std1"][:, reset]))
        kl_first = gaussian_kl(p["mu1"][:, 0], p["std1"][:, 0], torch.zeros_like(p["mu1"][:, 0]),
                               torch.ones_like(p["std1"][:, 0]))
        mu1p, std1p = model.z1_prior(torch.cat([p["z2"][:, :-1], b["actions"][:, :-1]], -1))
        kl_rest = gaussian_kl(p["mu1"][:, 1:], p["std1"][:, 1:], mu1p, std1p)
        kl_rest[:, reset - 1] = kl_reset
        kl_c = gaussian_kl(p["mu_c"][:, -1], p["std_c"][:, -1], torch.zeros_like(p["mu_c"][:, -1]),
                           torch.ones_like(p["std_c"][:, -1]))
        T = b["actions"].shape[1]
        expected = (torch.cat([kl_first.unsqueeze(1), kl_rest], 1) + (kl_c / T).unsqueeze(1)).mean()
        assert torch.allclose(terms["kl"], expected, rtol=1e-5)
        # a rollout that reaches the reset frame restarts: z1 from N(0, I) (mean 0), z2 from the first-step head
        assert not b["actions"][:, reset - 1].any()  # the rollout steps from episode 1's last frame on a zero action
        z1 = torch.zeros(3, 1, cfg.z1_dim)
        z2 = model.z2_first(z1)[0]
        r_mu, r_std = model.reward_decoder(torch.cat([z1, z2, p["c"][:, reset - 1:reset]], -1))
        mask = torch.zeros_like(b["reward_dense"])
        mask[:, reset] = 1.0  # score only the rollouts that land on the reset frame (k = 1 from its predecessor)
        got = model._predictive_reward_log_lik(p, b["actions"], b["reward_dense"], mask)
        want = gaussian_log_prob(b["reward_dense"][:, reset].reshape(3, 1, 1), r_mu, r_std).mean()
        assert torch.allclose(got, want, rtol=1e-5)
    for bad, match in (({"restart_z_each_episode": True}, "needs a task latent"),
                       ({"restart_z_each_episode": True, "task_latent_dim": 2, "carry_z2_over_reset": True},
                        "contradict"),
                       ({"restart_z_each_episode": "yes", "task_latent_dim": 2}, "must be true or false")):
        with pytest.raises(ValueError, match=match):
            ModelConfig(action_dim=2, **bad)


def test_predictive_reward_horizon_rolls_the_prior_open_loop_through_the_episode_boundary(monkeypatch):
    """predictive_reward_horizon K averages log p(r_{t+k}), k = 1..K, with z_{t+k} from the prior rolled from
    the posterior z_t on the actions taken; rollouts from episode 1's last frames pass the reset frame
    (masked: no reward) into episode 2. Checked against a per-start reference with noise-free rollouts."""
    torch.manual_seed(0)
    b = {k: torch.as_tensor(v) for k, v in _batch(B=2).items()}
    cfg = tiny_agent_config().model
    cfg.predictive_reward_weight, cfg.predictive_reward_horizon = 1.0, 3
    model = LatentModel(cfg)
    mask = torch.as_tensor(reward_mask(EPISODES, HORIZON)).expand_as(b["reward_dense"])
    with torch.no_grad():
        post = model.posterior(b["images"], b["actions"], b["reward_dense"], sample=False)
    monkeypatch.setattr(torch, "randn_like", torch.zeros_like)  # rollouts follow the prior means
    term = model._predictive_reward_log_lik(post, b["actions"], b["reward_dense"], mask)

    T, total, count, crossing = b["actions"].shape[1], 0.0, 0.0, 0
    for t in range(T - 1):
        z2 = post["z2"][:, t]
        for k in range(1, 4):
            if t + k >= T:
                break
            a = b["actions"][:, t + k - 1]
            z1, _ = model.z1_prior(torch.cat([z2, a], -1))
            z2, _ = model.z2_transition(torch.cat([z1, z2, a], -1))
            r_mu, r_std = model.reward_decoder(torch.cat([z1, z2], -1))
            ll = gaussian_log_prob(b["reward_dense"][:, t + k].unsqueeze(-1), r_mu, r_std)
            total, count = total + (ll * mask[:, t + k]).sum(), count + mask[:, t + k].sum()
            crossing += int(t <= HORIZON < t + k)  # starts in episode 1, predicts into episode 2
    assert crossing > 0
    assert torch.allclose(term, total / count)
    # no rollout sees an input reward after its start: the last frame's input cannot change the term
    r_in = b["reward_dense"].clone()
    r_in[:, -1] += 5.0
    with torch.no_grad():
        post2 = model.posterior(b["images"], b["actions"], r_in, sample=False)
    assert torch.allclose(model._predictive_reward_log_lik(post2, b["actions"], b["reward_dense"], mask), term)
    with pytest.raises(ValueError, match="predictive_reward_horizon"):
        ModelConfig(predictive_reward_horizon=0)
    with pytest.raises(ValueError, match="predictive_reward_horizon"):
        ModelConfig(predictive_reward_horizon=2.5)


def _sac_update_inputs(ag, beliefs, b) -> dict:
    """One actor-critic step of `ag` on `beliefs`; returns what it handed SAC.update: obs, next_obs
    and the keyword inputs (actor_obs, next_actor_obs where given)."""
    seen = {}
    orig = ag.sac.update

    def spy(obs, actions, rewards, next_obs, dones, **kw):
        seen.update(obs=obs, next_obs=next_obs, **kw)
        return orig(obs, actions, rewards, next_obs, dones, **kw)

    ag.sac.update = spy
    ag.actor_critic_step(beliefs, b)
    return seen


def test_privileged_critic_sees_each_trials_task_and_the_actor_the_belief_alone():
    """agent.privileged_critic: every transition's critic input is its belief followed by its own trial's
    task descriptor; the actor (what is exported) keeps belief_dim inputs; no gradient reaches the model."""
    torch.manual_seed(0)
    from belief.meld.agent import MeldAgent

    with pytest.raises(ValueError, match="critic_task_dim"):
        MeldAgent(tiny_agent_config(privileged_critic=True), EPISODES, HORIZON)
    with pytest.raises(ValueError, match="privileged_critic must be true or false, got 'ture'"):
        tiny_agent_config(privileged_critic="ture")
    ag = MeldAgent(tiny_agent_config(privileged_critic=True, critic_task_dim=3), EPISODES, HORIZON)
    belief_dim = ag.cfg.model.belief_dim
    assert ag.sac.actor.net[0].in_features == belief_dim
    assert ag.sac.critic.q1[0].in_features == belief_dim + 3 + ag.cfg.model.action_dim
    batch = _batch(B=3)
    batch["task_features"] = np.eye(3, dtype=np.float32) * np.array([1.0, 2.0, 3.0], np.float32)
    b = ag.to_tensors(batch)
    _, beliefs = ag.model_step(b)
    ag.model_optim.zero_grad(set_to_none=True)
    seen = _sac_update_inputs(ag, beliefs, b)
    n = len(transition_indices(EPISODES, HORIZON)[0])
    for i in range(3):
        rows = slice(i * n, (i + 1) * n)
        assert torch.equal(seen["obs"][rows, belief_dim:], b["task_features"][i].expand(n, -1))
        assert torch.equal(seen["next_obs"][rows, belief_dim:], b["task_features"][i].expand(n, -1))
        assert torch.equal(seen["obs"][rows, :belief_dim], seen["actor_obs"][rows])
    assert seen["actor_obs"].shape[-1] == seen["next_actor_obs"].shape[-1] == belief_dim
    assert all(p.grad is None for p in ag.model.parameters())
    del b["task_features"]
    with pytest.raises(ValueError, match="task_features"):
        ag.actor_critic_step(beliefs, b)


def test_task_probabilities_join_the_belief_the_actor_sees():
    """task_probs_in_belief appends softmax(task_head(mu2)) after the posterior parameters; it needs the
    task head, and non-boolean values are rejected by name."""
    cfg = tiny_agent_config().model
    cfg.task_id_weight, cfg.task_classes, cfg.task_probs_in_belief = 1.0, 4, True
    model = LatentModel(cfg)
    b = {k: torch.as_tensor(v) for k, v in _batch().items()}
    with torch.no_grad():
        post = model.posterior(b["images"], b["actions"], b["reward_dense"], sample=False)
        belief = model.belief(post)
    base = 2 * (cfg.z1_dim + cfg.z2_dim)
    assert belief.shape[-1] == cfg.belief_dim == base + 4
    assert torch.allclose(belief[..., base:], torch.softmax(model.task_head(post["mu2"]), -1))
    assert torch.allclose(belief[..., base:].sum(-1), torch.ones(belief.shape[:2]))
    with pytest.raises(ValueError, match="task_probs_in_belief needs the task head"):
        type(cfg)(task_probs_in_belief=True)
    with pytest.raises(ValueError, match="task_probs_in_belief must be true or false, got 'yes'"):
        type(cfg)(task_id_weight=1.0, task_probs_in_belief="yes")
    with pytest.raises(ValueError, match="task_probs_in_belief needs task_classes >= 2"):
        LatentModel(type(cfg)(task_id_weight=1.0, task_probs_in_belief=True))  # the trainer never set the classes


def _port_probs_agent_step(agent_options: dict | None = None, **model_options):
    """A tiny agent with a task latent (restarting z each episode) and the port probabilities in its
    belief, plus `model_options` (and AgentConfig `agent_options`); one model step and one actor-critic
    step on a batch. Returns the agent, its model config, the beliefs and what the actor-critic step
    handed SAC.update."""
    from belief.meld.agent import MeldAgent

    cfg = tiny_agent_config()
    for name, value in (agent_options or {}).items():
        setattr(cfg, name, value)
    m = cfg.model
    m.task_latent_dim, m.restart_z_each_episode = 4, True
    m.task_id_weight, m.task_classes, m.task_probs_in_belief = 1.0, 4, True
    for name, value in model_options.items():
        setattr(m, name, value)
    ag = MeldAgent(cfg, EPISODES, HORIZON)
    b = ag.to_tensors(_batch())
    _, beliefs = ag.model_step(b)
    return ag, m, beliefs, _sac_update_inputs(ag, beliefs, b)


def test_a_hidden_task_latent_reaches_the_actor_only_through_the_port_probabilities():
    """actor_sees_task_latent false: the actor's SAC inputs, and the policy's actions, see mu_c = 0 and
    std_c = 1 whatever the belief holds there, the rest of the belief unchanged; the critic sees it all.
    It needs a task latent and the probabilities in the belief; non-booleans are refused by name."""
    torch.manual_seed(0)
    from belief.meld.policy import MeldPolicy

    ag, m, beliefs, seen = _port_probs_agent_step(actor_sees_task_latent=False)
    cols = belief_columns(m.z1_dim, m.z2_dim, m.task_latent_dim)
    for key in ("obs", "next_obs"):
        full, view = seen[key], seen[f"{'next_' if key == 'next_obs' else ''}actor_obs"]
        assert full[:, cols["mu_c"]].abs().sum() > 0  # the critic sees the task latent
        assert torch.all(view[:, cols["mu_c"]] == 0) and torch.all(view[:, cols["std_c"]] == 1)
        rest = torch.ones(m.belief_dim, dtype=torch.bool)
        rest[cols["mu_c"]] = rest[cols["std_c"]] = False
        assert torch.equal(view[:, rest], full[:, rest])
    policy = MeldPolicy(ag.model, ag.sac.actor)
    belief = beliefs[0, 3]
    moved = belief.clone()
    moved[cols["mu_c"]] += 3.0
    moved[cols["std_c"]] *= 0.1
    assert torch.equal(policy.act(moved), policy.act(belief))  # the task latent alone does not move it
    from belief.meld.probe import ActorOnBelief  # the probe reads the actor the way the policy runs it

    probe_actor = ActorOnBelief(ag.sac.actor, ag.model)
    assert torch.allclose(probe_actor.act_mean(moved[None])[0], policy.act(belief))
    other_port = belief.clone()
    other_port[-4:] = torch.tensor([0.0, 0.0, 0.0, 1.0])
    assert not torch.allclose(policy.act(other_port), policy.act(belief))  # the probabilities do
    with pytest.raises(ValueError, match="actor_sees_task_latent: false .* needs task_latent_dim > 0 and "
                                         "task_probs_in_belief"):
        ModelConfig(task_id_weight=1.0, task_probs_in_belief=True, actor_sees_task_latent=False)
    with pytest.raises(ValueError, match="actor_sees_task_latent must be true or false, got 'no'"):
        ModelConfig(actor_sees_task_latent="no")


def test_an_actor_committed_to_the_most_probable_port_sees_its_one_hot():
    """actor_commits_to_port: the actor's SAC inputs, and the policy, see the port probabilities as a
    one-hot of the most probable port, the rest of the belief unchanged; the critic sees the
    probabilities; a belief whose most probable port is the same acts the same, another port acts
    differently. It needs the probabilities in the belief; non-booleans are refused by name."""
    torch.manual_seed(0)
    from belief.meld.policy import MeldPolicy

    ag, _, beliefs, seen = _port_probs_agent_step(actor_commits_to_port=True)
    for key in ("obs", "next_obs"):
        full, view = seen[key], seen[f"{'next_' if key == 'next_obs' else ''}actor_obs"]
        probs = full[:, -4:]
        assert torch.allclose(probs.sum(-1), torch.ones(len(probs))) and not torch.all((probs == 0) | (probs == 1))
        assert torch.equal(view[:, -4:], F.one_hot(probs.argmax(-1), 4).float())
        assert torch.equal(view[:, :-4], full[:, :-4])
    policy = MeldPolicy(ag.model, ag.sac.actor)
    belief = beliefs[0, 3].clone()
    belief[-4:] = torch.tensor([0.1, 0.4, 0.3, 0.2])
    same_port = belief.clone()
    same_port[-4:] = torch.tensor([0.0, 1.0, 0.0, 0.0])
    other_port = belief.clone()
    other_port[-4:] = torch.tensor([0.1, 0.3, 0.4, 0.2])
    assert torch.equal(policy.act(same_port), policy.act(belief))
    assert not torch.allclose(policy.act(other_port), policy.act(belief))
    with pytest.raises(ValueError, match="actor_commits_to_port .* needs task_probs_in_belief"):
        ModelConfig(actor_commits_to_port=True)
    with pytest.raises(ValueError, match="actor_commits_to_port must be true or false, got 1"):
        ModelConfig(actor_commits_to_port=1)


def test_an_actor_critic_trained_on_the_true_port_sees_its_one_hot_in_every_update():
    """ac_true_port: SAC's critic and actor inputs hold the one-hot of each trial's task_label where the
    belief holds the head's probabilities, the rest of the belief unchanged, in every transition of the
    trial; the policy still acts on the head's most probable port. It needs actor_commits_to_port and
    the labels; non-booleans are refused by name."""
    torch.manual_seed(0)
    from belief.meld.agent import AgentConfig
    from belief.meld.policy import MeldPolicy

    ag, _, beliefs, seen = _port_probs_agent_step({"ac_true_port": True}, actor_commits_to_port=True,
                                                  actor_sees_task_latent=False)
    labels = torch.as_tensor(_batch()["task_label"])
    per_trial = len(seen["obs"]) // len(labels)
    true_port = F.one_hot(labels, 4).float().repeat_interleave(per_trial, 0)
    assert not torch.equal(beliefs[..., -4:].argmax(-1)[:, 0], labels)  # the head's guess differs somewhere
    for key in ("obs", "next_obs", "actor_obs", "next_actor_obs"):
        assert torch.equal(seen[key][:, -4:], true_port)
    flat = beliefs[:, ag._cur].reshape(len(seen["obs"]), -1)
    assert torch.equal(seen["obs"][:, :-4], flat[:, :-4])
    policy = MeldPolicy(ag.model, ag.sac.actor)
    belief = beliefs[0, 3]
    head_port = belief.clone()
    head_port[-4:] = F.one_hot(belief[-4:].argmax(), 4).float()
    assert torch.equal(policy.act(belief), policy.act(head_port))
    b = ag.to_tensors({k: v for k, v in _batch().items() if k != "task_label"})
    with pytest.raises(ValueError, match="ac_true_port needs batch\\['task_label'\\]"):
        ag.transitions(beliefs, b)
    with pytest.raises(ValueError, match="ac_true_port .* needs model.actor_commits_to_port"):
        AgentConfig(ac_true_port=True)
    with pytest.raises(ValueError, match="ac_true_port must be true or false, got 'yes'"):
        AgentConfig(ac_true_port="yes")


def test_a_collecting_actor_handed_a_port_acts_on_its_one_hot():
    """MeldPolicy.step_sampled(handed_port=k): the actor's input holds the one-hot of k where the belief
    holds the head's probabilities (the belief returned is the model's own); `handed` does the same for
    the deterministic actor; a class out of range, and a handed port to random actions, are refused by name."""
    from belief.meld.policy import MeldPolicy
    from belief.meld.trials import run_trial

    torch.manual_seed(0)
    ag, _, _, _ = _port_probs_agent_step({"ac_true_port": True}, actor_commits_to_port=True)
    policy = MeldPolicy(ag.model, ag.sac.actor)
    seen = []
    policy.actor_net.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    args = (torch.zeros(16, 32, 3, dtype=torch.uint8), torch.zeros(2), torch.zeros(1), policy.initial_state())
    _, _, belief = policy.step_sampled(*args, handed_port=2)
    assert torch.equal(seen[-1][..., -4:], torch.tensor([0.0, 0.0, 1.0, 0.0]))
    assert torch.allclose(belief[-4:].sum(), torch.tensor(1.0)) and not torch.all((belief[-4:] == 0) | (belief[-4:] == 1))
    policy.step_sampled(*args)
    assert torch.equal(seen[-1][..., -4:], F.one_hot(seen[-1][..., -4:].argmax(-1), 4).float())
    with pytest.raises(ValueError, match="handed_port must be a task class in \\[0, 4\\), got 4"):
        policy.step_sampled(*args, handed_port=4)
    policy.act(policy.handed(belief, 1))  # the deterministic actor handed a port (evaluate --hand-true-port)
    assert torch.equal(seen[-1][..., -4:], torch.tensor([0.0, 1.0, 0.0, 0.0]))
    from tests.belief_meld.fake_env import FakeImageEnv

    env = FakeImageEnv(episode_steps=3)
    for port in (0, 3):  # the deterministic trial hands it from episode 2 on (frames 4-7): that port's one-hot
        seen.clear()
        run_trial(env, env.tasks.train[0], policy, EPISODES, "mean", handed_port=port, handed_from_episode=1, seed=0)
        handed = F.one_hot(torch.tensor(port), 4).float()
        assert len(seen) == 8 and all(torch.equal(x[..., -4:].reshape(-1), handed) for x in seen[4:])
    with pytest.raises(ValueError, match="handed_port .* needs mode 'sample' or 'mean', got 'random'"):
        run_trial(None, None, policy, EPISODES, "random", handed_port=1)



def _assert_exported_steps_alike(policy, agent_cfg, frames, prev, path) -> None:
    """`policy` exported to `path` steps through (frames, prev actions) with the eager policy's actions and state."""
    from belief.meld.export import build_metadata, export_policy
    from belief.policy_file import LoadedPolicy
    from tests.belief_meld.test_export import ENV_META

    loaded = LoadedPolicy(export_policy(policy, build_metadata(agent_cfg, ENV_META, policy.state_dim), path))
    assert loaded.metadata.state_dim == policy.state_dim
    state, want_state = loaded.initial_state(), policy.initial_state()
    for x, a in zip(frames, prev, strict=True):
        action, state = loaded.step(x.numpy(), a.numpy(), 0.0, state)
        with torch.no_grad():
            want, want_state = policy.step(x, a, torch.zeros(1), want_state)
        np.testing.assert_allclose(action, want.numpy(), atol=1e-5)
        np.testing.assert_allclose(state, want_state.numpy(), atol=1e-5)

def test_a_held_actor_acts_on_the_port_the_head_named_at_the_episode_start(tmp_path):
    """actor_holds_episode_port: the policy's belief carries the head's probabilities of the episode's
    first frame (trial start or a reset frame, prev_action all zeros) through the episode, the rest of
    the belief the same as without the hold; the exported step does the same. It needs a committed
    actor and ac_true_port; non-booleans are refused by name."""
    import copy

    from belief.meld.agent import AgentConfig
    from belief.meld.policy import MeldPolicy

    torch.manual_seed(0)
    ag, m, _, _ = _port_probs_agent_step({"ac_true_port": True}, actor_commits_to_port=True)
    free = MeldPolicy(ag.model, ag.sac.actor)
    held_model = copy.deepcopy(ag.model)
    held_model.actor_holds_episode_port = True
    held = MeldPolicy(held_model, ag.sac.actor)
    assert held.state_dim == free.state_dim + 4
    g = torch.Generator().manual_seed(1)
    frames = [torch.randint(0, 255, (16, 32, 3), dtype=torch.uint8, generator=g) for _ in range(6)]
    prev = [torch.zeros(2), torch.ones(2), -torch.ones(2), torch.zeros(2), torch.ones(2), torch.ones(2)]
    s_free, s_held, free_b, held_b = free.initial_state(), held.initial_state(), [], []
    for x, a in zip(frames, prev, strict=True):
        b, s_free = free.belief(x, a, torch.zeros(1), s_free)
        h, s_held = held.belief(x, a, torch.zeros(1), s_held)
        free_b.append(b)
        held_b.append(h)
    for t, (b, h) in enumerate(zip(free_b, held_b, strict=True)):
        start = 0 if t < 3 else 3  # frames 0 and 3 start an episode
        assert torch.allclose(h[:-4], b[:-4], atol=1e-6) and torch.allclose(h[-4:], free_b[start][-4:], atol=1e-6)
    assert any(not torch.allclose(free_b[t][-4:], free_b[0][-4:]) for t in (1, 2))  # the head did move
    _assert_exported_steps_alike(held, ag.cfg, frames, prev, tmp_path / "held.ts")
    with pytest.raises(ValueError, match="actor_holds_episode_port .* needs actor_commits_to_port"):
        ModelConfig(task_id_weight=1.0, task_probs_in_belief=True, actor_holds_episode_port=True)
    with pytest.raises(ValueError, match="actor_holds_episode_port must be true or false, got 1"):
        ModelConfig(actor_holds_episode_port=1)
    with pytest.raises(ValueError, match="actor_holds_episode_port .* needs ac_true_port"):
        AgentConfig(model={**vars(m), "actor_holds_episode_port": True})



def test_a_held_actor_retakes_the_port_after_the_head_names_another_for_n_frames(tmp_path):
    """actor_retakes_port_after n: the held port probabilities are the head's of the episode's first frame
    until the head has named another port on n consecutive frames, then that frame's (the count starts
    again); a frame naming the held port again resets the count, and an episode's first frame takes the
    head's port whatever the count. Same belief otherwise, the exported step alike; n must be a whole
    number >= 0 and needs the hold."""
    import copy

    from belief.meld.policy import MeldPolicy

    class ScriptedHead(torch.nn.Module):
        """Names the ports of `ports` in turn, one a call (the filter calls the head once a frame)."""

        def __init__(self, ports):
            super().__init__()
            self.ports, self.calls = ports, 0

        def forward(self, x):
            port = self.ports[self.calls]
            self.calls += 1
            return 10.0 * F.one_hot(torch.tensor([port]), 4).to(x).expand(x.shape[0], 4)

    torch.manual_seed(0)
    ag, _, _, _ = _port_probs_agent_step({"ac_true_port": True}, actor_commits_to_port=True)
    g = torch.Generator().manual_seed(2)
    frames = [torch.randint(0, 255, (16, 32, 3), dtype=torch.uint8, generator=g) for _ in range(16)]
    prev = [torch.zeros(2) if t in (0, 8) else torch.rand(2, generator=g) * 2 - 1 for t in range(16)]
    named = [0, 1, 0, 2, 2, 1, 1, 3, 2, 2, 3, 3, 3, 0, 3, 3]  # the head's port at each frame; 0 and 8 start episodes
    held_ports = {1: [0, 1, 0, 2, 2, 1, 1, 3, 2, 2, 3, 3, 3, 0, 3, 3],
                  2: [0, 0, 0, 0, 2, 2, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
                  3: [0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]}  # frames 3-5 name 2, 2, 1: any other port
    free_model = copy.deepcopy(ag.model)
    free_model.task_head = ScriptedHead(named)
    free, free_b = MeldPolicy(free_model, ag.sac.actor), []
    s = free.initial_state()
    for x, a in zip(frames, prev, strict=True):
        b, s = free.belief(x, a, torch.zeros(1), s)
        free_b.append(b)
    assert [int(b[-4:].argmax()) for b in free_b] == named
    for n, want in held_ports.items():
        model = copy.deepcopy(ag.model)
        model.task_head = ScriptedHead(named)
        model.actor_holds_episode_port, model.actor_retakes_port_after = True, n
        policy = MeldPolicy(model, ag.sac.actor)
        assert policy.state_dim == free.state_dim + 5
        s, got = policy.initial_state(), []
        for t, (x, a) in enumerate(zip(frames, prev, strict=True)):
            h, s = policy.belief(x, a, torch.zeros(1), s)
            assert torch.allclose(h[:-4], free_b[t][:-4], atol=1e-6)
            got.append(int(h[-4:].argmax()))
        assert got == want, n
    model = copy.deepcopy(ag.model)
    model.actor_holds_episode_port, model.actor_retakes_port_after = True, 2
    policy = MeldPolicy(model, ag.sac.actor)
    _assert_exported_steps_alike(policy, ag.cfg, frames, prev, tmp_path / "retake.ts")
    base = {"task_id_weight": 1.0, "task_probs_in_belief": True, "actor_commits_to_port": True}
    with pytest.raises(ValueError, match="actor_retakes_port_after .* needs actor_holds_episode_port"):
        ModelConfig(**base, actor_retakes_port_after=3)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="actor_retakes_port_after must be a whole number of frames >= 0"):
            ModelConfig(**base, actor_holds_episode_port=True, actor_retakes_port_after=bad)

def test_task_latent_is_the_product_of_per_frame_factors_and_no_reset_rewrites_it():
    """task_latent_dim: q(c_t) is N(0, I) times one Gaussian factor per frame 0..t, so its precision only
    grows (the reset frame adds evidence, it cannot erase any), the frames' order does not matter, c
    enters the reward decoder, the task head reads mu_c, and the trial's KL(q(c_T) || N(0, I)) is in
    the ELBO's kl term."""
    from belief.meld.model import belief_columns, task_posterior

    cfg = tiny_agent_config().model
    cfg.task_latent_dim, cfg.task_id_weight, cfg.task_classes = 4, 1.0, 4
    torch.manual_seed(0)
    model = LatentModel(cfg)
    b = {k: torch.as_tensor(v) for k, v in _batch().items()}
    b["actions"][:, HORIZON] = 0.0
    with torch.no_grad():
        post = model.posterior(b["images"], b["actions"], b["reward_dense"], sample=False)
        feats = model.features(b["images"], b["reward_dense"])
        a_prev = torch.cat([torch.zeros_like(b["actions"][:, :1]), b["actions"][:, :-1]], 1)
        prec, wmean = model.task_factors(feats, a_prev)
        t = HORIZON + 2
        mu, std = task_posterior(prec[:, :t + 1].sum(1), wmean[:, :t + 1].sum(1))
        # the exported step's running sums, fed the trial's frames backwards, end at the same q(c_T)
        sums = torch.zeros(b["actions"].shape[0], 2 * cfg.task_latent_dim)
        for s in reversed(range(b["actions"].shape[1])):
            mu_p, std_p, sums = model.task_step(feats[:, s], a_prev[:, s], sums)
    assert torch.allclose(post["mu_c"][:, t], mu, atol=1e-5) and torch.allclose(post["std_c"][:, t], std, atol=1e-6)
    assert torch.allclose(mu_p, post["mu_c"][:, -1], atol=1e-5) and torch.allclose(std_p, post["std_c"][:, -1], atol=1e-6)
    assert (post["std_c"][:, 1:] < post["std_c"][:, :-1]).all()  # every frame, the reset frame included
    cols = belief_columns(cfg.z1_dim, cfg.z2_dim, cfg.task_latent_dim)
    belief = model.belief(post)
    assert belief.shape[-1] == cfg.belief_dim and torch.equal(belief[..., cols["mu_c"]], post["mu_c"])
    # the KL term holds the task latent's: the same trial's kl without it is smaller by KL_c / T
    torch.manual_seed(1)
    loss, terms, p = model.elbo(b["images"], b["actions"], b["reward_dense"], b["reward_dense"],
                                task_labels=b["task_label"])
    T = b["actions"].shape[1]
    with torch.no_grad():
        mu1p, std1p = model.z1_prior(torch.cat([p["z2"][:, :-1], b["actions"][:, :-1]], -1))
        kl1 = gaussian_kl(p["mu1"][:, 1:], p["std1"][:, 1:], mu1p, std1p).sum(1) + gaussian_kl(
            p["mu1"][:, 0], p["std1"][:, 0], torch.zeros(3), torch.ones(3))
        kl_c = gaussian_kl(p["mu_c"][:, -1], p["std_c"][:, -1], torch.zeros(4), torch.ones(4))
    assert kl_c.min() > 0
    assert torch.allclose(terms["kl"], (kl1 + kl_c).mean() / T, atol=1e-5)
    loss.backward()
    for head in (model.task_evidence, model.reward_decoder, model.task_head):
        assert all(q.grad is not None and q.grad.abs().sum() > 0 for q in head.parameters())
    assert model.reward_decoder.net[0].weight.grad[:, -4:].abs().sum() > 0  # c's input columns
    assert model.task_head[0].in_features == 4  # reads mu_c, not mu2
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match="task_latent_dim must be a whole number"):
            ModelConfig(action_dim=2, task_latent_dim=bad)


def _task_latent_both_ways(model, b, t):
    """The task latent at frame t of batch b: the sequence filter's (mu_c, std_c) over all frames, and
    (mu_c, std_c) from `task_step` run frame by frame up to t."""
    post = model.posterior(b["images"], b["actions"], b["reward_dense"], sample=False)
    feats = model.features(b["images"], b["reward_dense"])
    a_prev = torch.cat([torch.zeros_like(b["actions"][:, :1]), b["actions"][:, :-1]], 1)
    sums = torch.zeros(b["actions"].shape[0], 2 * model.task_latent_dim)
    for s in range(t + 1):
        mu_s, std_s, sums = model.task_step(feats[:, s], a_prev[:, s], sums)
    return post, mu_s, std_s


def test_task_evidence_carry_scales_episode_1s_evidence_at_the_reset_frame():
    """task_evidence_carry k: from episode 2's reset frame on, q(c_t)'s sums are k x episode 1's plus
    episode 2's own factors, in the sequence filter and the step-by-step sums alike; episode 1 unchanged."""
    from belief.meld.model import task_posterior

    cfg = tiny_agent_config().model
    cfg.task_latent_dim, cfg.restart_z_each_episode = 4, True
    torch.manual_seed(0)
    whole = LatentModel(cfg)
    cfg.task_evidence_carry = 0.1
    torch.manual_seed(0)
    tempered = LatentModel(cfg)
    b = {k: torch.as_tensor(v) for k, v in _batch().items()}
    b["actions"][:, HORIZON] = 0.0  # episode 1's last action: the reset frame follows
    ep2, t = HORIZON + 1, HORIZON + 3
    with torch.no_grad():
        pw = whole.posterior(b["images"], b["actions"], b["reward_dense"], sample=False)
        pt, mu_s, std_s = _task_latent_both_ways(tempered, b, t)
        feats = tempered.features(b["images"], b["reward_dense"])
        a_prev = torch.cat([torch.zeros_like(b["actions"][:, :1]), b["actions"][:, :-1]], 1)
        prec, wmean = tempered.task_factors(feats, a_prev)
        mu, std = task_posterior(0.1 * prec[:, :ep2].sum(1) + prec[:, ep2:t + 1].sum(1),
                                 0.1 * wmean[:, :ep2].sum(1) + wmean[:, ep2:t + 1].sum(1))
    assert torch.allclose(pt["mu_c"][:, :ep2], pw["mu_c"][:, :ep2], atol=1e-6)
    assert torch.allclose(pt["mu_c"][:, t], mu, atol=1e-5) and torch.allclose(pt["std_c"][:, t], std, atol=1e-6)
    assert torch.allclose(mu_s, mu, atol=1e-5) and torch.allclose(std_s, std, atol=1e-6)
    assert (pt["std_c"][:, ep2] > pw["std_c"][:, ep2]).all()  # episode 2 starts less sure
    for bad, match in (({"task_evidence_carry": 0.0, "task_latent_dim": 2}, r"must be in \(0, 1\]"),
                       ({"task_evidence_carry": 0.5}, "set task_latent_dim > 0")):
        with pytest.raises(ValueError, match=match):
            ModelConfig(action_dim=2, **bad)


def test_task_evidence_cap_caps_episode_1s_precision_and_keeps_its_estimate():
    """task_evidence_cap p: at episode 2's reset frame q(c)'s precision sums are min(p, episode 1's) and
    the weighted means follow so that episode 1's estimate is kept, then episode 2's factors add on, in the
    sequence filter and the step-by-step sums alike; episode 1 unchanged; a precision under p carried whole."""
    from belief.meld.model import capped_evidence, task_posterior

    cfg = tiny_agent_config().model
    cfg.task_latent_dim, cfg.restart_z_each_episode = 4, True
    torch.manual_seed(0)
    whole = LatentModel(cfg)
    b = {k: torch.as_tensor(v) for k, v in _batch().items()}
    b["actions"][:, HORIZON] = 0.0  # episode 1's last action: the reset frame follows
    feats = whole.features(b["images"], b["reward_dense"])
    a_prev = torch.cat([torch.zeros_like(b["actions"][:, :1]), b["actions"][:, :-1]], 1)
    with torch.no_grad():
        prec, wmean = whole.task_factors(feats, a_prev)
    ep2, t = HORIZON + 1, HORIZON + 3
    p1, w1 = prec[:, :ep2].sum(1), wmean[:, :ep2].sum(1)
    cap = float(p1.median())  # some dimensions above the cap, some below
    cfg.task_evidence_cap = cap
    torch.manual_seed(0)
    capped = LatentModel(cfg)
    with torch.no_grad():
        pw = whole.posterior(b["images"], b["actions"], b["reward_dense"], sample=False)
        pc, mu_s, std_s = _task_latent_both_ways(capped, b, t)
        p1c, w1c = capped_evidence(p1, w1, cap)
        mu, std = task_posterior(p1c + prec[:, ep2:t + 1].sum(1), w1c + wmean[:, ep2:t + 1].sum(1))
    assert torch.allclose(pc["mu_c"][:, :ep2], pw["mu_c"][:, :ep2], atol=1e-6)
    assert torch.allclose(pc["mu_c"][:, t], mu, atol=1e-5) and torch.allclose(pc["std_c"][:, t], std, atol=1e-6)
    assert torch.allclose(mu_s, mu, atol=1e-5) and torch.allclose(std_s, std, atol=1e-6)
    assert torch.equal(p1c, p1.clamp(max=cap)) and (p1 > cap).any() and (p1 < cap).any()
    assert torch.allclose(w1c / (1 + p1c), w1 / (1 + p1), atol=1e-6)  # the estimate is kept
    for bad, match in (({"task_evidence_cap": -1.0, "task_latent_dim": 2}, r"precision >= 0 \(0 = no cap\)"),
                       ({"task_evidence_cap": 5.0}, "set task_latent_dim > 0"),
                       ({"task_evidence_cap": 5.0, "task_evidence_carry": 0.5, "task_latent_dim": 2}, "set one")):
        with pytest.raises(ValueError, match=match):
            ModelConfig(action_dim=2, **bad)


def test_carried_sums_stay_finite_over_many_episodes():
    """The tempered sums are carried frame by frame, not as k^n-scaled cumulative sums: 200 episodes of one
    frame each at k = 0.1 settle at 1 / (1 - k) instead of overflowing (0.1^-200 is inf in float32)."""
    cfg = tiny_agent_config().model
    cfg.task_latent_dim, cfg.restart_z_each_episode, cfg.task_evidence_carry = 2, True, 0.1
    model = LatentModel(cfg)
    ones, reset = torch.ones(1, 200, 2), torch.ones(1, 200, 1, dtype=torch.bool)
    prec, wmean = model.carried_sums(ones, ones, reset)
    assert torch.isfinite(prec).all() and torch.allclose(prec[0, -1], torch.full((2,), 1 / 0.9))
    assert torch.equal(prec, wmean)


@pytest.mark.parametrize("name", ["task_probs_in_belief", "episode_start_input", "carry_z2_over_reset",
                                  "restart_z_each_episode", "actor_sees_task_latent", "actor_commits_to_port",
                                  "actor_holds_episode_port"])
def test_every_true_or_false_model_option_refuses_anything_else_by_name(name):
    """A YAML typo ("ture") must not switch an option on: each of ModelConfig's flags names the bad value."""
    with pytest.raises(ValueError, match=f"ModelConfig.{name} must be true or false, got 'ture'"):
        ModelConfig(**{name: "ture"})


def test_handing_a_port_needs_the_port_probabilities_in_the_belief(agent):
    """MeldPolicy.handed puts the port's one-hot where the head's probabilities are; a belief without
    them is refused by name."""
    from belief.meld.policy import MeldPolicy

    policy = MeldPolicy(agent.model, agent.sac.actor)
    with torch.no_grad():
        belief, _ = policy.belief(torch.zeros(16, 32, 3, dtype=torch.uint8), torch.zeros(2), torch.zeros(1),
                                  policy.initial_state())
    if agent.model.task_probs_in_belief:
        handed = policy.handed(belief, 1)
        assert torch.equal(handed[-4:], torch.tensor([0.0, 1.0, 0.0, 0.0])) and torch.equal(handed[:-4], belief[:-4])
    else:
        with pytest.raises(ValueError, match="handing the actor a port needs the port probabilities in the belief"):
            policy.handed(belief, 0)
