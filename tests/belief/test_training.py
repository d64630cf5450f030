"""Training loop on the tiny toy family: outputs, crash + resume bit-for-bit, CLI, evaluation, export."""

import csv

import numpy as np
import pytest
import torch

from belief import checkpoint as ckpt_io
from belief.training import Trainer, load_config, train
from meldbot.executables import SOURCE_ROOT


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _same_state(a: dict, b: dict):
    assert a["iteration"] == b["iteration"] and a["env_steps"] == b["env_steps"]
    for k in a["agent"]:
        assert torch.equal(a["agent"][k], b["agent"][k]), k
    for kind in ("rl", "enc"):
        for x, y in zip(a["replay"][kind], b["replay"][kind], strict=True):
            assert x["size"] == y["size"]
            for f in x["data"]:
                np.testing.assert_array_equal(x["data"][f], y["data"][f])
    assert a["rng"]["numpy_gen"] == b["rng"]["numpy_gen"]
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


@pytest.mark.parametrize("algo", ["peril-a", "pearl"])
def test_crash_then_resume_is_bit_for_bit(tmp_path, tiny_cfg, monkeypatch, algo):
    cfg = tiny_cfg(algo)
    straight = train(cfg, tmp_path / "a", progress=False, final_eval=False)

    real_iterate = Trainer.iterate

    def crashing(self):
        if self.iteration == 3:  # dies during iteration 4; the last checkpoint is at 2
            raise KeyboardInterrupt
        return real_iterate(self)

    monkeypatch.setattr(Trainer, "iterate", crashing)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", progress=False, final_eval=False)
    assert ckpt_io.load(tmp_path / "b" / "checkpoint.pt")["iteration"] == 2
    assert [r["iteration"] for r in _rows(tmp_path / "b" / "progress.csv")] == ["1", "2", "3"]
    monkeypatch.setattr(Trainer, "iterate", real_iterate)
    resumed = train(cfg, tmp_path / "b", resume=True, progress=False, final_eval=False)
    assert resumed.iteration == 4
    _same_state(straight.state(), resumed.state())
    # logs rewound to the checkpoint, then continued: no duplicated iteration rows
    assert [r["iteration"] for r in _rows(tmp_path / "b" / "progress.csv")] == ["1", "2", "3", "4"]
    assert _rows(tmp_path / "a" / "progress.csv") == [
        {**r, "wall_s": a["wall_s"]} for r, a in zip(_rows(tmp_path / "b" / "progress.csv"),
                                                      _rows(tmp_path / "a" / "progress.csv"), strict=True)]
    assert [r["iteration"] for r in _rows(tmp_path / "b" / "eval.csv")] == ["2", "4"]


def test_refuses_to_overwrite_and_resume_without_checkpoint(tmp_path, tiny_cfg):
    cfg = tiny_cfg("pearl", iterations=2)
    train(cfg, tmp_path, progress=False, final_eval=False)
    with pytest.raises(ValueError, match="--resume"):
        train(cfg, tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        train(cfg, tmp_path / "nothing", resume=True, progress=False)


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("iterations: 3\nlearning_rate: 1\n")
    with pytest.raises(ValueError, match="learning_rate"):
        load_config(bad, algo="peril", env="toy")
    bad.write_text("agent: {kl_weight: 0.1, bogus: 2}\n")
    with pytest.raises(ValueError, match="bogus"):
        load_config(bad, algo="pearl", env="toy").agent_config()
    with pytest.raises(ValueError, match="algo"):
        load_config(None, algo="maml", env="toy")


def test_cli_train_eval_export(tmp_path, tiny_cfg, capsys):
    import yaml

    from belief.policy_file import LoadedPolicy
    from meldbot.cli import main

    cfg = tiny_cfg("peril", iterations=2)
    cfg_file = tmp_path / "cfg.yaml"
    data = {k: v for k, v in vars(cfg).items() if k not in ("algo", "env")}
    cfg_file.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    assert main(["train", "--algo", "peril", "--env", "toy", "--config", str(cfg_file), "--out", str(out),
                 "--quiet"]) == 0
    for name in ("checkpoint.pt", "config.yaml", "progress.csv", "eval.csv", "eval_table.md", "eval_table.csv",
                 "curves.png"):
        assert (out / name).is_file(), name
    assert "| peril |" in (out / "eval_table.md").read_text() and "| random |" in (out / "eval_table.md").read_text()
    assert list((out / "tb").iterdir())
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0  # already complete: no-op
    assert ckpt_io.load(out / "checkpoint.pt")["iteration"] == 2
    assert main(["train", "--algo", "peril", "--env", "toy", "--out", str(out), "--quiet"]) == 2  # would overwrite
    assert main(["eval", str(out / "checkpoint.pt"), "--out", str(tmp_path / "ev"), "--adapt", "2"]) == 0
    assert "success@2" in (tmp_path / "ev" / "eval_table.md").read_text()
    capsys.readouterr()
    assert main(["eval", str(out / "checkpoint.pt"), "--reset-control"]) == 2  # a MELD-only flag
    assert "--reset-control apply to MELD checkpoints only" in capsys.readouterr().err
    assert main(["eval", str(out / "checkpoint.pt"), "--split", "train"]) == 2
    assert "--split apply to MELD checkpoints only" in capsys.readouterr().err
    assert main(["eval", str(out / "checkpoint.pt"), "--hold-episode-port"]) == 2
    assert "--hold-episode-port apply to MELD checkpoints only" in capsys.readouterr().err
    assert main(["export", str(out / "checkpoint.pt"), "-o", str(tmp_path / "p.ts"), "--task", "test-00",
                 "--hold-episode-port"]) == 2
    assert "--hold-episode-port applies to MELD checkpoints only, not 'peril'" in capsys.readouterr().err
    assert main(["eval", str(out / "checkpoint.pt"), "--retake-port-after", "3"]) == 2
    assert "--retake-port-after apply to MELD checkpoints only" in capsys.readouterr().err
    assert main(["export", str(out / "checkpoint.pt"), "-o", str(tmp_path / "p.ts"), "--task", "test-00",
                 "--retake-port-after", "3"]) == 2
    assert "--retake-port-after applies to MELD checkpoints only, not 'peril'" in capsys.readouterr().err
    assert main(["export", str(out / "checkpoint.pt"), "-o", str(tmp_path / "p.ts")]) == 2  # PERIL needs --task
    assert main(["export", str(out / "checkpoint.pt"), "-o", str(tmp_path / "p.ts"), "--task", "test-00"]) == 0
    policy = LoadedPolicy(tmp_path / "p.ts")
    assert policy.metadata.algo == "peril" and policy.metadata.extra["demonstrations"] == 1
    assert np.any(policy.initial_state() != 0)  # the demonstrations are in the initial belief
    action, state = policy.step(np.zeros(2, np.float32), np.zeros(2, np.float32), 0.0, policy.initial_state())
    assert action.shape == (2,) and np.all(np.abs(action) <= 1) and state.shape == policy.initial_state().shape


@pytest.mark.parametrize("name", sorted(p.name for p in (SOURCE_ROOT / "config").glob("train_*.yaml")
                                         if not p.name.startswith("train_meld")))  # MELD: tests/belief_meld
@pytest.mark.parametrize("algo", ["pearl", "peril"])
def test_shipped_configs_load(name, algo):
    """The PEARL/PERIL configs under config/ parse, and their agent section builds each algorithm's config
    (one file serves both algorithms, as their headers' commands use it)."""
    cfg = load_config(SOURCE_ROOT / "config" / name, algo=algo)
    assert cfg.agent_config() is not None and cfg.iterations > 0
