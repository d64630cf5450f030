"""MELD meta-training: random data, model pre-training, then alternating collection and training.

    1. for every training task: `init_trials_per_task` trials with uniform random actions
    2. `pretrain_steps` ELBO steps on that data (the model only)
    3. repeat: collect `trials_per_iter` trials (sampled latents and actions) on random training tasks,
       then `train_steps_per_iter` gradient steps (model ELBO + SAC on the detached belief)
       every `eval_every` iterations: deterministic 2-episode trials on held-out tasks

Variants, same code:
  * sparse-reward procedure (MELD section 4.3): `agent.reward_input: sparse` (the model sees the sparse
    reward, reconstructs the shaped one) and `warm_start: RUN_DIR` of a shaped-reward run, whose replay
    buffers seed this agent instead of random data (`warm_start_model` / `warm_start_actor_critic`: its
    model / actor-critic weights too);
  * SLAC-style single-task baseline: `single_task: true` (all data from one training task).

Everything needed to continue (agent, optimisers, buffers, RNG states, counters) is checkpointed
atomically every `checkpoint_every` iterations and on Ctrl-C; `--resume` continues from it. The replay
trials sit beside checkpoint.pt in replay/, one file per trial written once (`belief.meld.replay_files`).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from belief.checkpoint import atomic_save, atomic_write_text
from belief.checks import is_whole_number
from belief.meld.agent import AgentConfig, MeldAgent, gate_plain_actor, has_gated_actor
from belief.meld.buffers import TaskBuffers
from belief.meld.checkpoints import load_meld_checkpoint
from belief.meld.policy import MeldPolicy
from belief.meld.replay_files import REPLAY_FOLDERS, TrialFiles
from belief.meld.trials import TrialResult, run_trial

CHECKPOINT = "checkpoint.pt"
# TrainConfig.teacher -> the PortSearch order it labels with ("" = no teacher)
TEACHERS = {"": "", "port_search": "nearest", "port_per_episode": "per_episode", "true_port": "true_port"}
NEEDS_TEACHER = "teacher: " + " or ".join(t for t in TEACHERS if t)  # the hint of the errors that need one
BEST = "best.pt"  # weights of the best held-out evaluation so far (training can drift away from it)


@dataclass
class TrainConfig:
    env: str = "widowx_cable"
    env_kwargs: dict = field(default_factory=dict)
    action_scale: float = 1.0  # policy action 1.0 = this fraction of the env's full command (vmax)
    seed: int = 0
    # seeds the training's own randomness (torch, the trainer's RNG, the trials' seeds) apart from `seed`,
    # which also draws the task split and the fresh tasks: a repeat of a run on the same tasks. -1 = seed
    training_seed: int = -1
    device: str = "cpu"
    torch_threads: int = 0  # 0: torch default
    episodes: int = 2  # episodes per trial
    n_train_tasks: int = 0  # 0: the family's default split
    n_test_tasks: int = 0
    # more training tasks from the same distribution, drawn apart so the held-out tasks stay the split's:
    # with 20 tasks (5 per port) a model can tie each rig pose to its port; with more it must read rewards
    extra_train_tasks: int = 0
    single_task: bool = False  # SLAC-style baseline: one training task only
    agent: AgentConfig = field(default_factory=AgentConfig)
    capacity_per_task: int = 100  # trials
    init_trials_per_task: int = 2
    pretrain_steps: int = 500
    iterations: int = 1000
    trials_per_iter: int = 1
    train_steps_per_iter: int = 20
    batch_trials: int = 8
    max_env_steps: int = 80_000
    time_budget_min: float = 0.0  # stop (and checkpoint) after this much wall time; 0 = none
    eval_every: int = 25
    eval_tasks: int = 0  # held-out tasks per evaluation; 0 = all
    eval_trials_per_task: int = 1
    checkpoint_every: int = 10
    warm_start: str = ""  # run dir of a trained (shaped) agent: its buffers seed this one
    warm_start_model: bool = False  # also start from that run's latent model weights (not its actor-critic)
    # also start from its actor-critic (actor, critics, targets, temperature): the shaped agent's
    # insertion skill instead of SAC from scratch; needs warm_start_model (the actor reads that belief)
    warm_start_actor_critic: bool = False
    # task parameter the task-identification term predicts (agent.model.task_id_weight), one-hot in the
    # privileged critic's task descriptor (agent.privileged_critic)
    task_label: str = "port"
    # scripted port-blind search trials (sim.mujoco.cable.PortSearch) per training task, collected once
    # before training (after the warm start or the random trials) into the replay buffers, their env
    # steps counted; agent.search_bc_weight > 0 also clones them. Cable twin only. 0 = MELD's data only
    search_trials_per_task: int = 0
    # DAgger: "port_search" labels every collected trial with what a port-blind teacher
    # (sim.mujoco.cable.PortSearch, nearest-port order) would do at each state the agent visited;
    # "port_per_episode" the same teacher trying one port per episode (PortSearch order "per_episode":
    # after a failure another port, after a success the same one); "true_port" an expert heading for the
    # task's own port from every state (privileged, like agent.ac_true_port, which it needs: each of the
    # actor's per-port heads is taught the way to its port, also from trials that went elsewhere).
    # agent.teacher_bc_weight > 0 clones those labels. Cable twin only. "" = no teacher
    teacher: str = ""
    # DAgger's beta: the share of collected trials the teacher acts in itself (its actions are then the
    # labels), so the replay holds searches that succeed and the critic sees them pay; the rest the agent
    # acts in and the teacher labels. Needs a teacher. 0 = the agent acts in every trial
    teacher_act_share: float = 0.0
    # the share of collected trials the teacher acts in for episode 1 only and the agent for the rest
    # (labelled by the teacher): the agent's episode 2 then starts from the belief of a search that
    # latched, the state the carried belief is for, which its own trials reach only as often as its
    # episode 1 succeeds (after it, episode 2 went back to the latched port yet pushed in 0.09 of the
    # time against 0.57 with the belief reset, docs/meld.md). Needs a teacher and episodes >= 2; drawn
    # beside teacher_act_share (their sum <= 1). 0 = off
    teacher_leads_share: float = 0.0
    # the teacher's labels stop (NaN) while the plug's tip is within this distance (m) of the axis of the
    # port the teacher is heading for, near its opening (PortSearch.clone_radius): the student clones the
    # search's choice of port and the reward teaches the centring and push in. Needs a teacher. 0 = all
    teacher_clone_radius: float = 0.0
    # the teacher's labels are kept in the first k episodes of each trial only (NaN after), so the later
    # episodes' choice of port and their insertion are left to the reward under the carried belief: the
    # nearest-port teacher's labels there tell the student to leave the ports episode 1 ruled out, and
    # its episode 2 seated the plug on 0.24 of trials, 0.79 with the belief reset (docs/meld.md). Needs a teacher;
    # 0 <= k < episodes. 0 = every episode
    teacher_labelled_episodes: int = 0
    # [[env_steps, weight], ...]: from that many env steps on, the teacher's cloning weight is weight
    # (agent.teacher_bc_weight before the first entry). Cloning the true-port teacher's approach at 300
    # opened every port and cost the mean action its push in; lowered to 3 after the approach was
    # learnt, the reward brought the push in back (docs/meld.md). Needs a teacher. [] = constant
    teacher_bc_schedule: list = field(default_factory=list)
    # the schedule's last weight also takes effect once this many minutes of time_budget_min are left, if its
    # env steps have not come first: on a slower machine the budget ends before the scheduled env steps leave
    # the reward time to bring the push in back (~150 iterations at weight 3, docs/meld.md). Minutes of this
    # invocation's budget (a resume starts its own). Needs the schedule and time_budget_min > it. 0 = off
    teacher_bc_final_min: float = 0.0
    # the share of collected trials in which the agent's actor is handed the trial's true port (one-hot)
    # in place of the task head's probabilities: the agent's own policy going to the port it is told, the
    # data its true-port actor-critic (agent.ac_true_port, required) trains on; in the rest it is handed
    # the head's most probable port, as at test time. train.csv's train_port_handed says which. 0 = off
    true_port_share: float = 0.0
    # in those trials the actor is handed the true port from this episode index on, the head's guess
    # before it: with 1, episode 1 is the agent's own guess in every trial (the failures the task head
    # learns its next guess from, which handing episode 1 the port took away) and episode 2 practises the
    # reach and insertion at the true port (from the ready pose, as every episode). Needs true_port_share;
    # < episodes. 0 = all
    true_port_from_episode: int = 0
    # the task head does not learn from the handed trials: there every episode is spent at the true port,
    # so a failure (a missed insertion) happens at the true port and the head learned "failed at k => k"
    # and named port k again after an own-guess failure at k (docs/meld.md). Needs true_port_share
    task_head_skips_handed: bool = False
    # the handed trials go to the ports the actor reaches least: a handed trial's port class is drawn with
    # weight 1 - (its last-episode success over its last 20 handed trials) + 0.05, then a training task of
    # that class; the head's-guess trials keep drawing tasks uniformly. A port whose head never learned
    # to reach it (docs/meld.md, thirty-fifth session) gets more of the practice. Needs true_port_share
    true_port_focus: bool = False

    def __post_init__(self):
        if isinstance(self.agent, dict):
            self.agent = AgentConfig(**self.agent)
        if self.episodes < 1:
            raise ValueError(f"TrainConfig.episodes must be >= 1, got {self.episodes}")
        if self.extra_train_tasks < 0 or self.n_train_tasks < 0 or self.n_test_tasks < 0:
            raise ValueError("TrainConfig n_train_tasks, n_test_tasks and extra_train_tasks must be >= 0, got "
                             f"{self.n_train_tasks}, {self.n_test_tasks}, {self.extra_train_tasks}")
        if not is_whole_number(self.training_seed) or self.training_seed < -1:
            raise ValueError("TrainConfig.training_seed must be a whole number >= 0 (or -1 = seed), got "
                             f"{self.training_seed!r}")
        if not 0.0 < self.action_scale <= 1.0:
            raise ValueError(f"TrainConfig.action_scale must be in (0, 1], got {self.action_scale}")
        if (self.warm_start_model or self.warm_start_actor_critic) and not self.warm_start:
            raise ValueError("TrainConfig.warm_start_model / warm_start_actor_critic need warm_start (a run dir)")
        if self.warm_start_actor_critic and not self.warm_start_model:
            raise ValueError("TrainConfig.warm_start_actor_critic needs warm_start_model: the actor-critic reads "
                             "the belief of the model it was trained with")
        if not is_whole_number(self.search_trials_per_task) or self.search_trials_per_task < 0:
            raise ValueError("TrainConfig.search_trials_per_task must be a whole number >= 0, got "
                             f"{self.search_trials_per_task!r}")
        if self.agent.search_bc_weight and not self.search_trials_per_task:
            raise ValueError("agent.search_bc_weight clones scripted search trials: it needs "
                             "search_trials_per_task >= 1")
        if self.teacher not in TEACHERS:
            raise ValueError(f"TrainConfig.teacher must be one of {tuple(TEACHERS)} ('' = none), got {self.teacher!r}")
        if self.agent.teacher_bc_weight and not self.teacher:
            raise ValueError("agent.teacher_bc_weight clones a teacher's labels: it needs a teacher "
                             f"({NEEDS_TEACHER})")
        if self.teacher == "true_port" and not self.agent.ac_true_port:
            raise ValueError("TrainConfig.teacher 'true_port' labels the way to the task's own port, which only an "
                             "actor trained on the true port's one-hot is asked for: it needs agent.ac_true_port")
        for name in ("teacher_act_share", "teacher_leads_share", "true_port_share"):
            share = getattr(self, name)
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
                raise ValueError(f"TrainConfig.{name} is a share of the collected trials, in [0, 1], got {share!r}")
            if share and not self.teacher and name != "true_port_share":
                raise ValueError(f"TrainConfig.{name}: the teacher acts in that share of trials, so it needs a "
                                 f"teacher ({NEEDS_TEACHER})")
        if self.true_port_share and not self.agent.ac_true_port:
            raise ValueError("TrainConfig.true_port_share hands the actor the true port it is trained on: it needs "
                             "agent.ac_true_port")
        if self.true_port_from_episode and not self.true_port_share:
            raise ValueError("TrainConfig.true_port_from_episode says from which episode the handed trials are "
                             "handed the true port: it needs true_port_share")
        if not isinstance(self.true_port_focus, bool):  # a YAML typo must not switch it on
            raise ValueError(f"TrainConfig.true_port_focus must be true or false, got {self.true_port_focus!r}")
        if self.true_port_focus and not self.true_port_share:
            raise ValueError("TrainConfig.true_port_focus picks the ports of the handed trials: it needs true_port_share")
        if not isinstance(self.task_head_skips_handed, bool):  # a YAML typo must not switch it on
            raise ValueError(f"TrainConfig.task_head_skips_handed must be true or false, got "
                             f"{self.task_head_skips_handed!r}")
        if self.task_head_skips_handed and not (self.true_port_share and self.agent.model.task_id_weight > 0):
            raise ValueError("TrainConfig.task_head_skips_handed keeps the handed trials out of the task head's "
                             "loss: it needs true_port_share and agent.model.task_id_weight > 0")
        if not is_whole_number(self.true_port_from_episode) or not 0 <= self.true_port_from_episode < self.episodes:
            raise ValueError("TrainConfig.true_port_from_episode must be a whole number in [0, episodes = "
                             f"{self.episodes}), got {self.true_port_from_episode!r}")
        if self.teacher_act_share + self.teacher_leads_share > 1.0:
            raise ValueError("TrainConfig.teacher_act_share + teacher_leads_share must be <= 1 (shares of the same "
                             f"trials), got {self.teacher_act_share} + {self.teacher_leads_share}")
        if self.teacher_leads_share and self.episodes < 2:
            raise ValueError("TrainConfig.teacher_leads_share: the teacher leads episode 1 and the agent acts in the "
                             f"rest, so it needs episodes >= 2, got {self.episodes}")
        if self.teacher_clone_radius and not self.teacher:
            raise ValueError("TrainConfig.teacher_clone_radius limits a teacher's labels: it needs a teacher "
                             f"({NEEDS_TEACHER})")
        k = self.teacher_labelled_episodes
        if not is_whole_number(k) or not 0 <= k < self.episodes:
            raise ValueError("TrainConfig.teacher_labelled_episodes counts the first episodes the teacher labels, "
                             f"a whole number in [0, episodes = {self.episodes}) (0 = all), got {k!r}")
        if k and not self.teacher:
            raise ValueError("TrainConfig.teacher_labelled_episodes limits a teacher's labels: it needs a teacher "
                             f"({NEEDS_TEACHER})")
        self._check_teacher_bc_schedule()
        if self.teacher_clone_radius:  # refused here, not after the random trials and pre-training
            from sim.mujoco.cable import check_clone_radius

            check_clone_radius(self.teacher_clone_radius, "TrainConfig.teacher_clone_radius")
        for name in ("search_trials_per_task", "teacher"):
            if getattr(self, name) and self.env != "widowx_cable":
                raise ValueError(f"TrainConfig.{name}: the scripted port search exists for the widowx_cable "
                                 f"twin only, not {self.env!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} requested but CUDA is not available")

    def _check_teacher_bc_schedule(self) -> None:
        what = "TrainConfig.teacher_bc_schedule is a list of [env_steps, weight] pairs, env_steps whole, rising"
        entries = self.teacher_bc_schedule
        if not isinstance(entries, list | tuple):
            raise ValueError(f"{what}; got {entries!r}")
        last = -1
        for entry in entries:
            steps, weight = entry if isinstance(entry, list | tuple) and len(entry) == 2 else (None, None)
            if (not is_whole_number(steps) or steps <= last or isinstance(weight, bool)
                    or not isinstance(weight, int | float) or not weight >= 0):
                raise ValueError(f"{what} and weight a number >= 0; got {entry!r} in {entries!r}")
            last = steps
        if entries and not (self.teacher and self.agent.teacher_bc_weight):
            raise ValueError("TrainConfig.teacher_bc_schedule changes the cloning weight a run starts with: it needs a "
                             f"teacher ({NEEDS_TEACHER}) and agent.teacher_bc_weight > 0")
        final = self.teacher_bc_final_min
        if isinstance(final, bool) or not isinstance(final, int | float) or not final >= 0:
            raise ValueError(f"TrainConfig.teacher_bc_final_min is minutes >= 0 (0 = off), got {final!r}")
        budget = self.time_budget_min
        if final and not (entries and isinstance(budget, int | float) and not isinstance(budget, bool)
                          and final < budget):
            raise ValueError("TrainConfig.teacher_bc_final_min starts the teacher_bc_schedule's last weight that many "
                             "minutes before the time budget ends: it needs a teacher_bc_schedule and time_budget_min > "
                             f"{final} (got schedule {entries!r}, time_budget_min {self.time_budget_min!r})")

    def teacher_bc_weight_at(self, env_steps: int, minutes_left: float = math.inf) -> float:
        """The teacher's cloning weight in effect after `env_steps` env steps (teacher_bc_schedule), or the
        schedule's last once `minutes_left` of the time budget are teacher_bc_final_min or fewer."""
        if self.teacher_bc_final_min and minutes_left <= self.teacher_bc_final_min:
            return float(self.teacher_bc_schedule[-1][1])
        weight = self.agent.teacher_bc_weight
        for steps, scheduled in self.teacher_bc_schedule:
            if env_steps >= steps:
                weight = scheduled
        return float(weight)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown MELD config keys {sorted(unknown)}")
        schema = dataclasses.asdict(cls())  # which keys are sections (agent, agent.model, agent.sac)
        for key, value in overrides.items():
            if value is not None:
                _set_dotted(data, key, value, schema)
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def dotted_items(data: dict, prefix: str = "") -> dict:
    """{"a.b.c": value} for every leaf of nested config sections."""
    items = {}
    for key, value in data.items():
        if isinstance(value, dict):
            items.update(dotted_items(value, f"{prefix}{key}."))
        else:
            items[f"{prefix}{key}"] = value
    return items


