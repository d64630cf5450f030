"""The exported policy file: a single-step module with explicit belief state, plus its metadata.

Every belief model (untrained rehearsal policy, PEARL, PERIL, MELD) is exported to this one format,
and the policy server loads nothing else. The module exposes

    step(obs, prev_action, reward, state) -> (action, new_state)
    initial_state() -> state                      # belief at the start of a trial

with tensors shaped as the metadata says: ``obs`` has ``observation.shape``/``observation.dtype``
(images stay uint8 HxWx3; the model normalises), ``prev_action`` is float32 (action_dim,), ``reward``
float32 (1,), ``state`` float32 (state_dim,). ``action`` is float32 (action_dim,) in [-1, 1]; the
server multiplies by ``action.scale`` to get command units (rad/s). No torch.distributions inside:
exploration noise, if any, is computed from explicit tensors.

Two containers: TorchScript (``.ts``, metadata in the archive's extra files) and ``torch.export``
(``.pt2``, metadata and initial state in its extra files). Both are written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "meldbot-policy/1"
META_FILE = "meldbot_policy.json"
INIT_STATE_FILE = "initial_state.json"


@dataclass
class ObservationSpec:
    topic: str  # contract name, relative to the arm namespace: "camera_pair/image_raw", "observation/state"
    shape: list[int]
    dtype: str = "uint8"  # "uint8" (images) or "float32" (state vectors)


@dataclass
class ActionSpec:
    joint_names: list[str]
    scale: list[float]  # command = clip(action, -1, 1) * scale, in rad/s per joint
    topic: str = "velocity_controller/commands"

    @property
    def dim(self) -> int:
        return len(self.joint_names)


@dataclass
class PolicyMetadata:
    """What the policy expects and produces; the policy server checks it against its topics."""

    algo: str
    observation: ObservationSpec
    action: ActionSpec
    state_dim: int
    control_rate_hz: float
    model_version: str = "0"
    reward_topic: str = "reward/sparse"
    env: str = ""
    extra: dict = field(default_factory=dict)
    format: str = FORMAT

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "policy metadata") -> PolicyMetadata:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: metadata is not valid JSON: {exc}") from exc
        if data.get("format") != FORMAT:
            raise ValueError(f"{source}: unsupported policy format {data.get('format')!r} (expected {FORMAT!r})")
        try:
            data["observation"] = ObservationSpec(**data["observation"])
            data["action"] = ActionSpec(**data["action"])
            meta = cls(**data)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{source}: malformed metadata: {exc}") from exc
        if len(meta.action.scale) != meta.action.dim:
            raise ValueError(f"{source}: action.scale has {len(meta.action.scale)} entries for "
                             f"{meta.action.dim} joints")
        return meta


def _atomic_target(path: Path):
    """A temp file next to `path` (same filesystem, so os.replace is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _example_inputs(meta: PolicyMetadata):
    import torch

    dtype = torch.uint8 if meta.observation.dtype == "uint8" else torch.float32
    return (torch.zeros(meta.observation.shape, dtype=dtype), torch.zeros(meta.action.dim),
            torch.zeros(1), torch.zeros(meta.state_dim))


def save_policy(module, meta: PolicyMetadata, path: str | os.PathLike) -> Path:
    """Export `module` (an nn.Module with `step` and `initial_state`) to .ts or .pt2, atomically."""
    import torch

    path = Path(path)
    if path.suffix not in (".ts", ".pt2"):
        raise ValueError(f"policy file must end in .ts (TorchScript) or .pt2 (torch.export): {path}")
    wrapped = _ScriptableStep(module.eval())
    tmp = _atomic_target(path)
    try:
        if path.suffix == ".ts":
            torch.jit.save(torch.jit.script(wrapped), str(tmp), _extra_files={META_FILE: meta.to_json()})
        else:
            init = module.initial_state().detach().cpu().numpy().astype(np.float32)
            program = torch.export.export(wrapped, _example_inputs(meta))  # exports forward = step
            torch.export.save(program, str(tmp), extra_files={META_FILE: meta.to_json(),
                                                              INIT_STATE_FILE: json.dumps(init.tolist())})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _scriptable_step_class():
    import torch

    class ScriptableStep(torch.nn.Module):
        """One export wrapper for both containers: forward = step (what torch.export traces), and
        `step`/`initial_state` exported for TorchScript."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, obs, prev_action, reward, state):
            return self.inner.step(obs, prev_action, reward, state)

        @torch.jit.export
        def step(self, obs, prev_action, reward, state):
            return self.inner.step(obs, prev_action, reward, state)

        @torch.jit.export
        def initial_state(self):
            return self.inner.initial_state()

    return ScriptableStep


def _ScriptableStep(module):
    return _scriptable_step_class()(module)


class LoadedPolicy:
    """An exported policy ready to step with numpy in and numpy out."""

    def __init__(self, path: str | os.PathLike):
        import torch

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"policy file not found: {self.path}")
        self._torch = torch
        if self.path.suffix == ".ts":
            extra = {META_FILE: ""}
            try:
                self._module = torch.jit.load(str(self.path), map_location="cpu", _extra_files=extra)
            except RuntimeError as exc:
                raise ValueError(f"{self.path}: not a loadable TorchScript archive: {exc}") from exc
            if not extra[META_FILE]:
                raise ValueError(f"{self.path}: TorchScript archive has no {META_FILE} (not a meldbot policy)")
            self.metadata = PolicyMetadata.from_json(extra[META_FILE], str(self.path))
            self._step = self._module.step
            self._init = self._module.initial_state().detach().numpy().astype(np.float32)
        elif self.path.suffix == ".pt2":
            extra = {META_FILE: "", INIT_STATE_FILE: ""}
            try:
                program = torch.export.load(str(self.path), extra_files=extra)
            except Exception as exc:
                raise ValueError(f"{self.path}: not a loadable torch.export archive: {exc}") from exc
            if not extra[META_FILE]:
                raise ValueError(f"{self.path}: archive has no {META_FILE} (not a meldbot policy)")
            self.metadata = PolicyMetadata.from_json(extra[META_FILE], str(self.path))
            self._module = program.module()
            self._step = self._module
            self._init = np.asarray(json.loads(extra[INIT_STATE_FILE]), dtype=np.float32)
        else:
            raise ValueError(f"policy file must end in .ts or .pt2: {self.path}")
        if self._init.shape != (self.metadata.state_dim,):
            raise ValueError(f"{self.path}: initial state has shape {self._init.shape}, metadata says "
                             f"state_dim={self.metadata.state_dim}")
        self._obs_dtype = np.uint8 if self.metadata.observation.dtype == "uint8" else np.float32

    def initial_state(self) -> np.ndarray:
        return self._init.copy()

    def step(self, obs: np.ndarray, prev_action: np.ndarray, reward: float, state: np.ndarray):
        """One control step: (action in [-1, 1], new belief state), both float32 numpy."""
        torch = self._torch
        obs = np.asarray(obs, dtype=self._obs_dtype)
        if not obs.flags.writeable or not obs.flags.c_contiguous:  # e.g. a view of a message buffer
            obs = np.array(obs, order="C")
        if list(obs.shape) != list(self.metadata.observation.shape):
            raise ValueError(f"observation shape {list(obs.shape)} != policy's {self.metadata.observation.shape}")
        with torch.inference_mode():
            action, new_state = self._step(
                torch.from_numpy(obs),
                torch.from_numpy(np.asarray(prev_action, dtype=np.float32)),
                torch.tensor([reward], dtype=torch.float32),
                torch.from_numpy(np.asarray(state, dtype=np.float32)),
            )
        return action.numpy().astype(np.float32), new_state.numpy().astype(np.float32)
