"""meldbot twins: MuJoCo and Pymunk simulators, in-process (Gymnasium) and as ROS nodes.

Importing `sim` registers every available Gymnasium id (``meldbot/...``); registration modules only
name entry points, so this import stays light (no mujoco/pymunk loaded until an env is made).
"""

import importlib
import importlib.util

for _module in ("sim.pymunk2d.registration", "sim.mujoco.registration"):
    if importlib.util.find_spec(_module.rsplit(".", 1)[0]) and importlib.util.find_spec(_module):
        importlib.import_module(_module)