def _set_dotted(data: dict, key: str, value, schema: dict) -> None:
    """data[a][b][c] = value for key "a.b.c"; a and a.b must be sections of the config (schema)."""
    *parents, leaf = key.split(".")
    node = data
    for i, part in enumerate(parents):
        schema = schema.get(part) if isinstance(schema, dict) else None
        if not isinstance(schema, dict):
            raise ValueError(f"cannot set {key!r}: {'.'.join(parents[: i + 1])} is not a config section")
        node = node.setdefault(part, {})
    if schema and leaf not in schema:  # an empty section (env_kwargs) takes any key
        raise ValueError(f"cannot set {key!r}: unknown key {leaf!r} (known: {', '.join(sorted(schema))})")
    node[leaf] = value


# --- environment ------------------------------------------------------------------------------------
def make_env(name: str, seed: int = 0, **kwargs):
    """Gymnasium env by short name (belief.registry), with image observations."""
    from belief.registry import make_env as registry_make_env

    return registry_make_env(name, seed=seed, image_obs=True, **kwargs)


class ScaledActions:
    """Env wrapper: the policy's [-1, 1] action drives `scale` x the env's command range.

    The WidowX twin's action 1.0 is the joint velocity limit (pi rad/s, ~1 rad per 0.3 s step): uniform
    random exploration at that speed flings the plug 30+ cm from the router. A fraction keeps exploration
    where the task is; the exported metadata scale (rad/s per unit action) includes it."""

    def __init__(self, env, scale: float):
        self.env, self.scale = env, float(scale)
        self.action_space, self.observation_space = env.action_space, env.observation_space
        self.unwrapped = env.unwrapped

    def reset(self, **kwargs):
        return self.env.reset(**kwargs)

    def step(self, action):
        return self.env.step(np.asarray(action, np.float32) * self.scale)

    def close(self):
        self.env.close()


