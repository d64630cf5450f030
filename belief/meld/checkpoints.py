"""Read a MELD checkpoint, optionally to act held to each episode's first port."""

from __future__ import annotations

from pathlib import Path

HOLD_EPISODE_PORT_HELP = ("MELD: hold the committed actor to the port the task head names at each episode's first "
                          "frame (agent.model.actor_holds_episode_port), whatever the checkpoint was trained with")
RETAKE_PORT_AFTER_HELP = ("MELD: hold the port as --hold-episode-port does, but re-take it from the head once the head "
                          "has named another port on N consecutive frames (agent.model.actor_retakes_port_after): the "
                          "episode moves on from a port the belief ruled out. 0 (default) = held for the episode")


def load_meld_checkpoint(path: str | Path, hold_episode_port: bool = False, replay: bool = True,
                         retake_port_after: int = 0) -> dict:
    """The checkpoint's state; refuses another algorithm's by name. hold_episode_port turns its
    agent.model.actor_holds_episode_port on (an acting option that adds no weights), whatever the
    checkpoint was trained with. replay: read the replay trials its index names from the run folder into
    `buffers` and `search_buffers`, as older checkpoints held them inline (False: leave them out, for
    acting only). retake_port_after n > 0 also sets agent.model.actor_retakes_port_after to n (and holds the
    port): the held port is re-taken once the head has named another one on n consecutive frames."""
    from belief.checkpoint import load as load_checkpoint
    from belief.meld.replay_files import read_trials

    state = load_checkpoint(path)
    if state.get("algo") != "meld":
        raise ValueError(f"{path}: not a MELD checkpoint (algo={state.get('algo')!r})")
    if replay:
        for key, index in state.get("replay", {}).items():
            state[key] = read_trials(Path(path).parent, index, path)
    if isinstance(retake_port_after, bool) or not isinstance(retake_port_after, int) or retake_port_after < 0:
        raise ValueError(f"--retake-port-after must be a whole number of frames >= 0, got {retake_port_after!r}")
    if hold_episode_port or retake_port_after:
        agent = dict(state["config"]["agent"])
        acting = {"actor_holds_episode_port": True}
        if retake_port_after:
            acting["actor_retakes_port_after"] = retake_port_after
        state["config"] = {**state["config"], "agent": {**agent, "model": {**agent["model"], **acting}}}
    return state
