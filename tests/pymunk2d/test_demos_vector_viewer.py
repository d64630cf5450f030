"""Demonstrations on disk, vectorised stepping, the viewer CLI, the arm's kinematics."""

import json

import cv2
import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401
from meldbot.cli import main as meldbot_main
from sim.pymunk2d import kinematics as kin
from sim.pymunk2d.demos import FORMAT, load_demos, write_demos
from sim.pymunk2d.task_sets import make_task_set
from sim.pymunk2d.vector import VectorTaskEnv


def test_demos_round_trip_and_success(tmp_path):
    tasks = make_task_set("peg2d").test[:3]
    manifest = write_demos(tmp_path / "peg", "peg2d", tasks, k=2)
    data = json.loads(manifest.read_text())
    assert data["format"] == FORMAT and data["version"] == 1 and data["k"] == 2
    demos = load_demos(tmp_path / "peg")
    assert set(demos.tasks) == {t.task_id for t in tasks}
    d = demos[tasks[0].task_id]
    assert d.observations.shape == (2, 61, 4) and d.actions.shape == (2, 60, 3)
    assert d.episode_success.all()
    np.testing.assert_array_equal(d.descriptor, tasks[0].descriptor)
    np.testing.assert_array_equal(d.descriptor, d.demo_descriptor)
    assert not list((tmp_path / "peg").glob("*.tmp"))  # atomic writes leave no temp files


def test_imperfect_demos_noise_and_alteration(tmp_path):
    tasks = make_task_set("reach2d").test[:2]
    write_demos(tmp_path / "clean", "reach2d", tasks, k=1)
    write_demos(tmp_path / "noisy", "reach2d", tasks, k=1, noise=0.3, alteration=0.05, seed=3)
    clean, noisy = load_demos(tmp_path / "clean"), load_demos(tmp_path / "noisy")
    tid = tasks[0].task_id
    assert not np.allclose(clean[tid].actions, noisy[tid].actions)
    moved = np.linalg.norm(noisy[tid].demo_descriptor[:2] - noisy[tid].descriptor[:2])
    assert moved == pytest.approx(0.05, abs=1e-6)
    assert noisy.noise == 0.3 and noisy.alteration == 0.05


def test_load_demos_rejects_bad_input_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest"):
        load_demos(tmp_path)
    write_demos(tmp_path, "point_robot", make_task_set("point_robot").test[:1], k=1)
    manifest = tmp_path / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        load_demos(tmp_path)
    manifest.write_text(json.dumps(data))
    (tmp_path / data["tasks"][0]["file"]).unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        load_demos(tmp_path)
    with pytest.raises(ValueError, match="k must be"):
        write_demos(tmp_path, "peg2d", make_task_set("peg2d").test[:1], k=0)


def test_vector_env_matches_single_envs_and_autoresets():
    tasks = make_task_set("key2d").test[:3]
    vec = VectorTaskEnv("key2d", tasks, seed=10)
    obs, info = vec.reset()
    assert obs.shape == (3, 4) and info["task"].shape == (3, 8)
    singles = [gym.make("meldbot/Key2D-v0").unwrapped for _ in tasks]
    ref = [env.reset(seed=10 + i, options={"task": t})[0] for i, (env, t) in enumerate(zip(singles, tasks, strict=True))]
    np.testing.assert_array_equal(obs, np.stack(ref))
    rng = np.random.default_rng(0)
    for _ in range(60):
        actions = rng.uniform(-1, 1, size=(3, 3))
        obs, rew, term, trunc, infos = vec.step(actions)
        outs = [env.step(a) for env, a in zip(singles, actions, strict=True)]
        np.testing.assert_array_equal(rew, [o[1] for o in outs])
        np.testing.assert_array_equal(infos["dense_reward"], [o[4]["dense_reward"] for o in outs])
    assert trunc.all() and set(infos["final_observation"]) == {0, 1, 2}
    np.testing.assert_array_equal(infos["final_observation"][1], outs[1][0])
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros((2, 3)))


