"""Run ROS 2 YAML launch files (``launch/*.launch.yaml``) without a ROS install.

The same files stay valid for ``ros2 launch meldbot FILE`` on a robot: only real ROS 2 YAML-frontend
tags, attributes and substitutions are accepted, and attribute types are checked the way
``launch_yaml`` checks them. See docs/launch.md.
"""

from meldbot.launch.errors import LaunchError
from meldbot.launch.model import ArgDecl, LaunchPlan, ProcessSpec
from meldbot.launch.parser import load_plan

__all__ = ["ArgDecl", "LaunchError", "LaunchPlan", "ProcessSpec", "load_plan"]
