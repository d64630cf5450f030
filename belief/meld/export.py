"""Export a trained MELD agent: per-step filter + actor to TorchScript (.ts) or torch.export (.pt2).

The module is `MeldPolicy` (deterministic: posterior means as latents, mean action), written with the
lead's `belief.policy_file.save_policy`, so the policy server loads it like every other belief model.
"""

from __future__ import annotations

import copy
from pathlib import Path

from belief.meld.policy import MeldPolicy
from belief.policy_file import ActionSpec, ObservationSpec, PolicyMetadata, save_policy

MODEL_VERSION = "meld-1"


def build_metadata(agent_cfg, env_meta: dict, state_dim: int) -> PolicyMetadata:
    """Metadata from the agent config and the env description saved in the checkpoint."""
    reward_topic = "reward/sparse" if agent_cfg.reward_input == "sparse" else "reward/shaped"
    return PolicyMetadata(
        algo="meld",
        observation=ObservationSpec("camera_pair/image_raw", list(env_meta["obs_shape"]), "uint8"),
        action=ActionSpec(list(env_meta["joint_names"]), [float(s) for s in env_meta["action_scale"]]),
        state_dim=state_dim,
        control_rate_hz=float(env_meta.get("control_rate_hz", 3.3)),
        model_version=MODEL_VERSION,
        reward_topic=reward_topic,
        env=env_meta.get("env", ""),
        extra={"deterministic": True, "episodes_per_trial": env_meta.get("episodes", 2),
               "reset_belief": "per trial (not per episode)",
               "episode_start_inputs": "prev_action=0, reward=0", "filter_final_frame": True,
               "holds_episode_port": bool(agent_cfg.model.actor_holds_episode_port),
               "retakes_port_after": int(agent_cfg.model.actor_retakes_port_after)},
    )


def export_policy(policy: MeldPolicy, meta: PolicyMetadata, path: str | Path) -> Path:
    """Write `policy` (a CPU copy of it) to `path` (.ts or .pt2) with `meta`."""
    module = copy.deepcopy(policy).cpu().eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return save_policy(module, meta, path)


def export_checkpoint(checkpoint: str | Path, output: str | Path, hold_episode_port: bool = False,
                      retake_port_after: int = 0) -> Path:
    """Rebuild the agent from a MELD checkpoint and export its deterministic per-step policy.

    hold_episode_port: the policy acts with agent.model.actor_holds_episode_port on (the committed actor
    held to the port the task head names at each episode's first frame), whatever it was trained with;
    retake_port_after: n > 0 also re-takes that port once the head has named another on n consecutive frames."""
    from belief.meld.agent import AgentConfig, MeldAgent
    from belief.meld.checkpoints import load_meld_checkpoint

    state = load_meld_checkpoint(checkpoint, hold_episode_port, replay=False, retake_port_after=retake_port_after)
    cfg = AgentConfig(**state["config"]["agent"])
    env_meta = state["env_meta"]
    agent = MeldAgent(cfg, env_meta["episodes"], env_meta["horizon"])
    agent.load_state_dict(state["agent"], weights_only=True)
    policy = MeldPolicy(agent.model, agent.sac.actor)
    meta = build_metadata(cfg, env_meta, policy.state_dim)
    meta.model_version = f"{MODEL_VERSION}-{env_meta['env']}-{state['counters']['env_steps']}steps"
    return export_policy(policy, meta, output)


def export_command(args) -> int:
    """`meldbot export CHECKPOINT -o policy.ts|policy.pt2 [--hold-episode-port] [--retake-port-after N]` for
    MELD checkpoints."""
    path = export_checkpoint(args.checkpoint, args.output, bool(getattr(args, "hold_episode_port", False)),
                             getattr(args, "retake_port_after", None) or 0)
    print(f"exported MELD policy to {path}")
    return 0


def main(argv=None) -> int:
    import argparse

    from belief.meld.checkpoints import HOLD_EPISODE_PORT_HELP, RETAKE_PORT_AFTER_HELP

    p = argparse.ArgumentParser(prog="python -m belief.meld.export", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", required=True, help="policy.ts or policy.pt2")
    p.add_argument("--hold-episode-port", action="store_true", help=HOLD_EPISODE_PORT_HELP)
    p.add_argument("--retake-port-after", type=int, default=0, metavar="N", help=RETAKE_PORT_AFTER_HELP)
    return export_command(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
