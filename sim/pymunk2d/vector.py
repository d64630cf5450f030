"""Many tasks stepped at once, in process, without ROS: one env instance per slot, batched arrays out.

`VectorTaskEnv` calls the envs' own methods directly (no Gymnasium wrappers in the loop) and builds the
batch with preallocated numpy arrays, so its overhead over stepping the envs one by one is small (see
bench/bench_pymunk.py). Episodes reset automatically at the horizon onto the same slot's task; the last
observation of the finished episode is in `infos["final_observation"]`.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from sim.tasks import Task
from sim.viewer import resolve_env_id  # noqa: F401  (re-exported)


class VectorTaskEnv:
    """N envs of one id, slot i running `tasks[i]`; step(actions (N, A)) -> batched arrays."""

    def __init__(self, env: str, tasks: Sequence[Task], seed: int = 0, autoreset: bool = True, **env_kwargs):
        if not tasks:
            raise ValueError("VectorTaskEnv needs at least one task")
        env_id = resolve_env_id(env)
        self.envs = [gym.make(env_id, **env_kwargs).unwrapped for _ in tasks]
        self.tasks = list(tasks)
        self.num_envs = len(self.envs)
        self.seed, self.autoreset = seed, autoreset
        first = self.envs[0]
        self.single_action_space, self.single_observation_space = first.action_space, first.observation_space
        self.action_shape = first.action_space.shape
        self.episode_steps = first.episode_steps
        n = self.num_envs
        self._obs = np.zeros((n, *first.observation_space.shape), dtype=first.observation_space.dtype)
        self._rew, self._dense, self._sparse = np.zeros(n), np.zeros(n), np.zeros(n)
        self._succ, self._trunc = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        self._term = np.zeros(n, dtype=bool)
        self._desc = np.stack([t.descriptor for t in self.tasks])
        self._started = False

    def reset(self, seed: int | None = None, tasks: Sequence[Task] | None = None):
        """Reset every slot (optionally onto new tasks); slot i is seeded with seed + i."""
        if tasks is not None:
            if len(tasks) != self.num_envs:
                raise ValueError(f"reset got {len(tasks)} tasks for {self.num_envs} envs")
            self.tasks = list(tasks)
            self._desc = np.stack([t.descriptor for t in self.tasks])
        base = self.seed if seed is None else seed
        for i, (env, task) in enumerate(zip(self.envs, self.tasks, strict=True)):
            self._obs[i] = env.reset(seed=base + i, options={"task": task})[0]
        self._started = True
        return self._obs.copy(), {"task": self._desc.copy()}

    def step(self, actions):
        if not self._started:
            raise RuntimeError("VectorTaskEnv: call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs, *self.action_shape):
            raise ValueError(f"actions have shape {actions.shape}, expected {(self.num_envs, *self.action_shape)}")
        final = {}
        for i, env in enumerate(self.envs):
            obs, rew, term, trunc, info = env.step(actions[i])
            self._rew[i], self._term[i], self._trunc[i] = rew, term, trunc
            self._dense[i], self._sparse[i], self._succ[i] = info["dense_reward"], info["sparse_reward"], info["success"]
            if (term or trunc) and self.autoreset:
                final[i] = obs
                obs = env.reset(options={"task": self.tasks[i]})[0]
            self._obs[i] = obs
        infos = {"dense_reward": self._dense.copy(), "sparse_reward": self._sparse.copy(),
                 "success": self._succ.copy(), "task": self._desc.copy(), "final_observation": final}
        return self._obs.copy(), self._rew.copy(), self._term.copy(), self._trunc.copy(), infos

    def expert_actions(self) -> np.ndarray:
        return np.stack([env.expert_action() for env in self.envs])

    def close(self):
        for env in self.envs:
            env.close()
