"""launch/rehearsal.launch.yaml picks the twin by `sim:=` and `robot:=` (resolved, nothing started)."""

import pytest

from meldbot import executables
from meldbot.launch import load_plan

REHEARSAL = executables.SOURCE_ROOT / "launch" / "rehearsal.launch.yaml"


def _twins(args):
    plan = load_plan(REHEARSAL, {"policy": "/tmp/p.ts", **args})
    return [p for p in plan.processes if p.node_name == "twin"]


@pytest.mark.parametrize("args,exe,config", [
    ({}, "pymunk_twin", "pymunk_twin.yaml"),
    ({"sim": "mujoco"}, "mujoco_twin", "mujoco_twin_widowx.yaml"),
    ({"sim": "mujoco", "robot": "sawyer"}, "mujoco_twin", "mujoco_twin_sawyer.yaml"),
])
def test_rehearsal_selects_twin(args, exe, config):
    twins = _twins(args)
    assert len(twins) == 1
    argv = " ".join(twins[0].argv)
    assert f"from {executables.executables()[exe].split(':')[0]} import" in argv
    assert config in argv