# seed offset of the stream that extra training tasks are drawn from (any value no run uses as its seed)
EXTRA_TASK_SEED_OFFSET = 7_919
# and of fresh tasks, held out from a run's split and extras alike (evaluate --split fresh)
FRESH_TASK_SEED_OFFSET = 104_729


def make_task_set(name: str, seed: int, n_train: int = 0, n_test: int = 0, extra_train: int = 0):
    """The family's seeded split, plus `extra_train` training tasks from the same distribution.

    The extras come from a separate seeded draw (ids continue the training ids), so the split's own
    training and held-out tasks stay exactly those of the run without them."""
    from dataclasses import replace

    from belief.registry import make_task_set as registry_task_set

    if extra_train < 0:
        raise ValueError(f"extra training tasks must be >= 0, got {extra_train}")
    tasks = registry_task_set(name, seed=seed, **{k: v for k, v in (("n_train", n_train), ("n_test", n_test)) if v})
    if not extra_train:
        return tasks
    more = registry_task_set(name, seed=seed + EXTRA_TASK_SEED_OFFSET, n_train=extra_train, n_test=0).train
    n = len(tasks.train)
    extra = tuple(replace(t, task_id=f"train-{n + i:02d}") for i, t in enumerate(more))
    return replace(tasks, train=tasks.train + extra)


