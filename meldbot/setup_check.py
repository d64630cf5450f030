"""Check that this machine can run meldbot: ROS 2 client library, PyTorch, and headless MuJoCo rendering.

`python -m meldbot.setup_check --fix` (run by `make`) installs Mesa's EGL with apt-get when rendering
fails and we are root; otherwise it explains what to install. Exit status 1 means a check failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

EGL_PACKAGES = ["libegl1", "libgl1-mesa-dri", "libgles2", "libglvnd0"]
RENDER_PROBE = (
    "import mujoco; m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size=\".1\"/></worldbody></mujoco>');"
    "r = mujoco.Renderer(m, 16, 16); d = mujoco.MjData(m); mujoco.mj_forward(m, d); r.update_scene(d);"
    "assert r.render().shape == (16, 16, 3)"
)


def _check_render() -> str | None:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.run([sys.executable, "-c", RENDER_PROBE], env=env, capture_output=True, text=True, timeout=120)
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["unknown error"])[-1]


def _install_egl() -> bool:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    print(f"setup_check: installing Mesa EGL ({' '.join(EGL_PACKAGES)}) with apt-get", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", "install", "-y", "-qq", *EGL_PACKAGES], env=env).returncode == 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fix", action="store_true", help="install missing system packages where possible")
    args = parser.parse_args(argv)
    failures = []
    for module, hint in [("rclpy", "pip install '.[ros]' (ROS 2 Kilted wheels) or source /opt/ros/<distro>/setup.bash"),
                         ("torch", "pip install torch==2.13.0"), ("mujoco", "pip install mujoco"),
                         ("pymunk", "pip install pymunk")]:
        try:
            __import__(module)
        except ImportError as exc:
            failures.append(f"cannot import {module} ({exc}): {hint}")
    error = _check_render()
    if error and args.fix and _install_egl():
        error = _check_render()
    if error:
        failures.append(
            f"headless MuJoCo rendering (MUJOCO_GL={os.environ.get('MUJOCO_GL', 'egl')}) failed: {error}. "
            f"Install Mesa EGL: sudo apt-get install {' '.join(EGL_PACKAGES)}")
    for failure in failures:
        print(f"setup_check: {failure}", file=sys.stderr)
    if not failures:
        print("setup_check: rclpy, torch, mujoco, pymunk and headless EGL rendering OK")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
