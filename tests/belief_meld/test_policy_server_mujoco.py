"""An exported MELD policy runs in the policy server against the MuJoCo WidowX cable twin over DDS.

The policy sees the twin's paired 64x128 camera image and its shaped reward, exactly the topics the real
driver graph provides, and its joint velocities reach the twin's arm.
"""

import numpy as np
import pytest
import torch

from belief.meld.agent import AgentConfig, MeldAgent
from belief.meld.export import build_metadata, export_policy
from belief.meld.model import ModelConfig
from belief.meld.policy import MeldPolicy
from belief.meld.train import ScaledActions, env_metadata, make_env
from belief.sac import SACConfig
from meldbot import topics

pytestmark = pytest.mark.ros
NS = "arm"


@pytest.fixture(scope="module")
def meld_export(tmp_path_factory):
    """An untrained, narrow MELD agent for the real twin's shapes, exported to TorchScript."""
    env = ScaledActions(make_env("widowx_cable"), 0.1)
    try:
        env_meta = env_metadata(env, "widowx_cable", episodes=2)
    finally:
        env.close()
    torch.manual_seed(0)
    model = ModelConfig(image_height=64, image_width=128, action_dim=env_meta["action_dim"], base_depth=2,
                        z1_dim=4, z2_dim=8, hidden=16)
    cfg = AgentConfig(model=model, sac=SACConfig(hidden=(16, 16)))
    agent = MeldAgent(cfg, env_meta["episodes"], env_meta["horizon"])
    policy = MeldPolicy(agent.model, agent.sac.actor)
    meta = build_metadata(cfg, env_meta, policy.state_dim)
    return export_policy(policy, meta, tmp_path_factory.mktemp("meld") / "meld.ts"), meta


def test_meld_export_declares_the_twins_topics(meld_export):
    _, meta = meld_export
    assert meta.observation.topic == topics.PAIRED_IMAGE.name and meta.observation.shape == [64, 128, 3]
    assert meta.reward_topic == topics.SHAPED_REWARD.name
    assert meta.action.joint_names == ["waist", "shoulder", "elbow", "wrist_angle", "wrist_rotate"]
    assert np.allclose(meta.action.scale, 0.1 * np.pi)  # action_scale x the pi rad/s joint limit


def test_exported_meld_policy_drives_the_mujoco_twin(ros_graph, meld_export):
    policy, meta = meld_export
    joints = ros_graph.subscribe(topics.JOINT_STATES, namespace=NS)
    ros_graph.start_node("mujoco_twin", name="twin", namespace=NS, params={"env": "widowx_cable"})
    joints.wait(1, timeout=120)  # the twin is up before the policy needs its images
    commands = ros_graph.subscribe(topics.JOINT_VELOCITY_COMMANDS, namespace=NS)
    server = ros_graph.start_node("policy_server", name="policy_server", namespace=NS,
                                  params={"model_path": str(policy), "autostart": True, "stale_after_s": 1e6,
                                          "joint_names": meta.action.joint_names})
    msgs = commands.wait(count=4, timeout=120, predicate=lambda m: any(abs(v) > 0 for v in m.data))
    data = np.array([m.data for m in msgs])
    assert data.shape[1] == 5 and np.all(np.isfinite(data))
    assert np.all(np.abs(data) <= np.asarray(meta.action.scale) + 1e-9)
    # the twin's arm follows: some joint velocity in its joint states is no longer zero
    joints.wait(1, timeout=60, predicate=lambda m: np.abs(np.asarray(m.velocity[:5])).max() > 1e-4)
    assert server.returncode is None, server.output()
