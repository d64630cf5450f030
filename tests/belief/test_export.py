import numpy as np
import pytest
import torch

from belief.export import PlanarDLS, build_policy
from belief.pearl import PEARLAgent, PEARLConfig
from belief.peril import PERILAgent, PERILConfig
from belief.policy_file import LoadedPolicy, save_policy
from belief.sac import SACConfig

SMALL = dict(latent_dim=3, encoder_hidden=(16,), sac=SACConfig(hidden=(16,)))


def _reference_actions(agent, context, obs_seq, rewards, ik=None):
    """What the training code does: posterior over the context so far, deterministic actor on its mean."""
    actions, ctx = [], context
    prev = None
    for obs, r in zip(obs_seq, rewards, strict=True):
        env_obs = obs[: agent.obs_dim]
        if prev is not None:
            row = agent.context({"obs": prev[0][None], "actions": prev[1][None], "rewards": np.array([[r]]),
                                 "sparse_rewards": np.array([[r]]), "next_obs": env_obs[None]})
            ctx = np.concatenate([ctx, row])
        mu, _ = agent.posterior(ctx)
        a = agent.act(env_obs, mu, deterministic=True)
        actions.append(a if ik is None else ik(obs[agent.obs_dim:], a))
        prev = (env_obs, a)
    return np.array(actions)


@pytest.mark.parametrize("suffix", [".ts", ".pt2"])
@pytest.mark.parametrize("algo", ["pearl", "peril"])
def test_exported_policy_matches_training_code(tmp_path, suffix, algo):
    torch.manual_seed(1)
    agent = (PERILAgent(2, 2, PERILConfig(**SMALL)) if algo == "peril" else PEARLAgent(2, 2, PEARLConfig(**SMALL)))
    rng = np.random.default_rng(0)
    demos = rng.normal(size=(10, agent.encoder.context_dim)).astype(np.float32) if algo == "peril" else None
    module, meta = build_policy(agent, None, demos, algo=algo, env_name="toy")
    path = save_policy(module, meta, tmp_path / f"policy{suffix}")
    policy = LoadedPolicy(path)
    obs_seq = rng.normal(size=(6, 2)).astype(np.float32)
    rewards = rng.integers(0, 2, size=6).astype(np.float32)
    state = policy.initial_state()
    got = []
    for obs, r in zip(obs_seq, rewards, strict=True):
        action, state = policy.step(obs, np.zeros(2, np.float32), float(r), state)
        got.append(action)
    start = demos if demos is not None else np.zeros((0, agent.encoder.context_dim), np.float32)
    want = _reference_actions(agent, start, obs_seq, rewards)
    np.testing.assert_allclose(np.array(got), want, atol=1e-5)
    assert meta.state_dim == state.shape[0]


def test_planar_ik_matches_env_kinematics_and_is_scaled():
    from sim.pymunk2d.kinematics import ArmGeometry, dls_joint_velocities

    geom = ArmGeometry()
    scale = np.array([0.25, 0.25, 1.0])
    ik = PlanarDLS(geom.lengths.tolist(), geom.damping, geom.joint_velocity_limit, scale.tolist())
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(-1.5, 1.5, 3)
        a = rng.uniform(-1, 1, 3)
        want = dls_joint_velocities(geom, q, a * scale) / geom.joint_velocity_limit
        got = ik(torch.tensor(q, dtype=torch.float32), torch.tensor(a, dtype=torch.float32)).numpy()
        np.testing.assert_allclose(got, want, atol=2e-4)
        assert np.all(np.abs(got) <= 1 + 1e-6)


def test_exported_state_from_context_equals_initial_state(tmp_path):
    torch.manual_seed(0)
    agent = PERILAgent(2, 2, PERILConfig(**SMALL))
    demos = np.random.default_rng(1).normal(size=(5, agent.encoder.context_dim)).astype(np.float32)
    module, meta = build_policy(agent, None, demos, algo="peril", env_name="toy")
    scripted = torch.jit.load(str(save_policy(module, meta, tmp_path / "p.ts")))
    np.testing.assert_allclose(scripted.inner.state_from_context(torch.as_tensor(demos)).detach().numpy(),
                               scripted.initial_state().numpy(), atol=1e-5)
