"""Meta-training loop for PEARL / PERIL / PERIL-A: collection rounds, gradient steps, logs, evaluation,
checkpoints and bit-for-bit resume.

Per iteration: for `tasks_per_round` training tasks, clear the task's encoder buffer, then run
`enc_trajs` posterior-sampling trajectories (context starts empty for PEARL, from the demonstrations for
PERIL; each one joins the RL and encoder buffers) and `rl_trajs` more with the final posterior (RL buffer
only, as PEARL's extra RL steps); then `grad_steps` meta-batch gradient steps. Every env episode is reset
with a seed drawn from the run's generator, so the whole run is a function of the config's seed.

Outputs in OUT: checkpoint.pt (every `checkpoint_every` iterations, atomic), progress.csv, eval.csv,
tb/ (TensorBoard), config.yaml, and at the end eval_table.md/.csv and curves.png.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from belief import checkpoint as ckpt_io
from belief.buffers import DemoBuffer, MultiTaskReplay
from belief.pearl import PEARLAgent, PEARLConfig, TrainData, adapt, rollout
from belief.peril import PERILAgent, PERILConfig
from belief.registry import make_env, make_task_set

CKPT_FORMAT = "meldbot-belief-ckpt/1"
AGENTS = {"pearl": (PEARLAgent, PEARLConfig, {}), "peril": (PERILAgent, PERILConfig, {}),
          "peril-a": (PERILAgent, PERILConfig, {"aux_weight": 4.0})}


@dataclass
class TrainConfig:
    algo: str = "peril"
    env: str = "reach2d"
    seed: int = 0
    iterations: int = 100
    grad_steps: int = 50  # per iteration
    tasks_per_round: int = 5
    enc_trajs: int = 2  # per task and round, into RL + encoder buffers
    rl_trajs: int = 1  # per task and round, RL buffer only, z from the posterior
    initial_trajs: int = 2  # per training task before training
    n_train_tasks: int | None = None  # None: the family's own split (PERIL: 40/10)
    n_test_tasks: int | None = None
    eval_every: int = 10
    adapt_trajs: int = 3  # adaptation trajectories per held-out task
    checkpoint_every: int = 5
    buffer_capacity: int = 30000
    demo_noise: float = 0.1  # std of Gaussian noise on the expert's actions when recording demos
    torch_threads: int = 1  # 1 keeps CPU runs deterministic (bit-for-bit resume)
    env_kwargs: dict = field(default_factory=dict)
    agent: dict = field(default_factory=dict)  # PEARLConfig / PERILConfig fields, sac: SACConfig fields

    def __post_init__(self):
        if self.algo not in AGENTS:
            raise ValueError(f"algo must be one of {sorted(AGENTS)}, got {self.algo!r}")
        for name in ("iterations", "grad_steps", "tasks_per_round", "enc_trajs", "eval_every",
                     "adapt_trajs", "checkpoint_every", "buffer_capacity", "torch_threads"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {getattr(self, name)}")

    def agent_config(self):
        _, cfg_cls, defaults = AGENTS[self.algo]
        known = {f.name for f in dataclasses.fields(PERILConfig)}  # one config file serves every algorithm
        unknown = set(self.agent) - known
        if unknown:
            raise ValueError(f"unknown agent option(s): {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
        names = {f.name for f in dataclasses.fields(cfg_cls)}
        return cfg_cls(**{k: v for k, v in {**defaults, **self.agent}.items() if k in names})


def load_config(path: str | Path | None, **overrides) -> TrainConfig:
    """TrainConfig from a YAML file (unknown keys are an error) with CLI overrides on top."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a training config must be a YAML mapping")
    data.update({k: v for k, v in overrides.items() if v is not None})
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{path or 'config'}: unknown key(s) {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(names))})")
    return TrainConfig(**data)


def build_agent(algo: str, obs_dim: int, action_dim: int, descriptor_dim: int, agent_cfg) -> PEARLAgent:
    agent_cls, _, _ = AGENTS[algo]
    agent = agent_cls(obs_dim, action_dim, agent_cfg, descriptor_dim=descriptor_dim)
    agent.algo = algo
    return agent


