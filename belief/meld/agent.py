"""MELD agent: the latent state model plus SAC on its belief (the posterior's parameters).

One gradient step samples a batch of whole trials, filters them once through the model, minimises the
negative ELBO for the model, and trains actor and critic on the *detached* per-step posterior parameters:
no gradient from the actor-critic ever reaches the model (MELD's actor/critic_input_stop_gradient).
SAC itself is the shared `belief.sac.SAC`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from belief.checks import is_whole_number
from belief.meld.model import LatentModel, ModelConfig
from belief.networks import GatedExperts
from belief.sac import SAC, SACConfig

REWARD_KINDS = ("dense", "sparse")


@dataclass
class AgentConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    sac: SACConfig = field(default_factory=SACConfig)
    model_lr: float = 1e-4  # SLAC/MELD model learning rate
    grad_clip: float = 100.0
    reward_input: str = "dense"  # what the model sees: dense (meta-training) or sparse (MELD's 2nd agent)
    reward_target: str = "dense"  # what the reward decoder reconstructs (always shaped in MELD)
    critic_reward: str = "dense"  # what the critic is trained on (shaped reward during meta-training)
    critic_reward_scale: float = 1.0
    # SAC updates on each batch's detached beliefs per model step: one SAC update costs ~1/35 of an ELBO
    # step on a CPU, so several per model step buy the actor-critic far more updates for little time
    ac_updates_per_step: int = 1
    # asymmetric actor-critic: the critic also sees the task descriptor (privileged during meta-training,
    # like the shaped reward); the actor, the only part exported, still sees the belief alone
    privileged_critic: bool = False
    critic_task_dim: int = 0  # task descriptor size; set by the trainer from the task set
    # 0 = MELD: SAC on every transition of the model step's few trials (strongly correlated, few tasks).
    # > 0: SAC on minibatches of this many transitions drawn i.i.d. from the beliefs of all stored trials,
    # filtered without gradient and cached, refiltered every `ac_cache_refresh` model steps (the oracle
    # learned to follow the port from i.i.d. batches; so does a refit on them, docs/meld.md)
    ac_batch: int = 0
    ac_cache_refresh: int = 160
    # with ac_batch > 0: the cache holds only each task's `ac_recent_trials` newest trials (0 = all), so the
    # i.i.d. updates see data of the current actor, and `ac_mix` keeps MELD's per-trial SAC updates as well
    # (the refit that worked started from an actor trained the MELD way; i.i.d. alone from scratch did not)
    ac_recent_trials: int = 0
    ac_mix: bool = False
    # the actor as one head per task class mixed by the task head's probabilities (the belief's last
    # columns, task_probs_in_belief): sum_k p_k head_k(belief). A plain MLP actor learnt to ignore those
    # probabilities (its action moved 1-3 % of its spread when they named another port, docs/meld.md);
    # this one acts as the expert of the port the belief names, and blends them while it is unsure
    task_gated_actor: bool = False
    # behaviour cloning of scripted search trials (TrainConfig.search_trials_per_task): each i.i.d. SAC
    # update also pulls the actor's mean action on those trials' beliefs towards the search's actions,
    # weighted by this against SAC's actor loss (TD3+BC-style; |Q| ~ 10 on the cable twin). 0 = off:
    # SAC alone never learnt to leave a port that seated without a click (docs/meld.md)
    search_bc_weight: float = 0.0
    # DAgger (TrainConfig.teacher): every SAC update also pulls the actor's mean action towards the
    # teacher's label on the transitions that have one (the agent's own trials, labelled at the states the
    # agent visited), weighted like search_bc_weight. Cloning the search's own trials fit them (MSE 0.005)
    # yet the agent still stayed at its first port: its own states differ from the search's. 0 = off
    teacher_bc_weight: float = 0.0
    # the actor-critic trained on the trial's true port: SAC updates see the one-hot of `task_label` in
    # place of the task head's port probabilities (privileged, like the shaped reward it is paid in), so
    # the actor learns to take the port it is handed to its seat; acting, it is handed the head's most
    # probable port (needs model.actor_commits_to_port). Trained on the head's argmax instead, the actor
    # kept one habitual port whatever the argmax said: a wrong argmax is not paid (docs/meld.md). Off = MELD
    ac_true_port: bool = False

    def __post_init__(self):
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        if isinstance(self.sac, dict):
            self.sac = SACConfig(**self.sac)
        for name in ("reward_input", "reward_target", "critic_reward"):
            if getattr(self, name) not in REWARD_KINDS:
                raise ValueError(f"AgentConfig.{name} must be one of {REWARD_KINDS}, got {getattr(self, name)!r}")
        if self.ac_updates_per_step < 1:
            raise ValueError(f"AgentConfig.ac_updates_per_step must be >= 1, got {self.ac_updates_per_step}")
        if self.ac_batch < 0 or self.ac_cache_refresh < 1:
            raise ValueError(f"AgentConfig.ac_batch must be >= 0 and ac_cache_refresh >= 1, got {self.ac_batch} "
                             f"and {self.ac_cache_refresh}")
        if not is_whole_number(self.ac_recent_trials) or self.ac_recent_trials < 0:
            raise ValueError(f"AgentConfig.ac_recent_trials must be a whole number >= 0 (0 = all stored), got "
                             f"{self.ac_recent_trials!r}")
        if self.ac_batch == 0 and (self.ac_recent_trials or self.ac_mix is True):
            raise ValueError("AgentConfig.ac_recent_trials and ac_mix shape the i.i.d. actor-critic updates: they need "
                             "ac_batch > 0 (with ac_batch = 0 every SAC update is MELD's per-trial one already)")
        if self.task_gated_actor is True and not self.model.task_probs_in_belief:
            raise ValueError("AgentConfig.task_gated_actor mixes its heads by the task head's probabilities: it "
                             "needs model.task_probs_in_belief (and task_id_weight > 0)")
        for name in ("search_bc_weight", "teacher_bc_weight"):
            w = getattr(self, name)
            if isinstance(w, bool) or not isinstance(w, int | float) or not w >= 0:
                raise ValueError(f"AgentConfig.{name} must be a number >= 0 (0 = off), got {w!r}")
        if self.search_bc_weight and self.ac_batch == 0:
            raise ValueError("AgentConfig.search_bc_weight clones the search within the i.i.d. actor-critic updates: it "
                             "needs ac_batch > 0")
        for name in ("privileged_critic", "ac_mix", "task_gated_actor", "ac_true_port"):  # a YAML typo ("ture")
            if not isinstance(getattr(self, name), bool):  # must not switch one on
                raise ValueError(f"AgentConfig.{name} must be true or false, got {getattr(self, name)!r}")
        if self.model.actor_holds_episode_port and not self.ac_true_port:
            raise ValueError("model.actor_holds_episode_port holds the port the actor acts on over an episode, which "
                             "the filtered sequences it trains on do not: it needs ac_true_port (the actor trains on "
                             "the true port)")
        if self.ac_true_port and not self.model.actor_commits_to_port:
            raise ValueError("AgentConfig.ac_true_port trains the actor on a one-hot of the true port, so acting it "
                             "must be handed a one-hot too: it needs model.actor_commits_to_port")


def transition_indices(episodes: int, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(current frame, next frame, done) for every real action in a trial of `episodes` x `horizon`.

    The last action of a non-final episode bootstraps from the next episode's first frame (whose belief
    has filtered the last frame): the critic values the whole trial, so exploring in episode 1 pays off
    in episode 2. The trial's final action is terminal."""
    cur, nxt, done = [], [], []
    L = horizon + 1
    for e in range(episodes):
        for k in range(horizon):
            t = e * L + k
            cur.append(t)
            last = k == horizon - 1
            if last and e < episodes - 1:
                nxt.append((e + 1) * L)
                done.append(0.0)
            else:
                nxt.append(t + 1)
                done.append(1.0 if last else 0.0)
    return np.array(cur), np.array(nxt), np.array(done, np.float32)