def fresh_tasks(cfg: TrainConfig, n: int) -> list:
    """`n` tasks from the run's distribution that it neither trained nor was evaluated on (ids fresh-NN):
    a held-out read over many more rig poses than the split's held-out tasks."""
    from dataclasses import replace

    from belief.registry import make_task_set as registry_task_set

    if n < 1:
        raise ValueError(f"fresh tasks: need at least 1, got {n}")
    drawn = registry_task_set(cfg.env, seed=cfg.seed + FRESH_TASK_SEED_OFFSET, n_train=n, n_test=0).train
    return [replace(t, task_id=f"fresh-{i:02d}") for i, t in enumerate(drawn)]


def task_set_of(cfg: TrainConfig):
    """The task set a run with this config trains and is evaluated on."""
    return make_task_set(cfg.env, cfg.seed, cfg.n_train_tasks, cfg.n_test_tasks, cfg.extra_train_tasks)


def task_label_classes(tasks, label: str) -> dict[str, int]:
    """Task id -> index of its `label` parameter's value among all values the tasks take."""
    missing = [t.task_id for t in tasks if label not in t.params]
    if missing:
        raise ValueError(f"task_label {label!r}: tasks {missing[:3]} have no such parameter "
                         f"(known: {', '.join(sorted(tasks[0].params))})")
    values = sorted({t.params[label] for t in tasks})
    if len(values) < 2:
        raise ValueError(f"task_label {label!r} takes one value over all tasks: nothing to identify")
    return {t.task_id: values.index(t.params[label]) for t in tasks}


def task_descriptors(tasks, label: str) -> dict[str, np.ndarray]:
    """Task id -> the privileged critic's view of the task: the one-hot `label` class followed by every
    other numeric parameter scaled to [-1, 1] over the tasks (constant parameters dropped)."""
    classes = task_label_classes(tasks, label)
    n = max(classes.values()) + 1
    names = sorted(k for k in tasks[0].params if k != label and
                   all(isinstance(t.params.get(k), (int, float)) for t in tasks))
    lo = {k: min(t.params[k] for t in tasks) for k in names}
    hi = {k: max(t.params[k] for t in tasks) for k in names}
    names = [k for k in names if hi[k] > lo[k]]
    out = {}
    for t in tasks:
        onehot = np.eye(n, dtype=np.float32)[classes[t.task_id]]
        scaled = [2.0 * (t.params[k] - lo[k]) / (hi[k] - lo[k]) - 1.0 for k in names]
        out[t.task_id] = np.concatenate([onehot, np.asarray(scaled, np.float32)])
    return out


def env_metadata(env, name: str, episodes: int) -> dict:
    """What export needs to know about the env (saved in the checkpoint)."""
    u = env.unwrapped
    adim = int(np.prod(env.action_space.shape))
    arm = getattr(getattr(u, "family", None), "arm", None)  # MuJoCo twin: the arm spec
    joints = getattr(arm, "joint_names", None) or getattr(u, "joint_names", None) or \
        [f"joint{i}" for i in range(adim)]
    scale = getattr(u, "vmax", None)
    if scale is None:
        scale = getattr(u, "action_scale", 1.0)
    scale = np.asarray(scale, float) * getattr(env, "scale", 1.0)
    return {"env": name, "episodes": episodes, "horizon": int(u.episode_steps),
            "obs_shape": list(env.observation_space.shape), "action_dim": adim,
            "joint_names": list(joints)[:adim],
            "action_scale": [float(s) for s in np.broadcast_to(scale, (adim,))],
            "control_rate_hz": float(getattr(u, "control_hz", getattr(u, "control_rate_hz", 3.3)))}