def record_demos(env, task, n: int, noise: float, seed: int, max_tries: int = 5) -> DemoBuffer:
    """n successful demonstrations from the env's privileged expert, with Gaussian action noise."""
    rng = np.random.default_rng(seed)
    buf = DemoBuffer(max_paths=max(n, 1))
    expert = env.unwrapped.expert_action
    for attempt in range(n * max_tries):
        def policy(_obs):
            a = np.asarray(expert(), dtype=np.float32)
            return np.clip(a + noise * rng.standard_normal(a.shape), -1, 1).astype(np.float32)

        path = rollout(env, task, policy, seed=int(rng.integers(2**31)))
        if path["success"]:
            buf.add(path)
        if len(buf) >= n:
            return buf
        if attempt >= n * max_tries - 1:
            break
    raise RuntimeError(f"the expert succeeded in only {len(buf)} of {n * max_tries} tries on task "
                       f"{task.task_id}: cannot record {n} demonstrations")


def test_demos(env, tasks, n: int, noise: float, seed: int) -> list[DemoBuffer]:
    """Demonstrations for held-out tasks, seeded independently of training (same for every checkpoint)."""
    return [record_demos(env, t, n, noise, seed=10_000 + 97 * seed + i) for i, t in enumerate(tasks)]


class Trainer:
    def __init__(self, cfg: TrainConfig, out: str | Path):
        self.cfg = cfg
        self.out = Path(out)
        torch.set_num_threads(cfg.torch_threads)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.env = make_env(cfg.env, seed=cfg.seed, **cfg.env_kwargs)
        sizes = {k: v for k, v in (("n_train", cfg.n_train_tasks), ("n_test", cfg.n_test_tasks)) if v}
        self.tasks = make_task_set(cfg.env, seed=cfg.seed, **sizes)
        obs_dim = int(np.prod(self.env.observation_space.shape))
        action_dim = int(np.prod(self.env.action_space.shape))
        self.descriptors = np.stack([t.descriptor for t in self.tasks.train]).astype(np.float32)
        self.agent_cfg = cfg.agent_config()
        self.agent = build_agent(cfg.algo, obs_dim, action_dim, self.descriptors.shape[1], self.agent_cfg)
        n_train = len(self.tasks.train)
        self.replay = MultiTaskReplay(n_train, obs_dim, action_dim, cfg.buffer_capacity)
        self.demos = [DemoBuffer(getattr(self.agent_cfg, "demo_buffer_size", 1)) for _ in range(n_train)]
        self.data = TrainData(self.replay, self.demos, self.descriptors)
        self.iteration = 0
        self.env_steps = 0
        self.eval_history: list[dict] = []
        self._test_demos = None

    # --- data collection -----------------------------------------------------------------------
    def _seeds(self, n: int) -> np.ndarray:
        return self.rng.integers(0, 2**31, size=n)

    def _collect(self, task_idx: int, n_enc: int, n_rl: int) -> None:
        task = self.tasks.train[task_idx]
        start = self.agent.initial_context(self.demos[task_idx] if self.agent.uses_demos else None)
        context = start
        for path, ctx in adapt(self.env, self.agent, task, n_enc, start, self._seeds(n_enc), deterministic=False):
            self._store(task_idx, path, to_encoder=True)
            context = ctx
        if n_rl:
            mu, var = self.agent.posterior(context)
            z = self.agent.encoder.sample(mu, var)
            for seed in self._seeds(n_rl):
                path = rollout(self.env, task, lambda o, z=z: self.agent.act(o, z, False), seed=int(seed))
                self._store(task_idx, path, to_encoder=False)

    def _store(self, task_idx: int, path: dict, to_encoder: bool) -> None:
        self.replay.add_path(task_idx, path, to_encoder=to_encoder)
        self.env_steps += len(path["obs"])
        if self.agent.uses_demos:
            self.demos[task_idx].offer(path)

    def initialise(self) -> None:
        cfg = self.cfg
        if self.agent.uses_demos:
            n = self.agent_cfg.n_demos
            for i, task in enumerate(self.tasks.train):
                self.demos[i] = record_demos(self.env, task, n, cfg.demo_noise, seed=int(self._seeds(1)[0]))
                self.demos[i].max_paths = self.agent_cfg.demo_buffer_size
        for i in range(len(self.tasks.train)):
            self._collect(i, max(cfg.initial_trajs, 1), 0)
        self.agent.on_collection_round()

    # --- one iteration -------------------------------------------------------------------------
    def iterate(self) -> dict:
        cfg = self.cfg
        n_train = len(self.tasks.train)
        for t in self.rng.choice(n_train, size=min(cfg.tasks_per_round, n_train), replace=False):
            self.replay.enc[int(t)].clear()  # encoder buffers hold only the latest round
            self._collect(int(t), cfg.enc_trajs, cfg.rl_trajs)
        self.agent.on_collection_round()
        sums: dict[str, float] = {}
        mb = self.agent_cfg.meta_batch
        for _ in range(cfg.grad_steps):
            tasks = self.rng.choice(n_train, size=mb, replace=n_train < mb)
            for k, v in self.agent.train_step(self.data, tasks, self.rng).items():
                sums[k] = sums.get(k, 0.0) + v
        self.iteration += 1
        return {k: v / cfg.grad_steps for k, v in sums.items()}

    def evaluate(self, n_tasks: int | None = None) -> dict:
        """Meta-test on held-out tasks without touching the training RNG streams."""
        from belief.evaluation import meta_test, summarize

        tasks = self.tasks.test[:n_tasks] if n_tasks else self.tasks.test
        if self.agent.uses_demos and self._test_demos is None:
            self._test_demos = test_demos(self.env, self.tasks.test, self.agent_cfg.n_demos,
                                          self.cfg.demo_noise, self.cfg.seed)
        results = meta_test(self.agent, self.env, tasks, self.cfg.adapt_trajs, seed=self.cfg.seed,
                            demos=self._test_demos)
        return summarize(results, self.cfg.adapt_trajs)

    # --- checkpoints ---------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "format": CKPT_FORMAT, "algo": self.cfg.algo, "config": asdict(self.cfg),
            "iteration": self.iteration, "env_steps": self.env_steps,
            "dims": {"obs": self.agent.obs_dim, "action": self.agent.action_dim,
                     "descriptor": self.agent.descriptor_dim},
            "agent": self.agent.state_dict(), "optim": self.agent.optimizer_state(),
            "replay": self.replay.state_dict(), "demos": [d.state_dict() for d in self.demos],
            "rng": {"numpy_gen": self.rng.bit_generator.state, "torch": torch.get_rng_state(),
                    "python": random.getstate(), "numpy_global": np.random.get_state()},
            "eval_history": self.eval_history,
        }

    def load_state(self, state: dict) -> None:
        if state.get("format") != CKPT_FORMAT:
            raise ValueError(f"not a PEARL/PERIL checkpoint (format {state.get('format')!r})")
        self.agent.load_state_dict(state["agent"])
        self.agent.load_optimizer_state(state["optim"])
        self.replay.load_state_dict(state["replay"])
        for d, s in zip(self.demos, state["demos"], strict=True):
            d.load_state_dict(s)
        self.iteration, self.env_steps = int(state["iteration"]), int(state["env_steps"])
        self.rng.bit_generator.state = state["rng"]["numpy_gen"]
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy_global"])
        self.eval_history = list(state.get("eval_history", []))

    def save(self) -> Path:
        return ckpt_io.atomic_save(self.state(), self.out / "checkpoint.pt")


