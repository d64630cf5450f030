"""MELD evaluation on the real cable twin reports, per episode, whether the plug ended at the correct port."""

import math

import pytest
import torch

from belief.meld.agent import AgentConfig, MeldAgent
from belief.meld.evaluate import (
    _ends_by_port_lines,
    _episode2_lines,
    _paired_lines,
    _port_reads,
    ends_by_correct_port,
    episode2_given_episode1,
    evaluate_policy,
    exact_mcnemar_p,
    follows_head,
    head_port_changes,
    head_ports,
    paired_change,
    paired_reads,
)
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
    assert res["ports_seated_per_episode"] == [0.0, 0.0] and res["per_trial"][0]["ports_seated"] == [[], []]
    assert all(len(t.episode_final_info) == 2 for t in res["trials"])
    # each trial names its task's correct port, for reads by port (ends_by_correct_port)
    assert [t["port"] for t in res["per_trial"]] == [int(t.params["port"]) for t in tasks]


def test_ends_by_correct_port_groups_where_episodes_end_by_the_tasks_port():
    """A split skewed to one port cannot tell a habit from task inference; grouping by the correct port can."""
    per_trial = [{"task": "a", "port": 3, "port_at_tip": [2, 3], "success": [False, True]},
                 {"task": "a", "port": 3, "port_at_tip": [2, 2], "success": [False, False]},
                 {"task": "b", "port": 1, "port_at_tip": [2, -1], "success": [False, False]}]
    by_port = ends_by_correct_port(per_trial)
    assert by_port == {
        1: {"trials": 1, "ends_at": [{2: 1}, {-1: 1}], "successes": [0, 0]},
        3: {"trials": 2, "ends_at": [{2: 2}, {2: 1, 3: 1}], "successes": [0, 1]}}
    assert _ends_by_port_lines(by_port)[1] == ("- correct port 3 (2 trials) ends at episode 1: port 2 x2; "
                                               "episode 2: port 2 x1, port 3 x1; successes 0 / 1")


def test_head_ports_read_each_episodes_first_frame_and_follows_head_compares_the_ends():
    """The port the head names is its argmax at each episode's first frame (not a later frame), as the
    label's value; follows_head is, per episode, the share of trials that end there."""
    from types import SimpleNamespace

    import numpy as np

    horizon, values = 2, [10, 20, 30]
    beliefs = np.zeros((2 * (horizon + 1), 5))  # two belief columns, then three class probabilities
    beliefs[:, 2:] = [0.1, 0.2, 0.7]  # class 2 everywhere but the two first frames
    beliefs[0, 2:], beliefs[horizon + 1, 2:] = [0.6, 0.3, 0.1], [0.2, 0.5, 0.3]
    trial = SimpleNamespace(beliefs=beliefs, episode_success=[False, True])
    assert head_ports([trial], horizon, 3, values) == [[10, 20]]
    per_trial = [{"port_at_tip": [10, 30], "head_port": [10, 20]}, {"port_at_tip": [20, 20], "head_port": [10, 20]}]
    assert follows_head(per_trial) == [0.5, 0.5]
    # episode 1 names class 0 then 2, 2 (one change); episode 2 names 1, 2, 2 (one change); none across the
    # boundary between them is counted
    assert head_port_changes([trial], horizon, 3) == [[1, 1]]
    beliefs[1, 2:] = [0.9, 0.05, 0.05]  # episode 1: 0, 0, 2 -> still one change; episode 2 untouched
    assert head_port_changes([trial], horizon, 3) == [[1, 1]]
    beliefs[2, 2:] = [0.05, 0.9, 0.05]  # episode 1: 0, 0, 1 -> one; then episode 2 starts at 1 (no change)
    beliefs[horizon + 2, 2:] = [0.9, 0.05, 0.05]  # episode 2: 1, 0, 2 -> two
    assert head_port_changes([trial], horizon, 3) == [[1, 2]]


def test_episode2_given_episode1_reads_whether_episode_2_moves_on_after_a_failure():
    """After a failed episode 1 the adapting agent tries another port; after a success it stays."""
    per_trial = [
        {"success": [False, True], "port_at_tip": [1, 2], "at_correct_port": [False, True]},
        {"success": [False, False], "port_at_tip": [1, 1], "at_correct_port": [False, False]},
        {"success": [False, False], "port_at_tip": [-1, 0], "at_correct_port": [False, False]},  # no base for moved
        {"success": [True, True], "port_at_tip": [3, 3], "at_correct_port": [True, True]}]
    cond = episode2_given_episode1(per_trial)
    assert cond["after_failure"] == {"trials": 3, "success": 1 / 3, "correct_port": 1 / 3, "moved": 0.5}
    assert cond["after_success"] == {"trials": 1, "success": 1.0, "correct_port": 1.0, "moved": 0.0}
    empty = episode2_given_episode1(per_trial[:1])["after_success"]
    assert empty["trials"] == 0 and math.isnan(empty["success"]) and math.isnan(empty["moved"])
    # eval_table.md lists only groups that occurred
    lines = _episode2_lines(episode2_given_episode1(per_trial[:1]))
    assert lines == ["- after failure in episode 1 (1 trials): episode 2 success 1.00, ends at the correct port "
                     "1.00, at another port than episode 1 1.00"]


