"""Meta-test evaluation of MELD on held-out tasks, and its plots.

* success (and dense return) per episode index of a trial: episode 1 vs episode 2 is the adaptation;
* the reconstructed reward's mean and variance over a trial (decoded from samples of the belief): the
  paper's picture of the belief collapsing once the right port has been found.

`python -m belief.meld.evaluate RUN_DIR/checkpoint.pt [--trials 3]` writes eval_table.json/.md and
belief_trial.png next to the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from belief.meld.trials import run_trial

if TYPE_CHECKING:
    import torch

SPLITS = ("test", "train", "fresh")
FRESH_TASKS = 40  # default number of fresh tasks (10 per port on the cable twin)


def evaluate_policy(env, policy, tasks, episodes: int, trials_per_task: int = 1, reward_input: str = "dense",
                    seed: int = 0, decode_reward: bool = False,
                    carry_belief: bool | float | Callable[[torch.Tensor], torch.Tensor] = True,
                    task_label: str = "port", handed_ports: dict[str, int] | None = None) -> dict:
    """Deterministic trials on `tasks`: success rate and mean dense return per episode index
    (carry_belief=False: the belief is reset at every episode, see `run_trial`); each trial's record
    names its task's `task_label` parameter (-1 where the task has none). handed_ports (task id -> class):
    the actor is handed its task's class in every episode (`run_trial(handed_port=)`)."""
    succ, rets, finals, traces, labels = [], [], [], [], []
    for i, task in enumerate(tasks):
        for j in range(trials_per_task):
            labels.append(int(task.params.get(task_label, -1)))
            res = run_trial(env, task, policy, episodes, "mean", reward_input,
                            seed=seed + 1000 * i + 10 * j, decode_reward=decode_reward, carry_belief=carry_belief,
                            handed_port=None if handed_ports is None else handed_ports[task.task_id])
            succ.append(res.episode_success)
            rets.append(res.episode_return)
            finals.append(res.episode_final_reward)
            traces.append(res)
    succ_arr, ret_arr = np.asarray(succ, float), np.asarray(rets, float)
    out = {"success_per_episode": succ_arr.mean(0).tolist(), "return_per_episode": ret_arr.mean(0).tolist(),
           "final_reward_per_episode": np.asarray(finals, float).mean(0).tolist()}
    # the cable twin also says whether an episode ended at the correct port (inserted or not): task
    # inference apart from the insertion skill
    if traces and all("at_correct_port" in inf for t in traces for inf in t.episode_final_info):
        out["correct_port_per_episode"] = np.asarray(
            [[inf["at_correct_port"] for inf in t.episode_final_info] for t in traces], float).mean(0).tolist()
        out["any_port_per_episode"] = np.asarray(
            [[inf["port_at_tip"] >= 0 for inf in t.episode_final_info] for t in traces], float).mean(0).tolist()
        # how many ports the plug seated in per episode: 1 for a policy that commits to one, more for a search
        out["ports_seated_per_episode"] = np.asarray(
            [[len(p) for p in t.episode_ports_seated] for t in traces], float).mean(0).tolist()
    # per trial, for conditional reads (does episode 2 go where episode 1 ended, or elsewhere?)
    out["per_trial"] = [{"task": t.trial.task_id, task_label: label, "success": [bool(s) for s in t.episode_success],
                         "port_at_tip": [int(inf.get("port_at_tip", -1)) for inf in t.episode_final_info],
                         "at_correct_port": [bool(inf.get("at_correct_port", False)) for inf in t.episode_final_info],
                         "ports_seated": t.episode_ports_seated,
                         "final_reward": [float(f) for f in t.episode_final_reward]}
                        for t, label in zip(traces, labels, strict=True)]
    return {**out, "n_trials": len(succ), "tasks": [t.task_id for t in tasks], "trials": traces}


