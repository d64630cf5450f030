"""meldbot: ROS 2 control stack for few-trial robot learning (topic contract, CLI, trial runner)."""

__version__ = "0.1.0"