def reward_mask(episodes: int, horizon: int) -> np.ndarray:
    """Frames that carry a real reward (all but each episode's first frame)."""
    mask = np.ones(episodes * (horizon + 1), np.float32)
    mask[:: horizon + 1] = 0.0
    return mask


def build_sac(cfg: AgentConfig) -> SAC:
    """The agent's SAC: actor on the belief (gated by the task probabilities with task_gated_actor),
    critic on the belief plus, with privileged_critic, the task descriptor."""
    critic_dim = cfg.model.belief_dim + (cfg.critic_task_dim if cfg.privileged_critic else 0)
    actor_net = (GatedExperts(cfg.model.belief_dim, cfg.sac.hidden, 2 * cfg.model.action_dim, cfg.model.task_classes,
                              out_scale=1e-3) if cfg.task_gated_actor else None)
    return SAC(cfg.model.belief_dim, cfg.model.action_dim, cfg.sac, critic_feature_dim=critic_dim, actor_net=actor_net)


def has_gated_actor(sac_state: dict[str, torch.Tensor]) -> bool:
    """Whether a SAC state dict's actor has a head per port (AgentConfig.task_gated_actor)."""
    return any(k.startswith("actor.net.heads.") for k in sac_state)


def gate_plain_actor(sac_state: dict[str, torch.Tensor], experts: int) -> dict[str, torch.Tensor]:
    """A SAC state dict whose actor is a plain MLP, rewritten for a task-gated actor (task_gated_actor)
    of the same sizes: the hidden layers as they are and every expert's head a copy of the plain last
    layer, so the gated actor starts acting exactly as the plain one (the gate sums to one) and each head
    then learns from its own port's transitions only. A state already gated is returned as it is."""
    if not has_gated_actor(sac_state) and "actor.net.0.weight" in sac_state:
        layers = sorted({int(k.split(".")[2]) for k in sac_state if k.startswith("actor.net.")})
        state = {}
        for key, value in sac_state.items():
            if key.startswith("actor.net."):
                index = int(key.split(".")[2])
                value = value.repeat(experts, *[1] * (value.dim() - 1)) if index == layers[-1] else value
                key = "actor.net.heads." + key[len("actor.net."):]
            state[key] = value
        return state
    return sac_state