def task_id_accuracy(model, trials, labels: list[int], horizon: int) -> dict[str, list[float]]:
    """How often the task-identification head names the task from the belief (mu2, or mu_c with a task
    latent) at the first and the last frame of each episode, over evaluated trials: does episode 2 start
    knowing the port?"""
    import torch

    from belief.meld.model import belief_columns

    read = belief_columns(model.z1_dim, model.z2_dim, model.task_latent_dim)["mu_c" if model.task_latent_dim else "mu2"]
    L = horizon + 1
    hits = []
    for res, label in zip(trials, labels, strict=True):
        x = torch.as_tensor(res.beliefs[:, read]).to(next(model.parameters()).device)
        with torch.no_grad():
            _, acc = model.task_id_terms(x.unsqueeze(0), torch.tensor([label], device=x.device))
        acc = acc[0].cpu().numpy()
        hits.append([[acc[e * L], acc[e * L + horizon]] for e in range(len(res.episode_success))])
    h = np.asarray(hits, float).mean(0)  # (episodes, 2)
    return {"episode_start": h[:, 0].tolist(), "episode_end": h[:, 1].tolist()}


def head_ports(trials, horizon: int, classes: int, values: list) -> list[list]:
    """Per trial, the port the task head names (its probabilities' argmax, the belief's last `classes`
    columns, task_probs_in_belief) at each episode's first frame, as the label's value (`values[class]`):
    what a committed actor is handed to go to."""
    L = horizon + 1
    return [[values[int(np.argmax(res.beliefs[e * L, -classes:]))] for e in range(len(res.episode_success))]
            for res in trials]


def head_port_changes(trials, horizon: int, classes: int) -> list[list[int]]:
    """Per trial, how often the head's most probable port changes within each episode (frame to frame):
    each change re-targets a committed actor mid-episode."""
    L = horizon + 1
    return [[int(np.count_nonzero(np.diff(np.argmax(res.beliefs[e * L:(e + 1) * L, -classes:], -1))))
             for e in range(len(res.episode_success))] for res in trials]


def follows_head(per_trial: list[dict]) -> list[float]:
    """Per episode, the share of trials that end at the port the head named at the episode's first frame."""
    return np.asarray([[end == named for end, named in zip(t["port_at_tip"], t["head_port"], strict=True)]
                       for t in per_trial], float).mean(0).tolist()


def _save_figure(fig, path: Path) -> Path:
    """tight_layout, then save atomically (temp file + rename) and close."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path


def plot_belief_trial(result, horizon: int, path: Path, title: str = "") -> Path:
    """Reconstructed reward mean +- std and variance over one trial, with the true rewards."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(result.reward_mean))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    std = np.sqrt(result.reward_var)
    ax1.plot(t, result.trial.reward_dense, "k.", ms=3, label="shaped reward (true)")
    ax1.plot(t, result.trial.reward_sparse, "g.", ms=3, label="sparse reward (true)")
    ax1.plot(t, result.reward_mean, "b-", label="reconstructed reward mean")
    ax1.fill_between(t, result.reward_mean - std, result.reward_mean + std, color="b", alpha=0.2)
    ax2.semilogy(t, result.reward_var, "r-")
    ax2.set_ylabel("reconstructed reward variance")
    ax2.set_xlabel("frame in trial")
    for ax in (ax1, ax2):
        for e in range(1, len(result.episode_success)):
            ax.axvline(e * (horizon + 1) - 0.5, color="gray", ls="--")
    ax1.legend(fontsize=7, loc="lower right")
    ax1.set_title(title or f"belief over a trial; success per episode {result.episode_success}")
    return _save_figure(fig, path)


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    import csv

    if not path.is_file():
        return {}
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for key in rows[0] if rows else []:
        try:
            out[key] = np.array([float(r[key]) if r[key] not in ("", None) else np.nan for r in rows])
        except ValueError:
            continue
    return out


