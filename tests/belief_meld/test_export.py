"""Export equivalence: the .ts and .pt2 step modules act exactly like the training-time policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from belief.meld.export import build_metadata, export_policy
from belief.meld.policy import MeldPolicy
from belief.meld.trials import run_trial
from belief.policy_file import LoadedPolicy
from tests.belief_meld.conftest import EPISODES, HORIZON

ENV_META = {"obs_shape": [16, 32, 3], "joint_names": ["j0", "j1"], "action_scale": [3.14, 3.14],
            "control_rate_hz": 3.3, "env": "fake", "episodes": EPISODES}


@pytest.mark.parametrize("suffix", [".ts", ".pt2"])
def test_exported_policy_replays_an_evaluation_trial(agent, fake_env, tmp_path, suffix):
    policy = MeldPolicy(agent.model, agent.sac.actor)
    res = run_trial(fake_env, fake_env.tasks.test[0], policy, EPISODES, "mean", seed=1)
    meta = build_metadata(agent.cfg, ENV_META, policy.state_dim)
    path = export_policy(policy, meta, tmp_path / f"meld{suffix}")
    loaded = LoadedPolicy(path)
    assert loaded.metadata.algo == "meld" and loaded.metadata.state_dim == (
        1 + agent.cfg.model.z2_dim + 2 * agent.cfg.model.task_latent_dim)
    assert loaded.metadata.reward_topic == "reward/shaped"
    state = loaded.initial_state()
    L = HORIZON + 1
    for t in range(len(res.trial.images)):
        prev = np.zeros(2, np.float32) if t % L == 0 else res.trial.actions[t - 1]  # reset: prev_action 0
        action, state = loaded.step(res.trial.images[t], prev, float(res.trial.reward_dense[t]), state)
        if t % L != HORIZON:  # frames that were acted on
            np.testing.assert_allclose(action, res.trial.actions[t], atol=1e-5)
    # the exported action is the SAC actor's deterministic mean action on its view of the belief
    b = torch.as_tensor(res.beliefs[0])
    assert torch.allclose(policy.act(b), agent.sac.actor.act_mean(agent.model.actor_input(b)))


def test_sparse_agent_exports_for_the_sparse_reward_topic(agent):
    agent.cfg.reward_input = "sparse"
    meta = build_metadata(agent.cfg, ENV_META, 6)
    assert meta.reward_topic == "reward/sparse" and meta.extra["deterministic"] is True


def test_export_evaluate_refit_and_probe_refuse_another_algorithms_checkpoint(tmp_path):
    """Every MELD command reads checkpoints through one reader, which names a PEARL/PERIL checkpoint."""
    from belief.checkpoint import atomic_save
    from belief.meld.evaluate import load_trainer
    from belief.meld.export import export_checkpoint
    from belief.meld.probe import probe_checkpoint
    from belief.meld.refit import refit_checkpoint

    path = atomic_save({"algo": "pearl", "config": {}}, tmp_path / "pearl.pt")
    for read in (lambda: export_checkpoint(path, tmp_path / "p.ts", hold_episode_port=True),
                 lambda: load_trainer(path), lambda: refit_checkpoint(path, tmp_path / "refit", 1, 1),
                 lambda: probe_checkpoint(path)):
        with pytest.raises(ValueError, match="pearl.pt: not a MELD checkpoint \\(algo='pearl'\\)"):
            read()
