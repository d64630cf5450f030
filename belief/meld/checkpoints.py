"""Read a MELD checkpoint, optionally to act held to each episode's first port."""

from __future__ import annotations

from pathlib import Path

HOLD_EPISODE_PORT_HELP = ("MELD: hold the committed actor to the port the task head names at each episode's first "
                          "frame (agent.model.actor_holds_episode_port), whatever the checkpoint was trained with")


def load_meld_checkpoint(path: str | Path, hold_episode_port: bool = False) -> dict:
    """The checkpoint's state; refuses another algorithm's by name. hold_episode_port turns its
    agent.model.actor_holds_episode_port on (an acting option that adds no weights), whatever the
    checkpoint was trained with."""
    from belief.checkpoint import load as load_checkpoint

    state = load_checkpoint(path)
    if state.get("algo") != "meld":
        raise ValueError(f"{path}: not a MELD checkpoint (algo={state.get('algo')!r})")
    if hold_episode_port:
        agent = dict(state["config"]["agent"])
        state["config"] = {**state["config"],
                           "agent": {**agent, "model": {**agent["model"], "actor_holds_episode_port": True}}}
    return state