def plot_run(run_dir: str | Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    tr, ev = _read_csv(run_dir / "train.csv"), _read_csv(run_dir / "eval.csv")
    if not tr and not ev:
        return None
    per_class = sorted(k for k in tr if k.startswith("train_success_last_class"))
    fig, axes = plt.subplots(1, 4 if per_class else 3, figsize=(17 if per_class else 13, 3.5))
    if "model_loss" in tr:
        axes[0].plot(tr["grad_steps"], tr["model_loss"], lw=0.8)
        axes[0].set_yscale("symlog")
        axes[0].set_title("negative ELBO")
        axes[0].set_xlabel("gradient steps")
    if "q_mean" in tr:
        axes[1].plot(tr["grad_steps"], tr["q_mean"], lw=0.8, label="Q mean")
        axes[1].plot(tr["grad_steps"], tr.get("reward_mse", tr["q_mean"] * np.nan), lw=0.8, label="reward mse")
        axes[1].legend(fontsize=7)
        axes[1].set_xlabel("gradient steps")
    for k in sorted(k for k in ev if k.startswith("success_ep")):
        axes[2].plot(ev["env_steps"], ev[k], "o-", label=f"held-out success, episode {k[len('success_ep'):]}")
    _success_over_env_steps(axes[2])
    if per_class:
        _plot_success_by_class(axes[3], tr, per_class)
    fig.suptitle(f"MELD {run_dir.name}")
    return _save_figure(fig, run_dir / "training.png")


def _plot_success_by_class(ax, tr: dict[str, np.ndarray], columns: list[str], window: int = 50) -> None:
    """Last-episode training success per task class, a running mean over each class's last `window`
    trials; with handed trials (true_port_share) only those: the actor's skill per port, the task
    head's guess taken out."""
    handed = tr.get("train_port_handed")
    only_handed = handed is not None and np.nanmax(handed) > 0
    for col in columns:
        keep = ~np.isnan(tr[col]) & (handed == 1.0 if only_handed else True)
        if keep.any():
            y = np.convolve(tr[col][keep], np.ones(window), "full")[: keep.sum()] / np.minimum(
                np.arange(1, keep.sum() + 1), window)
            ax.plot(tr["env_steps"][keep], y, lw=0.9, label=f"class {col[len('train_success_last_class'):]}")
    ax.set_title(f"training success per task class{' (handed trials)' if only_handed else ''}, last {window}", fontsize=9)
    _success_over_env_steps(ax)


def _success_over_env_steps(ax) -> None:
    """A success-rate panel's axes: 0-1, env steps in thousands (at most 6 ticks: full step counts ran
    into each other on a 13-inch-wide figure), its legend."""
    import matplotlib.ticker

    ax.set_ylim(-0.05, 1.05)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1e3:g}k"))
    ax.set_xlabel("environment steps")
    if ax.get_legend_handles_labels()[0]:  # a panel with no trials of its kind yet has nothing to name
        ax.legend(fontsize=7)


def load_trainer(checkpoint: str | Path, device: str = "cpu", env=None, task_set=None,
                 hold_episode_port: bool = False, retake_port_after: int = 0):
    """A Trainer rebuilt from a checkpoint's config, with its weights (buffers left empty);
    hold_episode_port: act held to each episode's first port; retake_port_after: re-take it after that many
    frames of the head naming another (see load_meld_checkpoint)."""
    from belief.meld.checkpoints import load_meld_checkpoint
    from belief.meld.train import TrainConfig, Trainer

    state = load_meld_checkpoint(checkpoint, hold_episode_port, replay=False, retake_port_after=retake_port_after)
    cfg = TrainConfig(**{**state["config"], "device": device})
    trainer = Trainer(cfg, Path(checkpoint).parent, env, task_set)
    trainer.agent.load_state_dict(state["agent"], weights_only=True)
    return trainer, state


def ends_by_correct_port(per_trial: list[dict], task_label: str = "port") -> dict[int, dict]:
    """Where each episode ended (port under the plug, -1 = none) and how many succeeded, grouped by the
    task's correct port: {correct port: {"trials": n, "ends_at": [{port: count} per episode], "successes":
    [count per episode]}}. A task split skewed towards one port cannot tell a habit of going there from task
    inference, nor a success rate which ports it comes from; this table can."""
    groups: dict[int, dict] = {}
    for t in per_trial:
        n_ep = len(t["port_at_tip"])
        g = groups.setdefault(int(t[task_label]), {"trials": 0, "ends_at": [{} for _ in range(n_ep)],
                                                   "successes": [0] * n_ep})
        g["trials"] += 1
        for counts, port in zip(g["ends_at"], t["port_at_tip"], strict=True):
            counts[port] = counts.get(port, 0) + 1
        g["successes"] = [n + bool(ok) for n, ok in zip(g["successes"], t["success"], strict=True)]
    return {k: {"trials": g["trials"], "ends_at": [dict(sorted(c.items())) for c in g["ends_at"]],
                "successes": g["successes"]} for k, g in sorted(groups.items())}


