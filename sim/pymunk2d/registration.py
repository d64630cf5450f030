"""Gymnasium ids of the Pymunk twins (registered on `import sim`; nothing heavy is imported here)."""

import gymnasium

_ENVS = {
    "meldbot/Reach2D-v0": ("reach2d", "sim.pymunk2d.env:Reach2DEnv", 60),
    "meldbot/Stick2D-v0": ("stick2d", "sim.pymunk2d.env:Stick2DEnv", 60),
    "meldbot/Peg2D-v0": ("peg2d", "sim.pymunk2d.env:Peg2DEnv", 60),
    "meldbot/Key2D-v0": ("key2d", "sim.pymunk2d.env:Key2DEnv", 60),
    "meldbot/Multi2D-v0": ("multi2d", "sim.pymunk2d.env:Multi2DEnv", 60),
    "meldbot/PointRobot-v0": ("point_robot", "sim.pymunk2d.point_robot:SparsePointEnv", 20),
}

# CLI short name -> Gymnasium id
SHORT_NAMES = {short: env_id for env_id, (short, _, _) in _ENVS.items()}

# short name -> "module:function" building that family's TaskSet(seed=, n_train=, n_test=)
TASK_SETS = {short: f"sim.pymunk2d.task_sets:{short}_task_set" for short in SHORT_NAMES}

for _id, (_short, _entry, _steps) in _ENVS.items():
    if _id not in gymnasium.registry:
        # The envs report truncation at their horizon themselves; no TimeLimit wrapper is added, so the
        # ROS twin can keep stepping one env past it.
        gymnasium.register(id=_id, entry_point=_entry)
