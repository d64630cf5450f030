"""meldbot twins: MuJoCo and Pymunk simulators, in-process (Gymnasium) and as ROS nodes.

Importing `sim` registers every available Gymnasium id (``meldbot/...``); registration modules only
name entry points, so this import stays light (no mujoco/pymunk loaded until an env is made).
"""

import importlib
import importlib.util

_REGISTRATIONS = []
for _module in ("sim.pymunk2d.registration", "sim.mujoco.registration"):
    if importlib.util.find_spec(_module.rsplit(".", 1)[0]) and importlib.util.find_spec(_module):
        _REGISTRATIONS.append(importlib.import_module(_module))


def short_names() -> dict[str, str]:
    """{short name used on the command line: Gymnasium id} for every registered twin environment."""
    names: dict[str, str] = {}
    for reg in _REGISTRATIONS:
        names.update(reg.SHORT_NAMES)
    return names


def env_id(name: str) -> str:
    """Gymnasium id for a short name ("reach2d") or an id ("meldbot/Reach2D-v0"); ValueError otherwise."""
    names = short_names()
    if name in names:
        return names[name]
    if name in names.values():
        return name
    raise ValueError(f"unknown environment '{name}' (known: {', '.join(sorted(names))})")


def make_task_set(name: str, seed: int = 0, **kwargs):
    """The seeded train/held-out TaskSet of a family, by short name (see `short_names()`)."""
    for reg in _REGISTRATIONS:
        if name in reg.TASK_SETS:
            module, _, func = reg.TASK_SETS[name].partition(":")
            return getattr(importlib.import_module(module), func)(seed=seed, **kwargs)
    raise ValueError(f"no task set for '{name}' (known: {', '.join(sorted(short_names()))})")