# --- logging ----------------------------------------------------------------------------------------
def success_by_class(classes: list[int], successes: list[bool], n_classes: int) -> dict[str, float]:
    """`train_success_last_class<k>`: last-episode success of an iteration's trials whose task has class k
    (NaN where none ran), so the log shows which ports the actor has learned, not only how many."""
    out = {}
    for k in range(n_classes):
        mine = [s for c, s in zip(classes, successes, strict=True) if c == k]
        out[f"train_success_last_class{k}"] = float(np.mean(mine)) if mine else float("nan")
    return out


class CsvLog:
    """Append-only CSV whose columns are fixed by the first row (later keys are dropped, not lost rows)."""

    def __init__(self, path: Path):
        self.path = path
        self.fields: list[str] | None = None
        if path.is_file():
            with path.open() as fh:
                self.fields = next(csv.reader(fh), None)

    def truncate(self, max_iteration: int) -> None:
        """On resume: drop rows logged after the checkpoint (they are produced again)."""
        if not self.path.is_file():
            return
        with self.path.open() as fh:
            rows = list(csv.DictReader(fh))
        kept = [r for r in rows if int(float(r.get("iteration") or 0)) <= max_iteration]
        if len(kept) != len(rows) and self.fields:
            import io

            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=self.fields)
            w.writeheader()
            w.writerows(kept)
            atomic_write_text(buf.getvalue(), self.path)

    def write(self, row: dict) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with self.path.open("a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)


# --- the trainer ------------------------------------------------------------------------------------
def configure_torch(device: str, threads: int = 0) -> None:
    """CPU thread count (0: torch's default) and, on CUDA, the fast kernel choices for fixed shapes."""
    if threads:
        torch.set_num_threads(threads)
    if device.startswith("cuda"):
        # fixed batch shapes: let cuDNN pick the fastest conv kernels once; TF32 matmuls on Ampere+
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")


class Trainer:
    def __init__(self, cfg: TrainConfig, run_dir: str | os.PathLike, env=None, task_set=None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        configure_torch(cfg.device, cfg.torch_threads)
        self.training_seed = cfg.seed if cfg.training_seed < 0 else cfg.training_seed
        torch.manual_seed(self.training_seed)
        self.rng = np.random.default_rng(self.training_seed)
        self.env = env if env is not None else make_env(cfg.env, cfg.seed, **cfg.env_kwargs)
        if cfg.action_scale != 1.0:
            self.env = ScaledActions(self.env, cfg.action_scale)
        self.tasks = task_set if task_set is not None else task_set_of(cfg)
        self.train_tasks = list(self.tasks.train[:1] if cfg.single_task else self.tasks.train)
        self.meta = env_metadata(self.env, cfg.env, cfg.episodes)
        self.horizon = self.meta["horizon"]
        cfg.agent.model.action_dim = self.meta["action_dim"]
        all_tasks = list(self.tasks.train) + list(self.tasks.test)  # same classes and scales in both splits
        self.task_labels = task_label_classes(all_tasks, cfg.task_label) if cfg.agent.model.task_id_weight > 0 else {}
        if self.task_labels:
            cfg.agent.model.task_classes = len(set(self.task_labels.values()))
        self.task_features = task_descriptors(all_tasks, cfg.task_label) if cfg.agent.privileged_critic else {}
        if self.task_features:
            cfg.agent.critic_task_dim = len(next(iter(self.task_features.values())))
        h, w = self.meta["obs_shape"][:2]
        cfg.agent.model.image_height, cfg.agent.model.image_width = h, w
        self.agent = MeldAgent(cfg.agent, cfg.episodes, self.horizon, cfg.device)
        self.policy = MeldPolicy(self.agent.model, self.agent.sac.actor)
        self.buffers = TaskBuffers(cfg.capacity_per_task, cfg.episodes * (self.horizon + 1),
                                   tuple(self.meta["obs_shape"]), self.meta["action_dim"])
        # the scripted search's trials again, apart, for behaviour cloning (agent.search_bc_weight)
        self.search_buffers = TaskBuffers(max(cfg.search_trials_per_task, 1), cfg.episodes * (self.horizon + 1),
                                          tuple(self.meta["obs_shape"]), self.meta["action_dim"])
        self._search_cache: dict | None = None
        self.trial_files = {key: TrialFiles(self.run_dir / folder) for key, folder in REPLAY_FOLDERS.items()}
        self.iteration = 0
        self.env_steps = 0
        self.grad_steps = 0
        self._ac_cache: dict | None = None  # AgentConfig.ac_batch: transitions of all stored trials
        self._ac_cache_step = 0
        self.trials_run = 0
        self.handed_history: dict[int, list[bool]] = {}  # task class -> last-episode success of its handed trials
        self.pretrained = False
        self.best_score: list[float] | None = None
        self.log = CsvLog(self.run_dir / "train.csv")
        self.pretrain_log = CsvLog(self.run_dir / "pretrain.csv")
        self.eval_log = CsvLog(self.run_dir / "eval.csv")

    # --- checkpoint ----------------------------------------------------------------------------
    def save(self) -> Path:
        """The checkpoint, after the replay trials it names (`belief.meld.replay_files`); then the trial
        files it no longer names go."""
        replay = {key: files.save(getattr(self, key)) for key, files in self.trial_files.items()}
        state = {"algo": "meld", "config": self.cfg.to_dict(), "env_meta": self.meta,
                 "agent": self.agent.state_dict(), "replay": replay,
                 "counters": {"iteration": self.iteration, "env_steps": self.env_steps,
                              "grad_steps": self.grad_steps, "trials_run": self.trials_run,
                              "pretrained": self.pretrained, "best_score": self.best_score,
                              "handed_history": self.handed_history},
                 "rng": {"numpy": self.rng.bit_generator.state, "torch": torch.get_rng_state()}}
        path = atomic_save(state, self.run_dir / CHECKPOINT)
        for key, files in self.trial_files.items():
            files.prune(replay[key])
        return path

    def restore(self, path: Path) -> None:
        state = load_meld_checkpoint(path)
        self.agent.load_state_dict(state["agent"])
        self.buffers.load_state_dict(state["buffers"], adopt=True)  # loaded here, used nowhere else
        if state.get("search_buffers"):  # checkpoints before search_trials_per_task have none
            self.search_buffers.load_state_dict(state["search_buffers"], adopt=True)
        for key, index in state.get("replay", {}).items():  # older checkpoints held their trials inline
            self.trial_files[key].adopt(index)
        for k, v in state["counters"].items():
            setattr(self, k, v)
        self.rng.bit_generator.state = state["rng"]["numpy"]
        torch.set_rng_state(state["rng"]["torch"])

    # --- pieces ---------------------------------------------------------------------------------
    def _trial_seed(self) -> int:
        self.trials_run += 1
        return self.training_seed * 1_000_003 + self.trials_run * 101

    def _least_reached_port_task(self):
        """A training task for a handed trial under true_port_focus: its class drawn with weight 1 - recent
        handed success + 0.05 (a class with no handed trial yet counts as never reached)."""
        classes = sorted({self.task_labels[t.task_id] for t in self.train_tasks})
        recent = [self.handed_history.get(k, [])[-20:] for k in classes]
        weights = np.array([1.0 - (np.mean(r) if r else 0.0) + 0.05 for r in recent])
        k = classes[self.rng.choice(len(classes), p=weights / weights.sum())]
        pool = [t for t in self.train_tasks if self.task_labels[t.task_id] == k]
        return pool[self.rng.integers(len(pool))]

    def _teacher(self):
        """The labelling teacher of TrainConfig.teacher (None without one)."""
        from sim.mujoco.cable import PortSearch

        if not self.cfg.teacher:
            return None
        return PortSearch(self.cfg.action_scale, order=TEACHERS[self.cfg.teacher],
                          clone_radius=self.cfg.teacher_clone_radius)

    def collect(self, task, mode: str, controller=None, controller_episodes: int = 0,
                labelled_episodes: int = 0, hand_true_port: bool = False) -> TrialResult:
        """One trial into the replay; with `labelled_episodes` = k > 0 the controller's labels after the
        first k episodes are dropped (NaN); with `hand_true_port` the actor is handed the task's port."""
        result = run_trial(self.env, task, None if mode == "scripted" else self.policy, self.cfg.episodes, mode,
                           self.cfg.agent.reward_input, self.rng, seed=self._trial_seed(), controller=controller,
                           controller_episodes=controller_episodes,
                           handed_port=self.task_labels[task.task_id] if hand_true_port else None,
                           handed_from_episode=self.cfg.true_port_from_episode)
        if labelled_episodes:
            result.trial.labels[labelled_episodes * (self.horizon + 1):] = np.nan
        self.buffers.add(task.task_id, result.trial)
        self.env_steps += self.cfg.episodes * self.horizon
        return result

    def collect_search(self) -> None:
        """`search_trials_per_task` scripted port-search trials per training task, into the replay
        buffers and (for behaviour cloning) the search buffers."""
        from tqdm import tqdm

        from sim.mujoco.cable import PortSearch

        search = PortSearch(self.cfg.action_scale)
        found = []
        for task in tqdm(self.train_tasks, desc="scripted search trials", leave=False):
            for _ in range(self.cfg.search_trials_per_task):
                result = self.collect(task, "scripted", search)
                self.search_buffers.add(task.task_id, result.trial)
                found.append(result.episode_success)
        rate = np.mean(found, 0) if found else []
        print(f"scripted search: {len(found)} trials, success per episode {np.round(rate, 2).tolist()}", flush=True)

    def train_steps(self, n: int, actor_critic: bool = True) -> dict:
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        tasks = [t.task_id for t in self.train_tasks]
        for _ in range(n):
            batch = self.buffers.sample(self.cfg.batch_trials, self.rng, tasks)
            if self.task_labels:
                batch["task_label"] = np.array([self.task_labels[t] for t in batch["task_id"]])
                if self.cfg.task_head_skips_handed:
                    batch["task_label_mask"] = ~batch["handed"]
            if self.task_features:
                batch["task_features"] = np.stack([self.task_features[t] for t in batch["task_id"]])
            cached = actor_critic and self.cfg.agent.ac_batch > 0
            stats = self.agent.train_step(batch, train_actor_critic=actor_critic and (self.cfg.agent.ac_mix or not cached))
            if cached:
                stats.update(self._cached_actor_critic())
            self.grad_steps += 1
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
        # each term averaged over the steps that reported it: the teacher's cloning term is absent from
        # steps whose minibatch held no labelled transition, which must not read as a zero loss
        out = {k: v / counts[k] for k, v in sums.items()}
        if actor_critic and (self.cfg.agent.teacher_bc_weight or self.cfg.teacher_bc_schedule):
            # train.csv's columns are fixed by its first row: a run whose first minibatches hold no label
            # (a warm start's replay) must still get the column
            out.setdefault("teacher_bc_loss", float("nan"))
        return out

    def _cached_actor_critic(self) -> dict:
        """`ac_updates_per_step` SAC updates on i.i.d. minibatches of the cached beliefs of the stored
        trials (AgentConfig.ac_batch, ac_recent_trials), refiltered every `ac_cache_refresh` model steps."""
        from belief.meld.refit import replay_transitions

        a = self.cfg.agent
        if self._ac_cache is None or self.grad_steps - self._ac_cache_step >= a.ac_cache_refresh:
            self._ac_cache = None  # dropped before its replacement is built: one cache in memory
            # filtered one task at a time: only one task's copy of its recent trials is held at once
            parts = [replay_transitions(self.agent, {tid: trials}, self.task_features, self.task_labels)
                     for tid, trials in self.buffers.recent_each(a.ac_recent_trials)]
            if not parts:
                raise ValueError("actor-critic cache: the replay buffers hold no trials to filter")
            self._ac_cache = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
            del parts
            self.agent.model.train()  # filtering put it in eval mode
            self._ac_cache_step = self.grad_steps
            if a.search_bc_weight and self.search_buffers.num_trials:
                self._search_cache = replay_transitions(self.agent, self.search_buffers.stored(), self.task_features,
                                                         self.task_labels)
                self.agent.model.train()
        stats: dict = {}
        for _ in range(a.ac_updates_per_step):
            stats = self.agent.sac_update(self._minibatch(self._ac_cache), self._minibatch(self._search_cache))
        return stats

    def _minibatch(self, cache: dict | None) -> dict | None:
        """ac_batch rows drawn i.i.d. from a cache of filtered transitions (None stays None)."""
        if cache is None:
            return None
        idx = torch.as_tensor(self.rng.integers(len(cache["obs"]), size=self.cfg.agent.ac_batch),
                              device=self.agent.device)
        return {k: v[idx] for k, v in cache.items()}

    def evaluate(self) -> dict:
        from belief.meld.evaluate import evaluate_policy

        tasks = list(self.tasks.test[: self.cfg.eval_tasks or None])
        return evaluate_policy(self.env, self.policy, tasks, self.cfg.episodes, self.cfg.eval_trials_per_task,
                               self.cfg.agent.reward_input, seed=10_000 + self.cfg.seed)

    def warm_start(self) -> None:
        """MELD's sparse-reward procedure: start from the shaped agent's replay data (and its weights)."""
        src = Path(self.cfg.warm_start) / CHECKPOINT
        state = load_meld_checkpoint(src)
        self.buffers.load_state_dict(state["buffers"], adopt=True)  # loaded here, used nowhere else
        parts = [("model", self.agent.model)] if self.cfg.warm_start_model else []
        parts += [("sac", self.agent.sac)] if self.cfg.warm_start_actor_critic else []
        for key, module in parts:
            weights = state["agent"][key]
            if key == "sac" and self.cfg.agent.task_gated_actor:  # a plain actor grows a head per port
                weights = gate_plain_actor(weights, self.cfg.agent.model.task_classes)
            try:
                module.load_state_dict(weights)
            except RuntimeError as exc:  # another architecture: name the run and the part, not a tensor dump
                if key == "sac" and has_gated_actor(weights):
                    raise ValueError(f"warm start from {src}: its actor has a head per port (agent.task_gated_actor: "
                                     "true) and this agent's does not: set agent.task_gated_actor=true (a gated "
                                     "actor can start from a plain one, not the reverse)") from exc
                raise ValueError(f"warm start from {src}: its {key} weights do not fit this agent's config "
                                 f"(same agent.model / agent.sac sizes needed): {str(exc).splitlines()[0]}") from exc
        self.env_steps = int(state["counters"]["env_steps"])  # the data was paid for: keep counting from there
        loaded = " and the " + " and ".join("actor-critic" if k == "sac" else k for k, _ in parts) if parts else ""
        print(f"warm start: {self.buffers.num_trials} trials{loaded} from {src}", flush=True)

    def _record_resumed_config(self) -> None:
        """A resume with other options keeps the run's first config.yaml (what it started as) and writes the
        options now in effect to config.resume<iteration>.yaml, so the run's record says what trained when."""
        first_path = self.run_dir / "config.yaml"
        text = yaml.safe_dump(self.cfg.to_dict(), sort_keys=False)
        now = yaml.safe_load(text)  # as read back (tuples become lists), to compare like with like
        try:  # a record only: a missing or damaged first config must not stop the resume
            first = yaml.safe_load(first_path.read_text())
        except (OSError, yaml.YAMLError):
            first = None
        if first == now:
            return
        if isinstance(first, dict):
            was, is_now = dotted_items(first), dotted_items(now)
            changed = ", ".join(sorted(k for k in was.keys() | is_now.keys() if was.get(k) != is_now.get(k)))
        else:
            changed = f"{first_path.name} missing or unreadable"
        path = self.run_dir / f"config.resume{self.iteration}.yaml"
        atomic_write_text(text, path)
        print(f"resumed with other options ({changed}): written to {path.name}", flush=True)

    # --- the loop ---------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> dict:
        from tqdm import tqdm

        cfg = self.cfg
        ckpt = self.run_dir / CHECKPOINT
        if not resume and ckpt.is_file():  # a fresh run would overwrite a recorded one, checkpoint and replay
            raise ValueError(f"{ckpt} exists: pass --resume to continue that run, or choose another --out")
        if resume and not ckpt.is_file():  # a mistyped --out would otherwise start hours of training afresh
            raise FileNotFoundError(f"{ckpt} not found: nothing to resume (drop --resume to start a fresh run)")
        if resume:
            self.restore(ckpt)
            self.log.truncate(self.iteration)
            self.eval_log.truncate(self.iteration)
            print(f"resumed from {ckpt} at iteration {self.iteration}, {self.env_steps} env steps", flush=True)
            self._record_resumed_config()
        else:
            atomic_write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), self.run_dir / "config.yaml")
        _sigterm_as_interrupt()
        t0 = time.monotonic()
        last_eval: dict = {}
        try:
            if not self.pretrained:
                if cfg.warm_start:
                    self.warm_start()
                else:
                    for task in tqdm(self.train_tasks, desc="random trials", leave=False):
                        for _ in range(cfg.init_trials_per_task):
                            self.collect(task, "random")
                if cfg.search_trials_per_task:
                    self.collect_search()
                for i in tqdm(range(cfg.pretrain_steps), desc="model pre-training", leave=False):
                    stats = self.train_steps(1, actor_critic=False)
                    if i % 50 == 0:
                        self.pretrain_log.write({"iteration": 0, "env_steps": self.env_steps,
                                                 "grad_steps": self.grad_steps, **stats})
                self.pretrained = True
                self.save()
            teacher = self._teacher()
            bar = tqdm(total=cfg.iterations, initial=self.iteration, desc="meld", dynamic_ncols=True)
            while self.iteration < cfg.iterations and self.env_steps < cfg.max_env_steps:
                if cfg.time_budget_min and time.monotonic() - t0 > 60 * cfg.time_budget_min:
                    print(f"time budget of {cfg.time_budget_min} min reached", flush=True)
                    break
                minutes_left = cfg.time_budget_min - (time.monotonic() - t0) / 60 if cfg.time_budget_min else math.inf
                weight = cfg.teacher_bc_weight_at(self.env_steps, minutes_left)
                if weight != self.agent.teacher_bc_weight:  # a person reading the log sees when and why
                    left = f", {minutes_left:.0f} min of the time budget left" if cfg.time_budget_min else ""
                    print(f"teacher's cloning weight {weight:g} from iteration {self.iteration + 1} ({self.env_steps} "
                          f"env steps{left})", flush=True)
                self.agent.teacher_bc_weight = weight
                succ, seated, acted, led, handed, classes = [], [], [], [], [], []
                for _ in range(cfg.trials_per_iter):
                    task = self.train_tasks[self.rng.integers(len(self.train_tasks))]
                    draw = self.rng.random() if cfg.teacher_act_share or cfg.teacher_leads_share else 1.0
                    acts = draw < cfg.teacher_act_share
                    leads = not acts and draw < cfg.teacher_act_share + cfg.teacher_leads_share
                    hands = not acts and bool(cfg.true_port_share) and self.rng.random() < cfg.true_port_share
                    if hands and cfg.true_port_focus:
                        task = self._least_reached_port_task()
                    result = self.collect(task, "scripted" if acts else "sample", teacher, controller_episodes=int(leads),
                                          labelled_episodes=cfg.teacher_labelled_episodes, hand_true_port=hands)
                    handed.append(hands)
                    classes.append(self.task_labels.get(task.task_id, -1))
                    if hands:
                        history = self.handed_history.setdefault(classes[-1], [])
                        history.append(bool(result.episode_success[-1]))
                        del history[:-20]  # the draw reads the last 20
                    succ.append(result.episode_success)
                    acted.append(acts)
                    led.append(leads)
                    seated.append(len(result.episode_ports_seated[0]) if result.episode_ports_seated else 0)
                stats = self.train_steps(cfg.train_steps_per_iter)
                self.iteration += 1
                row = {"iteration": self.iteration, "env_steps": self.env_steps,
                       "grad_steps": self.grad_steps, "wall_s": round(time.monotonic() - t0, 1),
                       "train_success_ep1": float(np.mean([s[0] for s in succ])),
                       "train_success_last": float(np.mean([s[-1] for s in succ])),
                       "train_ports_seated_ep1": float(np.mean(seated)),
                       "train_teacher_acted": float(np.mean(acted)), "train_teacher_led": float(np.mean(led)),
                       "train_port_handed": float(np.mean(handed)),
                       **(success_by_class(classes, [s[-1] for s in succ], cfg.agent.model.task_classes)
                          if self.task_labels else {}),
                       **stats}
                self.log.write(row)
                bar.update(1)
                bar.set_postfix(steps=self.env_steps, loss=f"{stats.get('model_loss', 0):.0f}",
                                q=f"{stats.get('q_mean', 0):.2f}")
                if cfg.eval_every and self.iteration % cfg.eval_every == 0:
                    last_eval = self._eval_and_log()
                if self.iteration % cfg.checkpoint_every == 0:
                    self.save()
            bar.close()
        except KeyboardInterrupt:
            print("interrupted: saving checkpoint", flush=True)
            self.save()
            raise
        self.save()
        if cfg.eval_every and (not last_eval or last_eval.get("iteration") != self.iteration):
            last_eval = self._eval_and_log()
        from belief.meld.evaluate import plot_run

        plot_run(self.run_dir)
        return last_eval

    def _eval_and_log(self) -> dict:
        res = self.evaluate()
        row = {"iteration": self.iteration, "env_steps": self.env_steps, "grad_steps": self.grad_steps,
               **{f"success_ep{i + 1}": s for i, s in enumerate(res["success_per_episode"])},
               **{f"return_ep{i + 1}": r for i, r in enumerate(res["return_per_episode"])},
               **{f"final_reward_ep{i + 1}": r for i, r in enumerate(res["final_reward_per_episode"])},
               **{f"correct_port_ep{i + 1}": c for i, c in enumerate(res.get("correct_port_per_episode", []))}}
        self.eval_log.write(row)
        self._keep_if_best(row, res)
        print(f"eval @{self.iteration} ({self.env_steps} env steps): success per episode "
              f"{[round(s, 2) for s in res['success_per_episode']]}, final shaped reward per episode "
              f"{[round(r, 3) for r in res['final_reward_per_episode']]}", flush=True)
        return row

    def _keep_if_best(self, row: dict, res: dict) -> None:
        """Save the weights as best.pt when the last episode's held-out result beats every earlier one.

        Score, compared in order: success in the trial's last episode, then its final shaped reward (how
        close to the correct port's seat the plug ended). Whether it ended over the correct port is not
        part of it: on a few evaluation trials that count is noise, and the shaped reward already says it."""
        last = self.cfg.episodes - 1
        score = [float(res["success_per_episode"][last]), float(res["final_reward_per_episode"][last])]
        if self.best_score is not None and len(self.best_score) == len(score) and score <= self.best_score:
            return
        self.best_score = score
        atomic_save({"algo": "meld", "config": self.cfg.to_dict(), "env_meta": self.meta,
                     "agent": {"model": self.agent.model.state_dict(), "sac": self.agent.sac.state_dict()},
                     "counters": {"iteration": self.iteration, "env_steps": self.env_steps,
                                  "grad_steps": self.grad_steps}, "eval": row}, self.run_dir / BEST)


