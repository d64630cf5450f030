"""MELD evaluation on the real cable twin reports, per episode, whether the plug ended at the correct port."""

import torch

from belief.meld.agent import AgentConfig, MeldAgent
from belief.meld.evaluate import ends_by_correct_port, evaluate_policy
from belief.meld.model import ModelConfig
from belief.meld.policy import MeldPolicy
from belief.meld.train import ScaledActions, make_env
from belief.sac import SACConfig


def test_cable_evaluation_reports_the_port_reached_per_episode():
    env = ScaledActions(make_env("widowx_cable", episode_steps=3), 0.1)
    try:
        torch.manual_seed(0)
        model = ModelConfig(image_height=64, image_width=128, action_dim=5, base_depth=2, z1_dim=4, z2_dim=8,
                            hidden=16)
        agent = MeldAgent(AgentConfig(model=model, sac=SACConfig(hidden=(16,))), 2, 3)
        tasks = list(env.unwrapped.task_set.test[:2])
        res = evaluate_policy(env, MeldPolicy(agent.model, agent.sac.actor), tasks, episodes=2)
    finally:
        env.close()
    assert len(res["correct_port_per_episode"]) == len(res["any_port_per_episode"]) == 2
    # the arm starts 6 cm over the router and an untrained policy barely moves it in 3 steps: at no port
    assert res["any_port_per_episode"] == [0.0, 0.0] and res["correct_port_per_episode"] == [0.0, 0.0]
    assert all(len(t.episode_final_info) == 2 for t in res["trials"])
    # each trial names its task's correct port, for reads by port (ends_by_correct_port)
    assert [t["port"] for t in res["per_trial"]] == [int(t.params["port"]) for t in tasks]


def test_ends_by_correct_port_groups_where_episodes_end_by_the_tasks_port():
    """A split skewed to one port cannot tell a habit from task inference; grouping by the correct port can."""
    per_trial = [{"task": "a", "port": 3, "port_at_tip": [2, 3]}, {"task": "a", "port": 3, "port_at_tip": [2, 2]},
                 {"task": "b", "port": 1, "port_at_tip": [2, -1]}]
    assert ends_by_correct_port(per_trial) == {
        1: {"trials": 1, "ends_at": [{2: 1}, {-1: 1}]},
        3: {"trials": 2, "ends_at": [{2: 2}, {2: 1, 3: 1}]}}
