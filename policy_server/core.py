"""Policy server core (no ROS): spec checks, belief bookkeeping across a trial, and safe commands.

The node feeds it the newest observation (with its arrival time) and the latest reward; every control
tick it returns the joint-velocity command to publish. It commands zero whenever the observation is
stale or missing, the model returns non-finite numbers, or stepping is disabled — a bad model or a
dead camera can never move the arm.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from belief.policy_file import LoadedPolicy, PolicyMetadata
from meldbot import topics


class PolicySpecError(ValueError):
    """The model's declared inputs/outputs do not match the robot's topics."""


@dataclass
class PolicyServerConfig:
    model_path: str = ""
    joint_names: list[str] = field(default_factory=lambda: ["shoulder", "elbow", "wrist"])
    control_rate_hz: float = 0.0  # 0: use the model's; else must match it
    stale_after_s: float = 0.5  # observation older than this (arrival time) -> zero command
    autostart: bool = False  # step without waiting for /policy/enable (manual runs)


@dataclass
class TickResult:
    command: np.ndarray  # rad/s, one per joint
    status: str  # "ok", "stale", "no_observation", "nonfinite", "bad_observation", "disabled"
    detail: str = ""


def check_spec(meta: PolicyMetadata, config: PolicyServerConfig) -> None:
    """Refuse a model whose observation, action or rate does not fit this robot (PolicySpecError)."""
    problems = []
    try:
        obs_topic = topics.topic_by_name(meta.observation.topic)
    except KeyError:
        obs_topic = None
        problems.append(f"observation topic '{meta.observation.topic}' is not a topic of the contract")
    if obs_topic is not None:
        if obs_topic.msg_type == "sensor_msgs/msg/Image":
            if meta.observation.dtype != "uint8" or len(meta.observation.shape) != 3 or meta.observation.shape[2] != 3:
                problems.append(f"image topic '{obs_topic.name}' carries uint8 HxWx3 rgb8, model expects "
                                f"{meta.observation.dtype} {meta.observation.shape}")
        elif obs_topic.msg_type == "std_msgs/msg/Float64MultiArray":
            if len(meta.observation.shape) != 1:
                problems.append(f"state topic '{obs_topic.name}' carries a vector, model expects shape "
                                f"{meta.observation.shape}")
        else:
            problems.append(f"observation topic '{obs_topic.name}' ({obs_topic.msg_type}) cannot feed a policy")
    if meta.action.topic != topics.JOINT_VELOCITY_COMMANDS.name:
        problems.append(f"model commands '{meta.action.topic}', the arm takes '{topics.JOINT_VELOCITY_COMMANDS.name}'")
    if list(meta.action.joint_names) != list(config.joint_names):
        problems.append(f"model drives joints {list(meta.action.joint_names)}, this arm has {list(config.joint_names)}")
    if any(not math.isfinite(s) or s <= 0 for s in meta.action.scale):
        problems.append(f"action scale must be positive and finite, got {meta.action.scale}")
    try:
        topics.topic_by_name(meta.reward_topic)
    except KeyError:
        problems.append(f"reward topic '{meta.reward_topic}' is not a topic of the contract")
    if not (0 < meta.control_rate_hz <= 100):
        problems.append(f"model control rate {meta.control_rate_hz} Hz is not a usable rate")
    elif config.control_rate_hz and abs(config.control_rate_hz - meta.control_rate_hz) > 1e-6 * meta.control_rate_hz:
        problems.append(f"model was trained at {meta.control_rate_hz} Hz, server configured for "
                        f"{config.control_rate_hz} Hz")
    if problems:
        raise PolicySpecError("refusing model: " + "; ".join(problems))


class PolicyRunner:
    """Steps an exported policy, keeping its belief across the episodes of a trial."""

    def __init__(self, policy: LoadedPolicy, config: PolicyServerConfig):
        check_spec(policy.metadata, config)
        self.policy = policy
        self.meta = policy.metadata
        self.config = config
        self.scale = np.asarray(self.meta.action.scale, dtype=np.float64)
        self.zero = np.zeros(self.meta.action.dim)
        self.enabled = config.autostart
        # MELD filters each episode's final frame (the one after the last action): its reward says
        # whether the port was right, and episode 2 must know that
        self.absorbs_final_frame = bool(self.meta.extra.get("filter_final_frame", False))
        self._stepped_obs_time: float | None = None
        self.counts = {"ok": 0, "stale": 0, "no_observation": 0, "nonfinite": 0, "bad_observation": 0}
        self.latencies_s: list[float] = []
        self.reset_belief()
        self._obs = None
        self._obs_time = -math.inf
        self.reward = 0.0

    @property
    def rate_hz(self) -> float:
        return self.config.control_rate_hz or self.meta.control_rate_hz

    def reset_belief(self):
        """A new trial: belief back to the model's initial state, no previous action."""
        self.state = self.policy.initial_state()
        self.prev_action = np.zeros(self.meta.action.dim, dtype=np.float32)
        self.reward = 0.0
        self._stepped_obs_time = None

    def set_enabled(self, enabled: bool, now_s: float | None = None):
        """Start (True) or stop an episode. An episode's first step sees no previous action and zero
        reward, as in training (MELD's trials); the belief itself carries on across episodes. Stopping
        filters the episode's final frame and reward into the belief when the model asks for it."""
        if not enabled and self.enabled and self.absorbs_final_frame:
            self._absorb_final_frame(now_s)
        if enabled and not self.enabled:
            self.prev_action = np.zeros(self.meta.action.dim, dtype=np.float32)
            self.reward = 0.0
            self._stepped_obs_time = None
        self.enabled = bool(enabled)

    def _absorb_final_frame(self, now_s: float | None) -> bool:
        """One belief update on a frame newer than the last step's, its action discarded."""
        if self._obs is None or self._stepped_obs_time is None or self._obs_time <= self._stepped_obs_time:
            return False
        if now_s is not None and now_s - self._obs_time > self.config.stale_after_s:
            return False
        if list(np.shape(self._obs)) != list(self.meta.observation.shape):
            return False
        _, new_state = self.policy.step(self._obs, self.prev_action, self.reward, self.state)
        if not np.all(np.isfinite(new_state)):
            return False
        self.state, self._stepped_obs_time = new_state, self._obs_time
        return True

    def observe(self, obs: np.ndarray, arrival_s: float):
        self._obs, self._obs_time = obs, arrival_s

    def tick(self, now_s: float) -> TickResult:
        if not self.enabled:
            return TickResult(self.zero.copy(), "disabled")
        if self._obs is None:
            return self._count(TickResult(self.zero.copy(), "no_observation", "no observation received yet"))
        age = now_s - self._obs_time
        if age > self.config.stale_after_s:
            return self._count(TickResult(self.zero.copy(), "stale", f"observation is {age:.2f}s old"))
        shape = list(np.shape(self._obs))
        if shape != list(self.meta.observation.shape):
            return self._count(TickResult(self.zero.copy(), "bad_observation",
                                          f"observation shape {shape} != model's {self.meta.observation.shape}"))
        start = time.perf_counter()
        action, new_state = self.policy.step(self._obs, self.prev_action, self.reward, self.state)
        self.latencies_s.append(time.perf_counter() - start)
        if not (np.all(np.isfinite(action)) and np.all(np.isfinite(new_state))):
            # Keep the last good belief: one bad step must not poison the rest of the trial.
            return self._count(TickResult(self.zero.copy(), "nonfinite", "model returned non-finite values"))
        self.state, self._stepped_obs_time = new_state, self._obs_time
        self.prev_action = np.clip(action, -1.0, 1.0).astype(np.float32)
        return self._count(TickResult(self.prev_action.astype(np.float64) * self.scale, "ok"))

    def _count(self, result: TickResult) -> TickResult:
        self.counts[result.status] += 1
        return result