def episode2_given_episode1(per_trial: list[dict]) -> dict[str, dict]:
    """Episode 2 conditioned on how episode 1 went: the sparse-reward agent's adaptation in numbers.

    After a failed episode 1 an adapting agent tries another port (`moved`: episode 2 ends at a port
    other than the one episode 1 ended at, of trials where both ended at a port); after a success it
    goes back to the same one. {"after_failure" | "after_success": {"trials", "success", "correct_port",
    "moved"}} with rates over that group (nan where a group or the `moved` base is empty)."""
    out = {}
    for key, won in (("after_failure", False), ("after_success", True)):
        group = [t for t in per_trial if bool(t["success"][0]) == won and len(t["success"]) > 1]
        both_at_port = [t for t in group if t["port_at_tip"][0] >= 0 and t["port_at_tip"][1] >= 0]
        out[key] = {
            "trials": len(group),
            "success": float(np.mean([t["success"][1] for t in group])) if group else float("nan"),
            "correct_port": float(np.mean([t["at_correct_port"][1] for t in group])) if group else float("nan"),
            "moved": (float(np.mean([t["port_at_tip"][1] != t["port_at_tip"][0] for t in both_at_port]))
                      if both_at_port else float("nan"))}
    return out


def exact_mcnemar_p(gained: int, lost: int) -> float:
    """Two-sided exact McNemar p-value of paired binary outcomes: under "no difference" each discordant
    pair is a fair coin, so the p-value is twice the binomial(gained + lost, 1/2) tail at min(gained, lost)."""
    if gained < 0 or lost < 0:
        raise ValueError(f"exact_mcnemar_p: counts must be >= 0, got gained={gained}, lost={lost}")
    n = gained + lost
    tail = sum(math.comb(n, i) for i in range(min(gained, lost) + 1)) / 2 ** n
    return min(1.0, 2.0 * tail)


def paired_change(before: list[bool], after: list[bool]) -> dict:
    """The same trials read twice (episode 1 then 2, or belief reset then carried): how many went from
    failure to success (`gained`) and back (`lost`), and the exact McNemar p that the rates are equal.
    On ~90 trials a gain of a few points is noise; this says how much is not."""
    if len(before) != len(after):
        raise ValueError(f"paired_change: {len(before)} trials before, {len(after)} after; they must pair")
    gained = sum(1 for b, a in zip(before, after, strict=True) if a and not b)
    lost = sum(1 for b, a in zip(before, after, strict=True) if b and not a)
    return {"trials": len(before), "gained": gained, "lost": lost, "mcnemar_p": exact_mcnemar_p(gained, lost)}


def paired_reads(table: dict) -> dict:
    """Paired reads of episode 2 from an eval table (its `per_trial` records, and the belief-reset
    control's where it was run, whose trials have the same seeds in the same order): success, and
    whether the episode ended at the correct port where the env says so, each against episode 1 of
    the same trials and against the control's episode 2. Works on a saved eval_table.json as well."""
    if "per_trial" not in table:
        raise ValueError("paired_reads: the eval table has no 'per_trial' records (older evaluations did not "
                         "write them); run belief.meld.evaluate again to get them")
    per_trial = table["per_trial"]
    if not per_trial or len(per_trial[0]["success"]) < 2:
        return {}
    control = table.get("belief_reset_control", {}).get("per_trial")
    reads = {}
    for key in ("success", "at_correct_port") if "correct_port_per_episode" in table else ("success",):
        ep2 = [bool(t[key][1]) for t in per_trial]
        reads[f"episode2_vs_episode1/{key}"] = paired_change([bool(t[key][0]) for t in per_trial], ep2)
        if control is not None:
            reads[f"episode2_vs_belief_reset/{key}"] = paired_change([bool(t[key][1]) for t in control], ep2)
    return reads


