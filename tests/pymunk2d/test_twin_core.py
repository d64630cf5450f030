"""The ROS twin's plain-Python core hosts any 2D family and reproduces the in-process env exactly."""

import numpy as np
import pytest

from sim.pymunk2d.env import Planar2DEnv
from sim.pymunk2d.kinematics import dls_joint_velocities
from sim.pymunk2d.twin import FamilyTwin


@pytest.mark.parametrize("family", ["peg2d", "key2d", "multi2d"])
def test_twin_core_matches_in_process_env(family):
    twin = FamilyTwin(family, seed=4)
    task = twin.task_set.test[-1]
    twin.set_task(task.task_id)  # second reset after start-up: seed 4 + 1
    env = Planar2DEnv(family)
    env.reset(seed=5, options={"task": task})
    rng = np.random.default_rng(2)
    for _ in range(25):
        qd = rng.uniform(-1.5, 1.5, size=3)
        twin.step(qd)
        _, reward, _, _, info = env.step_joint_velocities(qd)
        np.testing.assert_array_equal(twin.joint_positions(), env.arm.joint_positions())
        assert twin.shaped_reward() == reward and twin.success() == info["success"]
    obs = twin.state_observation()
    assert obs.shape == (7,)
    np.testing.assert_array_equal(obs[4:], env.arm.joint_positions())
    pair = twin.render_pair()
    assert pair.shape == (64, 128, 3)
    np.testing.assert_array_equal(pair[:, :64], env.render_image(64))  # the camera = the image observation


def test_policy_can_run_the_env_ik_from_the_twin_observation():
    """An EE-action policy on the twin (IK from the joint positions in observation/state) drives the
    twin exactly as env.step drives the env: the expert solves the task through the twin."""
    twin = FamilyTwin("peg2d", initial_task="peg2d-test-04")
    for _ in range(60):
        action = twin.env.expert_action()
        q = twin.state_observation()[4:]
        twin.step(dls_joint_velocities(twin.env.geom, q, action * np.array(twin.env._scale)))
    assert twin.success()


def test_twin_core_rejects_unknown_task():
    twin = FamilyTwin("reach2d")
    with pytest.raises(KeyError, match="no task 'peg2d-test-00'"):
        twin.set_task("peg2d-test-00")
