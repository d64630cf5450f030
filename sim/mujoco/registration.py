"""Gymnasium ids of the MuJoCo twin (entry points only: importing this does not import mujoco)."""

import gymnasium

ENVS = {
    "meldbot/WidowXCable-v0": "sim.mujoco.envs:WidowXCableEnv",
    "meldbot/SawyerReach-v0": "sim.mujoco.envs:SawyerReachEnv",
    "meldbot/SawyerPeg-v0": "sim.mujoco.envs:SawyerPegEnv",
}
SHORT_NAMES = {
    "widowx_cable": "meldbot/WidowXCable-v0",
    "sawyer_reach": "meldbot/SawyerReach-v0",
    "sawyer_peg": "meldbot/SawyerPeg-v0",
}
TASK_SETS = {
    "widowx_cable": "sim.mujoco.task_sets:widowx_cable",
    "sawyer_reach": "sim.mujoco.task_sets:sawyer_reach",
    "sawyer_peg": "sim.mujoco.task_sets:sawyer_peg",
}

for _env_id, _entry in ENVS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=_entry, max_episode_steps=None)