def _paired_lines(reads: dict) -> list[str]:
    """Markdown lines of `paired_reads`."""
    return [f"- {name.replace('episode', 'episode ').replace('_', ' ').replace('/', ', ')}: {r['gained']} of "
            f"{r['trials']} trials gained, {r['lost']} lost (exact McNemar p = {r['mcnemar_p']:.3g})"
            for name, r in reads.items()]


def _episode2_lines(cond: dict[str, dict], label: str = "") -> list[str]:
    """Markdown lines of an `episode2_given_episode1` read."""
    return [f"- {key.replace('_', ' ')} in episode 1{label} ({g['trials']} trials): episode 2 success "
            f"{g['success']:.2f}, ends at the correct port {g['correct_port']:.2f}, at another port than "
            f"episode 1 {g['moved']:.2f}" for key, g in cond.items() if g["trials"]]


def _port_reads(per_trial: list[dict], task_label: str) -> dict:
    """The by-port reads of one evaluation: where episodes end by correct port and, for trials of more
    than one episode, episode 2 given episode 1's outcome."""
    reads: dict = {"ends_by_correct_port": ends_by_correct_port(per_trial, task_label)}
    if per_trial and len(per_trial[0]["success"]) > 1:
        reads["episode2_given_episode1"] = episode2_given_episode1(per_trial)
    return reads


def _ends_by_port_lines(by_port: dict[int, dict], label: str = "") -> list[str]:
    """Markdown lines of an `ends_by_correct_port` table."""
    lines = []
    for port, g in by_port.items():
        eps = "; ".join(f"episode {i + 1}{label}: " + ", ".join(f"port {p} x{n}" if p >= 0 else f"none x{n}"
                                                                for p, n in c.items())
                        for i, c in enumerate(g["ends_at"]))
        won = f"; successes {' / '.join(map(str, g['successes']))}" if "successes" in g else ""
        lines.append(f"- correct port {port} ({g['trials']} trials) ends at {eps}{won}")
    return lines


def _episode_rows(res: dict, label: str = "") -> list[str]:
    """Markdown table rows, one per episode index, of an `evaluate_policy` result."""
    n_ep = len(res["success_per_episode"])
    port, anyp, seated = (res.get(k, [np.nan] * n_ep) for k in (
        "correct_port_per_episode", "any_port_per_episode", "ports_seated_per_episode"))
    return [f"| {i + 1}{label} | {s:.2f} | {r:.2f} | {f:.3f} | {c:.2f} | {a:.2f} | {n:.2f} |"
            for i, (s, r, f, c, a, n) in enumerate(zip(res["success_per_episode"], res["return_per_episode"],
                                                       res["final_reward_per_episode"], port, anyp, seated,
                                                       strict=True))]


def _known_tasks(trainer, evaluated: list) -> list:
    """The tasks whose label values name the run's classes: its own and the evaluated ones (fresh tasks
    take the same values)."""
    return [*trainer.tasks.train, *trainer.tasks.test, *evaluated]