class MeldAgent:
    def __init__(self, cfg: AgentConfig, episodes: int, horizon: int, device: str = "cpu"):
        self.cfg, self.episodes, self.horizon = cfg, episodes, horizon
        # the cloning weight in effect: the trainer changes it on TrainConfig.teacher_bc_schedule
        self.teacher_bc_weight = cfg.teacher_bc_weight
        self.device = torch.device(device)
        if cfg.privileged_critic and cfg.critic_task_dim < 1:
            raise ValueError("AgentConfig.privileged_critic needs critic_task_dim >= 1 (the task descriptor size, "
                             f"set by the trainer from the task set), got {cfg.critic_task_dim}")
        self.model = LatentModel(cfg.model).to(self.device)
        self.sac = build_sac(cfg).to(self.device)
        # SAC's optimisers were built before .to(); Adam state is lazily created so the params are the same
        self.model_optim = torch.optim.Adam(self.model.parameters(), lr=cfg.model_lr)
        cur, nxt, done = transition_indices(episodes, horizon)
        self._cur = torch.as_tensor(cur, device=self.device)
        self._nxt = torch.as_tensor(nxt, device=self.device)
        self._done = torch.as_tensor(done, device=self.device)
        self._mask = torch.as_tensor(reward_mask(episodes, horizon), device=self.device)

    # --- batches --------------------------------------------------------------------------------
    def to_tensors(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        # task ids (strings) name the trials; the numeric arrays go to the device
        return {k: torch.as_tensor(v, device=self.device) for k, v in batch.items()
                if np.asarray(v).dtype.kind not in "USO"}

    def _rewards(self, b: dict[str, torch.Tensor], kind: str) -> torch.Tensor:
        return b["reward_dense"] if kind == "dense" else b["reward_sparse"]

    # --- updates --------------------------------------------------------------------------------
    def model_step(self, b: dict[str, torch.Tensor]):
        """One ELBO step on a batch of trials; returns (stats, detached beliefs (B, T, belief_dim))."""
        cfg = self.cfg
        mask = self._mask.expand_as(b["reward_dense"])
        loss, terms, post = self.model.elbo(b["images"], b["actions"], self._rewards(b, cfg.reward_input),
                                            self._rewards(b, cfg.reward_target), mask, b.get("task_label"),
                                            b.get("task_label_mask"))
        self.model_optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.model_optim.step()
        stats = {"model_loss": loss.item(), **{k: v.item() for k, v in terms.items()}}
        with torch.no_grad():  # the actor-critic never trains the model (nor the task head, with task_probs_in_belief)
            beliefs = self.model.belief(post)
        return stats, beliefs

    def transitions(self, beliefs: torch.Tensor, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every real transition of a batch of trials, one row each (trial-major): obs / next_obs
        (beliefs), actions, rewards, dones; with `privileged_critic` also `task`, the trial's
        `task_features` (B, critic_task_dim) repeated per transition; with `ac_true_port` the beliefs'
        port probabilities are the one-hot of the trial's `task_label` (B,)."""
        B = beliefs.shape[0]
        if self.cfg.ac_true_port:
            beliefs = self.with_true_port(beliefs, b.get("task_label"))
        rewards = self._rewards(b, self.cfg.critic_reward) * self.cfg.critic_reward_scale
        out = {"obs": beliefs[:, self._cur].reshape(-1, beliefs.shape[-1]),
               "next_obs": beliefs[:, self._nxt].reshape(-1, beliefs.shape[-1]),
               "actions": b["actions"][:, self._cur].reshape(-1, b["actions"].shape[-1]),
               "rewards": rewards[:, self._cur + 1].reshape(-1, 1),  # the reward that arrived with the next frame
               "dones": self._done.expand(B, -1).reshape(-1, 1)}
        if "labels" in b:  # a teacher's actions (NaN where none), for teacher_bc_weight
            out["labels"] = b["labels"][:, self._cur].reshape(-1, b["labels"].shape[-1])
        if self.cfg.privileged_critic:
            task = b.get("task_features")
            if task is None or tuple(task.shape) != (B, self.cfg.critic_task_dim):
                raise ValueError(f"privileged_critic needs batch['task_features'] of shape ({B}, "
                                 f"{self.cfg.critic_task_dim}), got {None if task is None else tuple(task.shape)}")
            out["task"] = task.float().repeat_interleave(len(self._cur), dim=0)
        return out

    def with_true_port(self, beliefs: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """`beliefs` (B, T, belief_dim) with the port probabilities (the last task_classes columns) replaced
        by the one-hot of each trial's true port `labels` (B,) (AgentConfig.ac_true_port)."""
        k = self.model.task_classes
        if labels is None or tuple(labels.shape) != beliefs.shape[:1]:
            raise ValueError(f"ac_true_port needs batch['task_label'] of shape ({beliefs.shape[0]},), got "
                             f"{None if labels is None else tuple(labels.shape)}")
        onehot = F.one_hot(labels.long(), k).to(beliefs.dtype)[:, None].expand(-1, beliefs.shape[1], -1)
        return torch.cat([beliefs[..., :beliefs.shape[-1] - k], onehot], -1)

    def _clone_loss(self, beliefs: torch.Tensor, targets: torch.Tensor, weight: float) -> torch.Tensor:
        """weight x the squared error of the actor's mean action on `beliefs` (its `actor_input` view)."""
        mean = self.sac.actor.act_mean(self.model.actor_input(beliefs).detach())
        return weight * F.mse_loss(mean, targets)

    def search_bc_loss(self, demo: dict[str, torch.Tensor]) -> torch.Tensor:
        """search_bc_weight x the squared error of the actor's mean action on `demo`'s beliefs against
        the scripted search's actions (`transitions` layout)."""
        return self._clone_loss(demo["obs"], demo["actions"], self.cfg.search_bc_weight)

    def teacher_bc_loss(self, t: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """teacher_bc_weight x the squared error of the actor's mean action against the teacher's labels,
        on the transitions of `t` that have one (None when none has)."""
        labelled = torch.isfinite(t["labels"]).all(-1)
        if not bool(labelled.any()):
            return None
        return self._clone_loss(t["obs"][labelled], t["labels"][labelled], self.teacher_bc_weight)

    def sac_update(self, t: dict[str, torch.Tensor], demo: dict[str, torch.Tensor] | None = None) -> dict:
        """One SAC update on transitions laid out as `transitions` returns them (the task, if any, joins
        the critic's input only; the actor sees the model's `actor_input` view of the beliefs); with
        `demo` (scripted search transitions, same layout) the actor also clones them (`search_bc_loss`),
        and with teacher_bc_weight it clones the teacher's labels in `t` (`teacher_bc_loss`)."""
        view = self.model.actor_input
        clones = {"search_bc_loss": self.search_bc_loss(demo) if demo is not None and self.cfg.search_bc_weight else None,
                  "teacher_bc_loss": self.teacher_bc_loss(t) if self.teacher_bc_weight and "labels" in t else None}
        clones = {k: v for k, v in clones.items() if v is not None}
        bc = sum(clones.values()) if clones else None
        stats: dict = {}
        if "task" not in t and self.model.actor_sees_whole_belief:
            stats = self.sac.update(t["obs"], t["actions"], t["rewards"], t["next_obs"], t["dones"],
                                    actor_aux_loss=bc)
        else:
            obs, next_obs = t["obs"], t["next_obs"]
            if "task" in t:
                obs, next_obs = torch.cat([obs, t["task"]], -1), torch.cat([next_obs, t["task"]], -1)
            stats = self.sac.update(obs, t["actions"], t["rewards"], next_obs, t["dones"], actor_obs=view(t["obs"]),
                                    next_actor_obs=view(t["next_obs"]), actor_aux_loss=bc)
        stats.update({k: v.item() for k, v in clones.items()})
        return stats

    def actor_critic_step(self, beliefs: torch.Tensor, b: dict[str, torch.Tensor]) -> dict:
        """SAC on every real transition of the batch; `beliefs` must be detached (checked). With
        `privileged_critic` the batch's `task_features` (B, critic_task_dim) join the critic's input."""
        if beliefs.requires_grad:
            raise ValueError("actor-critic inputs must be detached from the latent model")
        return self.sac_update(self.transitions(beliefs, b))

    def train_step(self, batch: dict[str, np.ndarray], train_actor_critic: bool = True) -> dict:
        b = self.to_tensors(batch)
        stats, beliefs = self.model_step(b)
        if train_actor_critic:
            for _ in range(self.cfg.ac_updates_per_step):
                stats.update(self.actor_critic_step(beliefs, b))
        return stats

    # --- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "sac": self.sac.state_dict(),
                "model_optim": self.model_optim.state_dict(), "sac_optim": self.sac.optimizer_state()}

    def load_state_dict(self, state: dict, weights_only: bool = False) -> None:
        self.model.load_state_dict(state["model"])
        self.sac.load_state_dict(state["sac"])
        if not weights_only:
            self.model_optim.load_state_dict(state["model_optim"])
            self.sac.load_optimizer_state(state["sac_optim"])
