"""The privileged-state SAC diagnostic runs on the real cable twin and records held-out evaluations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from belief.meld.oracle import main, oracle_features
from sim.mujoco.cable import make_task_set


def test_oracle_features_carry_the_task():
    tasks = make_task_set()
    feats = {t.params["port"]: oracle_features(np.zeros(17, np.float32), t) for t in tasks.train}
    assert all(f.shape == (17 + 4 + 2,) and f[17 + port] == 1.0 and f[17:21].sum() == 1.0 for port, f in feats.items())


def test_oracle_run_writes_its_held_out_evaluations(tmp_path):
    assert main(["--env-steps", "80", "--random-episodes", "1", "--eval-every", "2", "--out", str(tmp_path)]) == 0
    log = json.loads((tmp_path / "oracle_eval.json").read_text())
    assert [row["env_steps"] for row in log] == [80]
    assert {"success", "return", "final_distance", "at_correct_port"} <= set(log[0])
    assert (tmp_path / "oracle.png").is_file()
    assert main(["--plot", str(tmp_path), str(tmp_path), "-o", str(tmp_path / "both.png")]) == 0
    assert (tmp_path / "both.png").stat().st_size > 0


def test_oracle_cli_names_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--plot", str(tmp_path), "-o", str(tmp_path / "x.png")])
    assert "no oracle_eval.json in" in capsys.readouterr().err
    for flag, value, message in (("--env-steps", "0", "--env-steps must be >= 1"),
                                 ("--eval-every", "0", "--eval-every must be >= 1"),
                                 ("--updates-per-step", "-1", "--updates-per-step must be >= 0"),
                                 ("--action-scale", "1.5", "--action-scale must be in (0, 1]")):
        with pytest.raises(SystemExit):
            main([flag, value, "--out", str(tmp_path / "never")])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()  # rejected before anything is created