def evaluate_checkpoint(checkpoint: str | Path, trials_per_task: int = 1, n_tasks: int = 0,
                        out_dir: str | Path | None = None, env=None, task_set=None,
                        reset_control: bool = False, split: str = "test", carry_scale: float = 1.0,
                        carry_cap: float = 0.0, hold_episode_port: bool = False, hand_true_port: bool = False,
                        retake_port_after: int = 0) -> dict:
    """Held-out evaluation of a checkpoint: eval_table.json/.md and belief_trial.png in `out_dir`.

    split: "test" (the held-out tasks), "train" (the training tasks: seen in training, but every port
    value occurs there, so `ends_by_correct_port` can show whether the policy conditions on the task) or
    "fresh" (`n_tasks` new tasks from the same distribution, default 40: held out like "test", over many
    more rig poses than the split's few held-out tasks).

    reset_control: also run the same trials with the belief reset at every episode. Episode 1 is then
    the same, and later episodes start from the same poses without what episode 1 taught: the
    difference in episode 2 is what carrying the belief over the boundary gained (or cost).

    carry_scale: k < 1 carries the task latent's evidence scaled by k into later episodes (the same
    port estimate, less confident): does the carried belief's confidence, not its content, cost them?
    carry_cap: p > 0 caps the carried evidence at precision p per dimension instead, keeping the
    estimate (`MeldPolicy.capped_state`: weak evidence, a failed episode's, is carried whole).
    hold_episode_port: act with agent.model.actor_holds_episode_port on (the committed actor held to the
    port the head names at each episode's first frame) whatever the checkpoint was trained with.
    retake_port_after: n > 0 holds the port too, but re-takes it from the head once the head has named
    another port on n consecutive frames (agent.model.actor_retakes_port_after: a search within the episode).
    hand_true_port: hand the actor each task's true port in place of the task head's guess, in every
    episode (a diagnostic: the actor's reach and insertion per port with task inference taken out)."""
    if trials_per_task < 1:
        raise ValueError(f"MELD evaluation: --trials must be >= 1, got {trials_per_task}")
    if n_tasks < 0:
        raise ValueError(f"MELD evaluation: --tasks must be >= 0 (0 = all held-out tasks), got {n_tasks}")
    if split not in SPLITS:
        raise ValueError(f"MELD evaluation: --split must be one of {SPLITS}, got {split!r}")
    if not 0.0 <= carry_scale <= 1.0:
        raise ValueError(f"MELD evaluation: --carry-scale must be in [0, 1], got {carry_scale}")
    if carry_cap < 0.0:
        raise ValueError(f"MELD evaluation: --carry-cap must be a precision > 0 (0 = no cap), got {carry_cap}")
    if carry_cap and carry_scale != 1.0:
        raise ValueError("MELD evaluation: --carry-cap and --carry-scale are two ways to temper the carry; give one")
    from belief.meld.train import fresh_tasks, task_label_classes

    trainer, state = load_trainer(checkpoint, env=env, task_set=task_set,
                                  hold_episode_port=hold_episode_port, retake_port_after=retake_port_after)
    for flag, value, active in (("--carry-scale", carry_scale, 0.0 < carry_scale < 1.0),
                                ("--carry-cap", carry_cap, carry_cap > 0.0)):
        if active and not trainer.policy.task_latent_dim:
            raise ValueError(f"MELD evaluation: {flag} {value} needs a model with a task latent "
                             f"(agent.model.task_latent_dim > 0); {checkpoint} has none")
    out = Path(out_dir or Path(checkpoint).parent)
    if split == "fresh":
        tasks = fresh_tasks(trainer.cfg, n_tasks or FRESH_TASKS)
    else:
        tasks = list(getattr(trainer.tasks, split)[: n_tasks or None])
    args = (trainer.env, trainer.policy, tasks, trainer.cfg.episodes, trials_per_task, trainer.cfg.agent.reward_input)
    label = trainer.cfg.task_label
    handed = None
    if hand_true_port:
        if not trainer.agent.model.task_probs_in_belief:
            raise ValueError(f"MELD evaluation: --hand-true-port needs the port probabilities in the belief "
                             f"(agent.model.task_probs_in_belief); {checkpoint} has none")
        handed = task_label_classes(_known_tasks(trainer, tasks), label)
    carry = True if carry_scale == 1.0 else carry_scale
    if carry_cap:
        carry = partial(trainer.policy.capped_state, cap=carry_cap)
    res = evaluate_policy(*args, seed=20_000, decode_reward=True, task_label=label, carry_belief=carry,
                          handed_ports=handed)
    table = {k: v for k, v in res.items() if k != "trials"}
    table["split"] = split
    table["carry_scale"] = carry_scale
    table["carry_cap"] = carry_cap
    table["holds_episode_port"] = trainer.policy.holds_port
    table["hands_true_port"] = hand_true_port
    if "correct_port_per_episode" in res:
        table.update(_port_reads(res["per_trial"], label))
    table["env_steps"] = state["counters"]["env_steps"]
    if trainer.task_labels and trainer.agent.model.task_head is not None:
        known = _known_tasks(trainer, tasks)
        labels = task_label_classes(known, trainer.cfg.task_label)
        table["task_id_accuracy"] = task_id_accuracy(
            trainer.agent.model, res["trials"], [labels[t.task_id] for t in tasks
                                                 for _ in range(trials_per_task)], trainer.horizon)
        if trainer.agent.model.task_probs_in_belief:
            values = sorted({t.params[trainer.cfg.task_label] for t in known})  # class k names values[k]
            named = head_ports(res["trials"], trainer.horizon, trainer.agent.model.task_classes, values)
            changes = head_port_changes(res["trials"], trainer.horizon, trainer.agent.model.task_classes)
            for record, ports, n in zip(table["per_trial"], named, changes, strict=True):
                record["head_port"], record["head_port_changes"] = ports, n
            table["ends_at_head_port"] = follows_head(table["per_trial"])
            table["head_port_changes"] = np.asarray(changes, float).mean(0).tolist()
    where = {"test": "held-out", "train": "training", "fresh": "fresh held-out"}[split]
    lines = [f"| episode | success ({where}) | shaped return | final shaped reward | ends at correct port "
             "| ends at a port | ports seated |", "|---|---|---|---|---|---|---|", *_episode_rows(res)]
    if reset_control:
        control = evaluate_policy(*args, seed=20_000, carry_belief=False, task_label=label, handed_ports=handed)
        table["belief_reset_control"] = {k: v for k, v in control.items() if k not in ("trials", "tasks")}
        lines += _episode_rows(control, " (belief reset)")[1:]
        if "correct_port_per_episode" in control:
            table["belief_reset_control"].update(_port_reads(control["per_trial"], label))
    table["paired"] = paired_reads(table)
    table["checkpoint"] = str(checkpoint)
    from belief.checkpoint import atomic_write_text

    atomic_write_text(json.dumps(table, indent=2), out / "eval_table.json")
    if "task_id_accuracy" in table:
        acc = table["task_id_accuracy"]
        lines.append("\ntask head names the " + trainer.cfg.task_label + ", per episode (first / last frame): " +
                     ", ".join(f"{a:.2f} / {b:.2f}" for a, b in zip(acc["episode_start"], acc["episode_end"],
                                                                     strict=True)))
    if "ends_at_head_port" in table:
        lines.append("episode ends at the port the task head named at its first frame, per episode: " +
                     ", ".join(f"{a:.2f}" for a in table["ends_at_head_port"]))
        lines.append("head's port changes within an episode (mean per trial, per episode): "
                     + ", ".join(f"{a:.2f}" for a in table["head_port_changes"]))
    lines.append(f"\n{res['n_trials']} trials on {len(tasks)} {where} tasks, {table['env_steps']} env steps")
    if carry_cap or carry_scale != 1.0:  # a tempered read must say so wherever its table is read
        how = f"capped at precision {carry_cap}" if carry_cap else f"scaled by {carry_scale}"
        lines.append(f"carried belief: the task latent's evidence {how} at each later episode's start "
                     "(a diagnostic; MELD carries it whole)")
    if trainer.policy.retake_after:
        lines.append("the actor is held to the port the head named at each episode's first frame and re-takes it "
                     f"once the head has named another port on {trainer.policy.retake_after} consecutive frames "
                     "(agent.model.actor_retakes_port_after)")
    elif trainer.policy.holds_port:
        lines.append("the actor is held to the port the head named at each episode's first frame "
                     "(agent.model.actor_holds_episode_port; the head's port changes read 0 by construction)")
    if hand_true_port:
        lines.append("the actor is handed each task's true port in place of the task head's guess, in every "
                     "episode (a diagnostic: its reach and insertion per port, task inference taken out)")
    if reset_control:
        lines.append("(belief reset): the same trials with the belief reset at every episode; episode 1 is "
                     "identical, so only later episodes are listed")
    by_port = _ends_by_port_lines(table.get("ends_by_correct_port", {})) + _ends_by_port_lines(
        table.get("belief_reset_control", {}).get("ends_by_correct_port", {}), " (belief reset)")
    if by_port:
        lines += ["\nwhere episodes end, by the task's correct port:", *by_port]
    given = _episode2_lines(table.get("episode2_given_episode1", {})) + _episode2_lines(
        table.get("belief_reset_control", {}).get("episode2_given_episode1", {}), " (belief reset)")
    if given:
        lines += ["\nepisode 2 after episode 1's outcome:", *given]
    if table["paired"]:
        lines += ["\nepisode 2, paired over the same trials:", *_paired_lines(table["paired"])]
    atomic_write_text("\n".join(lines) + "\n", out / "eval_table.md")
    # the belief picture: prefer a trial where episode 1 failed and episode 2 succeeded
    trials = res["trials"]
    pick = next((t for t in trials if not t.episode_success[0] and t.episode_success[-1]), None) or \
        next((t for t in trials if t.episode_success[-1]), trials[0])
    plot_belief_trial(pick, trainer.horizon, out / "belief_trial.png",
                      f"{pick.trial.task_id}: success per episode {pick.episode_success}")
    print("\n".join(lines))
    return table


