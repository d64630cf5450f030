"""Trials: several episodes on one task with the belief carried across episode boundaries.

The belief state is reset (``initial_state``) only at the start of a trial. After the last step of an
episode the filter still consumes the final frame (its reward tells whether the port was right); the
reset frame of the next episode enters with prev_action = 0 and reward = 0, exactly as stored in the
replay buffer (see `buffers`), so training and acting see the same sequences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from belief.checks import is_whole_number
from belief.meld.buffers import Trial
from belief.meld.model import belief_columns
from belief.meld.policy import MeldPolicy

MODES = ("random", "sample", "mean", "scripted")
POLICY_MODES = ("sample", "mean")


class ScriptedController(Protocol):
    """A scripted actor for `run_trial(mode="scripted")`, or a teacher labelling a policy's trials: told
    where each trial and episode starts, then asked for an action (in the policy's [-1, 1] units) given
    the env and the info of its last step ({} at an episode's first frame). After each `act`,
    `clone_this_step` says whether that action is a label to clone (a teacher may leave some states to
    the reward: their labels are NaN; a scripted actor's actions are taken either way)."""

    clone_this_step: bool

    def start_trial(self, rng: np.random.Generator) -> None: ...

    def start_episode(self) -> None: ...

    def act(self, env, info: dict) -> np.ndarray: ...


@dataclass
class TrialResult:
    trial: Trial
    episode_success: list[bool]
    episode_return: list[float]  # dense return per episode
    episode_final_reward: list[float]  # dense reward at each episode's last step (how close it ended)
    beliefs: np.ndarray | None = None  # (T, belief_dim) when a policy ran
    reward_mean: np.ndarray | None = None  # reconstructed reward under the belief, (T,)
    reward_var: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    episode_final_info: list[dict] = field(default_factory=list)  # the env's info after each episode's last step
    # per episode, the ports the plug seated in (latched or not), in order: how many a search tried
    # (empty lists on envs whose info has no `latched_port`)
    episode_ports_seated: list[list[int]] = field(default_factory=list)


def _rewards(info: dict) -> tuple[float, float]:
    try:
        return float(info["dense_reward"]), float(info["sparse_reward"])
    except KeyError as exc:
        raise KeyError(f"env info lacks {exc} (see the environment API: dense_reward/sparse_reward)") from None


def run_trial(env, task, policy: MeldPolicy | None, episodes: int, mode: str = "sample",
              reward_input: str = "dense", rng: np.random.Generator | None = None,
              seed: int | None = None, decode_reward: bool = False,
              carry_belief: bool | float | Callable[[torch.Tensor], torch.Tensor] = True,
              controller: ScriptedController | None = None, controller_episodes: int = 0,
              handed_port: int | None = None, handed_from_episode: int = 0) -> TrialResult:
    """Run one trial of `episodes` episodes on `task` and return it in replay-buffer layout.

    mode: "random" (uniform actions, no policy needed), "sample" (sampled latents and actions: data
    collection), "mean" (deterministic: evaluation, identical to the exported module), "scripted"
    (`controller` acts, e.g. `PortSearch`; a policy, if given, only filters the belief).
    A `controller` in a policy mode is a teacher (DAgger): the policy acts, the controller is asked at
    every step what it would do there, and its answers become the trial's `labels` (in "scripted" mode
    the labels are the actions taken). With `controller_episodes` = n the controller acts in the first n
    episodes of a policy-mode trial (the policy filters the belief meanwhile) and the policy in the rest:
    the policy's later episodes start from the belief of the controller's (e.g. a latched port).
    carry_belief=False resets the belief at every episode (an evaluation control: with the same seeds,
    episode 1 is the same trial and later episodes start from the same poses, knowing nothing); a float
    k in (0, 1) carries the task latent's evidence scaled by k (`MeldPolicy.tempered_state`); a function
    maps the carried state at each later episode's start (e.g. `MeldPolicy.capped_state`).
    `handed_port` (modes "sample" and "mean") hands the actor that task class in place of the task head's
    probabilities (`MeldPolicy.handed`) from episode index `handed_from_episode` on; before it the
    actor is handed the head's guess, as at test time."""
    if mode not in MODES:
        raise ValueError(f"trial mode must be one of {MODES}, got {mode!r}")
    if mode in POLICY_MODES and policy is None:
        raise ValueError(f"trial mode {mode!r} needs a policy")
    if mode == "scripted" and controller is None:
        raise ValueError("trial mode 'scripted' needs a controller (e.g. sim.mujoco.cable.PortSearch)")
    if mode == "random" and controller is not None:
        raise ValueError("trial mode 'random': a controller acts in mode 'scripted' or labels a policy's "
                         "trials in 'sample'/'mean', never with random actions")
    if handed_port is not None and mode not in ("sample", "mean"):
        raise ValueError(f"handed_port hands the acting policy a port: it needs mode 'sample' or 'mean', got {mode!r}")
    if not is_whole_number(handed_from_episode) or not 0 <= handed_from_episode < episodes:
        raise ValueError(f"handed_from_episode must be a whole number in [0, episodes = {episodes}), got "
                         f"{handed_from_episode!r}")
    if not is_whole_number(controller_episodes) or not 0 <= controller_episodes <= episodes:
        raise ValueError(f"controller_episodes must be a whole number in [0, episodes = {episodes}], got "
                         f"{controller_episodes!r}")
    if controller_episodes and (controller is None or mode not in POLICY_MODES):
        raise ValueError("controller_episodes: the controller acts in the first episodes and a policy in the rest, "
                         f"so it needs a controller and a policy mode {POLICY_MODES}, got mode {mode!r} and "
                         f"controller {controller!r}")
    rng = rng or np.random.default_rng(seed)
    horizon = int(env.unwrapped.episode_steps)
    action_dim = int(np.prod(env.action_space.shape))
    frames, actions, labels, r_dense, r_sparse, beliefs = [], [], [], [], [], []
    successes, returns, finals, final_infos, seated = [], [], [], [], []
    device = next(policy.parameters()).device if policy is not None else torch.device("cpu")
    state = policy.initial_state().to(device) if policy is not None else None
    if controller is not None:
        controller.start_trial(rng)
    for e in range(episodes):
        # continue_trial: the env may remember the trial's earlier episodes (the cable twin's "untried" reward)
        obs, _ = env.reset(seed=None if seed is None else seed + e, options={"task": task, "continue_trial": e > 0})
        if policy is not None and e > 0 and not carry_belief:
            state = policy.initial_state().to(device)
        elif policy is not None and e > 0 and callable(carry_belief):
            state = carry_belief(state)
        elif policy is not None and e > 0 and carry_belief is not True and carry_belief != 1:
            state = policy.tempered_state(state, float(carry_belief))
        prev_a, rew_d, rew_s = np.zeros(action_dim, np.float32), 0.0, 0.0
        success, ret, done, info = False, 0.0, False, {}
        seated.append([])
        episode_port = handed_port if e >= handed_from_episode else None  # the port the actor is handed
        if controller is not None:
            controller.start_episode()
        for k in range(horizon + 1):
            frames.append(np.asarray(obs, np.uint8))
            r_dense.append(rew_d)
            r_sparse.append(rew_s)
            action = np.zeros(action_dim, np.float32)
            if policy is not None:
                r_in = rew_d if reward_input == "dense" else rew_s
                with torch.no_grad():
                    args = (torch.as_tensor(frames[-1], device=device), torch.as_tensor(prev_a, device=device),
                            torch.tensor([r_in], dtype=torch.float32, device=device), state)
                    if mode == "sample":
                        a_t, state, belief = policy.step_sampled(*args, handed_port=episode_port)
                    else:
                        belief, state = policy.belief(*args)
                        a_t = policy.act(belief if episode_port is None else policy.handed(belief, episode_port))
                beliefs.append(belief.cpu().numpy())
                if mode in POLICY_MODES:
                    action = a_t.cpu().numpy().astype(np.float32)
            label = np.full(action_dim, np.nan, np.float32)
            if controller is not None:  # asked at the last frame too: it sees how the episode ended
                label = np.asarray(controller.act(env, info), np.float32)
            if mode == "scripted" or e < controller_episodes:
                action = label
            if controller is not None and not controller.clone_this_step:
                label = np.full(action_dim, np.nan, np.float32)
            if mode == "random":
                action = rng.uniform(-1.0, 1.0, action_dim).astype(np.float32)
            if k == horizon:  # the frame after the last action: filtered, not acted on
                actions.append(np.zeros(action_dim, np.float32))
                labels.append(np.full(action_dim, np.nan, np.float32))
                break
            actions.append(action)
            labels.append(label)
            if not done:
                obs, _, terminated, truncated, info = env.step(action)
                rew_d, rew_s = _rewards(info)
                success = success or bool(info.get("success", False))
                if info.get("latched_port", -1) >= 0 and info["latched_port"] not in seated[-1]:
                    seated[-1].append(int(info["latched_port"]))
                done = bool(terminated)  # an early end holds the last frame and reward until the horizon
            ret += rew_d
            prev_a = action
        successes.append(success)
        returns.append(ret)
        finals.append(rew_d)
        final_infos.append(info)
    trial = Trial(np.stack(frames), np.stack(actions), np.asarray(r_dense, np.float32),
                  np.asarray(r_sparse, np.float32), np.asarray(successes), getattr(task, "task_id", ""),
                  np.stack(labels), handed=handed_port is not None)
    result = TrialResult(trial, successes, returns, finals, episode_final_info=final_infos,
                         episode_ports_seated=seated)
    if beliefs:
        result.beliefs = np.stack(beliefs)
        if decode_reward:
            with torch.no_grad():
                b = torch.as_tensor(result.beliefs, device=device)
                cols = belief_columns(policy.z1_dim, policy.z2_dim, policy.task_latent_dim)
                mean, var = policy.model.decode_reward(*(b[:, cols[k]] for k in cols))
            result.reward_mean, result.reward_var = mean.cpu().numpy(), var.cpu().numpy()
    return result