def test_vector_expert_solves_point_robot():
    vec = VectorTaskEnv("point_robot", make_task_set("point_robot").test[:5])
    vec.reset()
    successes = np.zeros(5, bool)
    for _ in range(20):
        *_, infos = vec.step(vec.expert_actions())
        successes |= infos["success"]
    assert successes.all()


def test_sim_view_cli_writes_video_and_strip(tmp_path, capsys):
    assert meldbot_main(["sim", "view", "peg2d", "--task", "peg2d-test-01", "-o", str(tmp_path),
                         "--frames", "5"]) == 0
    out = capsys.readouterr().out
    assert "success=True" in out
    videos = list(tmp_path.glob("peg2d_peg2d-test-01_expert.*"))
    assert {p.suffix for p in videos} >= {".png"} and len(videos) == 2
    strip = cv2.imread(str(tmp_path / "peg2d_peg2d-test-01_expert.png"))
    assert strip.shape[0] == 256 and strip.shape[1] == 5 * 256 + 4 * 2
    assert meldbot_main(["sim", "view", "no_such_env", "-o", str(tmp_path)]) == 2
    assert "unknown environment" in capsys.readouterr().err


def test_kinematics_jacobian_ik_and_dls():
    geom = kin.ArmGeometry(tool_length=0.12)
    q = np.array([0.4, -1.9, 1.1])
    jac = kin.jacobian(geom, q)
    eps = 1e-6
    numeric = np.stack([(kin.forward(geom, q + eps * e) - kin.forward(geom, q - eps * e)) / (2 * eps)
                        for e in np.eye(3)], axis=1)
    np.testing.assert_allclose(jac, numeric, atol=1e-8)
    pose = kin.forward(geom, q)
    np.testing.assert_allclose(kin.forward(geom, kin.inverse(geom, pose)), pose, atol=1e-9)
    qd = kin.dls_joint_velocities(geom, q, [0.1, -0.05, 0.2])
    np.testing.assert_allclose(jac @ qd, [0.1, -0.05, 0.2], atol=2e-3)
    fast = kin.dls_joint_velocities(geom, q, [50.0, 0.0, 0.0])
    assert np.max(np.abs(fast)) == pytest.approx(geom.joint_velocity_limit)
    with pytest.raises(ValueError, match="reach"):
        kin.inverse(geom, [3.0, 0.0, 0.0])


class _CameraPairEnv(gym.Env):
    """A stand-in for the MuJoCo twins: no render(), a 64x128 render_cameras() pair."""

    metadata = {"render_modes": ["rgb_array"]}
    action_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    observation_space = gym.spaces.Box(0, 255, (64, 128, 3), np.uint8)
    episode_steps = 5

    def __init__(self, render_mode=None):
        self.render_mode, self.t = render_mode, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.render_cameras(), {}

    def step(self, action):
        self.t += 1
        return self.render_cameras(), 0.0, False, self.t >= 5, {"success": self.t >= 3}

    def render_cameras(self):
        img = np.zeros((64, 128, 3), np.uint8)
        img[:, : 20 * self.t] = 200
        return img

    def expert_action(self):
        return np.zeros(2, np.float32)


def test_viewer_uses_render_cameras_when_an_env_has_them(tmp_path):
    from sim.viewer import view

    gym.register("meldbot/TestCameraPair-v0", entry_point=_CameraPairEnv)
    try:
        result = view("meldbot/TestCameraPair-v0", out_dir=tmp_path, strip_frames=3)
    finally:
        gym.registry.pop("meldbot/TestCameraPair-v0")
    assert result["success"] and result["video"].is_file()
    strip = cv2.imread(str(result["strip"]))
    assert strip.shape == (256, 3 * 512 + 2 * 2, 3)  # the pair upscaled 4x, three frames