def eval_command(args) -> int:
    """`meldbot eval CHECKPOINT` for MELD checkpoints (held-out tasks, per episode index)."""
    paths = getattr(args, "checkpoints", None) or [args.checkpoint]
    for path in paths:
        trials, tasks = getattr(args, "trials", None), getattr(args, "tasks", None)
        evaluate_checkpoint(path, 1 if trials is None else trials, 0 if tasks is None else tasks,
                            getattr(args, "out", None), reset_control=bool(getattr(args, "reset_control", False)),
                            split=getattr(args, "split", None) or "test",
                            carry_scale=1.0 if getattr(args, "carry_scale", None) is None else args.carry_scale,
                            carry_cap=getattr(args, "carry_cap", None) or 0.0,
                            hold_episode_port=bool(getattr(args, "hold_episode_port", False)),
                            hand_true_port=bool(getattr(args, "hand_true_port", False)),
                            retake_port_after=getattr(args, "retake_port_after", None) or 0)
    return 0


def main(argv=None) -> int:
    from belief.meld.checkpoints import HOLD_EPISODE_PORT_HELP, RETAKE_PORT_AFTER_HELP

    p = argparse.ArgumentParser(prog="python -m belief.meld.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--trials", type=int, default=1, help="trials per held-out task")
    p.add_argument("--tasks", type=int, default=0,
                   help=f"number of tasks (0 = all of the split; with --split fresh, {FRESH_TASKS})")
    p.add_argument("--out", default=None)
    p.add_argument("--reset-control", action="store_true",
                   help="also run the same trials with the belief reset at every episode (what carrying it gains)")
    p.add_argument("--split", choices=SPLITS, default="test",
                   help="tasks to run: held-out (test, default), training tasks (what meta-training fitted), or "
                        f"fresh tasks from the same distribution (--tasks of them, default {FRESH_TASKS})")
    p.add_argument("--carry-scale", type=float, default=1.0,
                   help="carry the task latent's evidence scaled by this factor in [0, 1] into later episodes "
                        "(1 = MELD's full carry; a diagnostic of what the carried confidence costs)")
    p.add_argument("--carry-cap", type=float, default=0.0,
                   help="instead, cap the carried evidence at this precision per task-latent dimension, keeping "
                        "the estimate (0 = no cap): weak evidence, e.g. a failed episode's, is carried whole")
    p.add_argument("--hold-episode-port", action="store_true", help=HOLD_EPISODE_PORT_HELP)
    p.add_argument("--retake-port-after", type=int, default=0, metavar="N", help=RETAKE_PORT_AFTER_HELP)
    p.add_argument("--hand-true-port", action="store_true",
                   help="hand the actor each task's true port in place of the task head's guess (a diagnostic: "
                        "the actor's reach and insertion per port, task inference taken out)")
    return eval_command(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