def test_port_reads_condition_on_episode_1_only_for_multi_episode_trials():
    two = [{"port": 1, "success": [False, True], "port_at_tip": [0, 1], "at_correct_port": [False, True]}]
    one = [{"port": 1, "success": [True], "port_at_tip": [1], "at_correct_port": [True]}]
    assert set(_port_reads(two, "port")) == {"ends_by_correct_port", "episode2_given_episode1"}
    assert _port_reads(two, "port")["episode2_given_episode1"]["after_failure"] == {
        "trials": 1, "success": 1.0, "correct_port": 1.0, "moved": 1.0}
    assert _port_reads(one, "port") == {"ends_by_correct_port": ends_by_correct_port(one)}


def test_exact_mcnemar_p_is_the_two_sided_binomial_tail_of_the_discordant_trials():
    assert exact_mcnemar_p(10, 0) == pytest.approx(2 / 2 ** 10)  # 10 gained, none lost
    # 14 gained, 5 lost: 2 * 16664 / 2**19, the value a binomial test (scipy.stats.binomtest) gives
    assert exact_mcnemar_p(14, 5) == pytest.approx(0.063568, abs=1e-6)
    assert exact_mcnemar_p(5, 14) == exact_mcnemar_p(14, 5)
    assert exact_mcnemar_p(3, 3) == 1.0 and exact_mcnemar_p(0, 0) == 1.0  # capped; no discordant trial
    with pytest.raises(ValueError, match="counts must be >= 0"):
        exact_mcnemar_p(-1, 2)


def test_paired_change_counts_trials_that_flip_and_refuses_unpaired_lists():
    assert paired_change([False, False, True, True], [True, False, False, True]) == {
        "trials": 4, "gained": 1, "lost": 1, "mcnemar_p": 1.0}
    with pytest.raises(ValueError, match="3 trials before, 2 after"):
        paired_change([True, False, True], [True, False])


def test_paired_reads_pair_episode_2_with_episode_1_and_with_the_belief_reset_control():
    """Episode 2 is read on the same trials as episode 1 and as the control's episode 2 (same seeds)."""
    carried = [{"success": [False, True], "at_correct_port": [False, True]},
               {"success": [False, True], "at_correct_port": [True, True]},
               {"success": [True, False], "at_correct_port": [True, False]}]
    control = [{"success": [False, False], "at_correct_port": [False, False]},
               {"success": [False, True], "at_correct_port": [True, True]},
               {"success": [True, False], "at_correct_port": [True, True]}]
    table = {"per_trial": carried, "correct_port_per_episode": [0.67, 0.67],
             "belief_reset_control": {"per_trial": control}}
    reads = paired_reads(table)
    assert {k: (r["gained"], r["lost"]) for k, r in reads.items()} == {
        "episode2_vs_episode1/success": (2, 1), "episode2_vs_belief_reset/success": (1, 0),
        "episode2_vs_episode1/at_correct_port": (1, 1), "episode2_vs_belief_reset/at_correct_port": (1, 1)}
    assert _paired_lines({"episode2_vs_belief_reset/success": reads["episode2_vs_belief_reset/success"]}) == [
        "- episode 2 vs belief reset, success: 1 of 3 trials gained, 0 lost (exact McNemar p = 1)"]
    # no control run, no env port read: success against episode 1 only; single-episode trials: nothing
    assert list(paired_reads({"per_trial": carried})) == ["episode2_vs_episode1/success"]
    assert paired_reads({"per_trial": [{"success": [True], "at_correct_port": [True]}]}) == {}
    with pytest.raises(ValueError, match="no 'per_trial' records"):
        paired_reads({"success_per_episode": [0.1, 0.2]})  # a table saved before per-trial records


def test_the_training_plot_draws_panels_without_trials_of_their_kind_with_no_warning(tmp_path):
    """A run whose per-class column has no value yet (no handed trial finished) and no evaluation still gets its
    training.png, without matplotlib's empty-legend warning."""
    import warnings

    from belief.meld.evaluate import plot_run

    (tmp_path / "train.csv").write_text("iteration,env_steps,grad_steps,model_loss,q_mean,train_success_last_class0\n"
                                        "1,80,8,-10.0,-5.0,nan\n2,160,16,-12.0,-4.0,nan\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = plot_run(tmp_path)
    assert path == tmp_path / "training.png" and path.stat().st_size > 0
