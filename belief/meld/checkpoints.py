"""Read a MELD checkpoint, optionally to act held to each episode's first port."""

from __future__ import annotations

from pathlib import Path

HOLD_EPISODE_PORT_HELP = ("MELD: hold the committed actor to the port the task head names at each episode's first "
                          "frame (agent.model.actor_holds_episode_port), whatever the checkpoint was trained with")


def load_meld_checkpoint(path: str | Path, hold_episode_port: bool = False, replay: bool = True) -> dict:
    """The checkpoint's state; refuses another algorithm's by name. hold_episode_port turns its
    agent.model.actor_holds_episode_port on (an acting option that adds no weights), whatever the
    checkpoint was trained with. replay: read the replay trials its index names from the run folder into
    `buffers` and `search_buffers`, as older checkpoints held them inline (False: leave them out, for
    acting only)."""
    from belief.checkpoint import load as load_checkpoint
    from belief.meld.replay_files import read_trials

    state = load_checkpoint(path)
    if state.get("algo") != "meld":
        raise ValueError(f"{path}: not a MELD checkpoint (algo={state.get('algo')!r})")
    if replay:
        for key, index in state.get("replay", {}).items():
            state[key] = read_trials(Path(path).parent, index, path)
    if hold_episode_port:
        agent = dict(state["config"]["agent"])
        state["config"] = {**state["config"],
                           "agent": {**agent, "model": {**agent["model"], "actor_holds_episode_port": True}}}
    return state