def _sigterm_as_interrupt() -> None:
    """SIGTERM (kill, a scheduler's stop) checkpoints like Ctrl-C; background jobs ignore SIGINT."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        def handler(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, handler)


def train(cfg: TrainConfig, run_dir, resume: bool = False, env=None, task_set=None) -> dict:
    return Trainer(cfg, run_dir, env, task_set).run(resume)


def parse_set_options(items: list[str]) -> dict:
    """{KEY: value} from `--set KEY=VALUE` strings, each value read as YAML (later ones win)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = yaml.safe_load(value)
    return overrides


def train_command(args) -> int:
    """`meldbot train --algo meld --env widowx_cable [--config FILE] [--out DIR] [--resume] [--device cuda]`."""
    config = getattr(args, "config", None) or "config/train_meld.yaml"
    overrides = parse_set_options(getattr(args, "set", None) or [])
    explicit = {key: getattr(args, key, None) for key in ("env", "device", "seed", "iterations")}
    cfg = TrainConfig.from_yaml(config, **{**explicit, **overrides})  # --set KEY=VALUE wins
    out = getattr(args, "out", None) or getattr(args, "run_dir", None) or f"runs/meld_{cfg.env}_s{cfg.seed}"
    result = train(cfg, out, resume=bool(getattr(args, "resume", False)))
    print(f"MELD run in {out}: last evaluation {result}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="config/train_meld.yaml", help="YAML TrainConfig")
    p.add_argument("--env", default=None, help="environment short name (overrides the config)")
    p.add_argument("--out", "--run-dir", dest="out", default=None, help="output folder (default runs/meld_<env>_s<seed>)")
    p.add_argument("--device", default=None, help="cpu or cuda")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key (YAML value); dotted keys reach sections, e.g. --set time_budget_min=60 "
                        "--set agent.model.predictive_reward_weight=8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m belief.meld.train", description=__doc__.splitlines()[0])
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return train_command(args)
    except (ValueError, FileNotFoundError) as exc:  # bad options or run folder: the message, not a traceback
        print(f"python -m belief.meld.train: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
