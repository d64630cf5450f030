"""MuJoCo twin: WidowX 250 Ethernet-cable insertion and Sawyer reach/peg tasks.

Models are built in code from primitives (`robots.py`, `scenes.py`), stepped through a joint-velocity
servo loop (`servo.py`, `core.py`) and exposed as Gymnasium envs (`envs.py`, ids in `registration.py`)
and as a ROS node on the robot's topics (`sim/mujoco_twin_node.py`). Importing this package is light:
mujoco is only imported by the modules that need it.
"""