def agent_from_checkpoint(state: dict) -> tuple[PEARLAgent, TrainConfig]:
    """Rebuild the trained agent (no env, no buffers) from a checkpoint dict."""
    if state.get("format") != CKPT_FORMAT:
        raise ValueError(f"not a PEARL/PERIL checkpoint (format {state.get('format')!r})")
    cfg = TrainConfig(**state["config"])
    dims = state["dims"]
    agent = build_agent(cfg.algo, dims["obs"], dims["action"], dims["descriptor"], cfg.agent_config())
    agent.load_state_dict(state["agent"])
    return agent.eval(), cfg


def _truncate_csv(path: Path, max_iteration: int) -> None:
    """On resume, drop rows logged after the checkpoint (they will be produced again)."""
    if not path.is_file():
        return
    with path.open() as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= max_iteration]
    ckpt_io.atomic_write_text("".join(",".join(r) + "\n" for r in kept), path)


class _CsvLog:
    def __init__(self, path: Path):
        self.path = path
        self.columns: list[str] | None = None
        if path.is_file() and path.stat().st_size:
            with path.open() as fh:
                self.columns = next(csv.reader(fh))

    def write(self, row: dict) -> None:
        if self.columns is None:
            self.columns = list(row)
            self.path.write_text(",".join(self.columns) + "\n")
        with self.path.open("a") as fh:
            fh.write(",".join(_fmt(row.get(c, "")) for c in self.columns) + "\n")


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def train(cfg: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True,
          final_eval: bool = True) -> Trainer:
    """Run (or continue) training to cfg.iterations; returns the trainer."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    if resume:
        state = ckpt_io.load(ckpt_path)
        cfg = TrainConfig(**state["config"])
        trainer = Trainer(cfg, out)
        trainer.load_state(state)
        for name in ("progress.csv", "eval.csv"):
            _truncate_csv(out / name, trainer.iteration)
    else:
        if ckpt_path.exists():
            raise ValueError(f"{ckpt_path} exists: pass --resume to continue it, or choose another --out")
        trainer = Trainer(cfg, out)
        ckpt_io.atomic_write_text(yaml.safe_dump(asdict(cfg), sort_keys=False), out / "config.yaml")
        trainer.initialise()
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tb"), purge_step=trainer.iteration or None)
    progress_log, eval_log = _CsvLog(out / "progress.csv"), _CsvLog(out / "eval.csv")
    start = time.monotonic()
    bar = tqdm(total=cfg.iterations, initial=trainer.iteration, disable=not progress, desc=f"{cfg.algo} {cfg.env}")
    try:
        while trainer.iteration < cfg.iterations:
            metrics = trainer.iterate()
            it = trainer.iteration
            row = {"iteration": it, "env_steps": trainer.env_steps, "wall_s": round(time.monotonic() - start, 1),
                   **metrics}
            progress_log.write(row)
            for k, v in metrics.items():
                writer.add_scalar(f"train/{k}", v, it)
            if it % cfg.eval_every == 0 or it == cfg.iterations:
                summary = trainer.evaluate()
                erow = {"iteration": it, "env_steps": trainer.env_steps, **summary["flat"]}
                trainer.eval_history.append(erow)
                eval_log.write(erow)
                for k, v in summary["flat"].items():
                    writer.add_scalar(f"eval/{k}", v, it)
                bar.set_postfix(succ=f"{summary['flat'].get('success_within_3', math.nan):.2f}")
            if it % cfg.checkpoint_every == 0 or it == cfg.iterations:
                trainer.save()
            writer.flush()
            bar.update(1)
    finally:
        bar.close()
        writer.close()
    if final_eval:
        from belief.evaluation import write_reports

        write_reports(trainer, out)
    return trainer


def train_command(args) -> int:
    """`meldbot train` for pearl / peril / peril-a."""
    if getattr(args, "device", None) not in (None, "cpu"):
        raise ValueError(f"{args.algo} trains on the CPU only (its networks are small); got --device {args.device}")
    if getattr(args, "set", None):
        raise ValueError(f"--set is for MELD runs; {args.algo} takes its settings from --config FILE")
    out = Path(args.out) if args.out else Path("runs") / f"{args.algo}_{args.env}_s{args.seed or 0}"
    if args.resume:
        trainer = train(TrainConfig(), out, resume=True, progress=not args.quiet)
    else:
        cfg = load_config(args.config, algo=args.algo, env=args.env, seed=args.seed,
                          iterations=getattr(args, "iterations", None))
        trainer = train(cfg, out, progress=not args.quiet)
    print(f"trained {trainer.cfg.algo} on {trainer.cfg.env} for {trainer.iteration} iterations "
          f"({trainer.env_steps} env steps); outputs in {out}")
    return 0
