"""Process supervision through the real `meldbot launch` command: Ctrl-C, on_exit shutdown, output routing.

The children are tiny Python stand-ins (fixtures/child.py); waits are generous bounds, never timings.
"""

import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
GRAPH = FIXTURES / "children.launch.yaml"


def wait_until(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def start_launch(ros_graph, tmp_path, *launch_args):
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "meldbot.cli", "launch", str(GRAPH), f"py:={sys.executable}", f"dir:={scratch}",
            *launch_args, "--log-dir", str(tmp_path / "logs")]
    return ros_graph.start(argv, "launch"), scratch


def interrupt_when_ready(ros_graph, tmp_path, *launch_args, sig=signal.SIGINT) -> str:
    """Launch alpha and beta, Ctrl-C (or `sig`) the runner once both are up; returns the runner's output."""
    runner, scratch = start_launch(ros_graph, tmp_path, *launch_args)
    wait_until(lambda: all((scratch / f"{n}.ready").exists() for n in ("alpha", "beta")), what="children ready")
    runner.signal(sig)  # SIGINT: what a Ctrl-C in the terminal delivers to the runner
    assert runner.wait(60) == 0
    return runner.output()


def test_ctrl_c_stops_every_child_cleanly(ros_graph, tmp_path):
    out = interrupt_when_ready(ros_graph, tmp_path)
    assert "caught SIGINT: shutting down" in out
    assert "[alpha-1] alpha got SIGINT" in out  # screen output, prefixed
    assert "[INFO] [alpha-1]: process has finished cleanly" in out
    assert "[INFO] [beta-1]: process has finished cleanly" in out
    beta_log = (tmp_path / "logs" / "beta-1.log").read_text()
    assert "beta ready" in beta_log and "beta got SIGINT" in beta_log
    pids = [int(p) for p in re.findall(r"process started with pid \[(\d+)\]", out)]
    assert len(pids) == 2
    for pid in pids:  # reaped by the runner: nothing left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_on_exit_shutdown_stops_the_others_and_returns_its_code(ros_graph, tmp_path):
    runner, scratch = start_launch(ros_graph, tmp_path, "with_judge:=true")
    assert runner.wait(60) == 3
    out = runner.output()
    assert "[judge-1] judge exiting with 3" in out
    assert "process [judge-1] has on_exit: shutdown: shutting down launched system" in out
    assert "[alpha-1] alpha got SIGINT" in out
    assert "beta got SIGINT" in (tmp_path / "logs" / "beta-1.log").read_text()


def test_output_screen_is_prefixed_and_log_goes_to_file(ros_graph, tmp_path):
    out = interrupt_when_ready(ros_graph, tmp_path)
    assert "[alpha-1] alpha ready" in out
    assert "[alpha-1] alpha says hello on stderr" in out
    assert "beta ready" not in out  # output: log keeps stdout off the screen...
    assert "[beta-1] beta says hello on stderr" in out  # ...but shows stderr, as ros2 launch does
    assert "[INFO] [beta-1]: process started with pid" in out and "beta-1.log" in out
    beta_log = (tmp_path / "logs" / "beta-1.log").read_text()
    assert "beta ready" in beta_log and "beta says hello on stderr" in beta_log


def test_sigterm_to_runner_and_a_child_ignoring_sigint_gets_sigterm(ros_graph, tmp_path):
    out = interrupt_when_ready(ros_graph, tmp_path, "stubborn:=true", sig=signal.SIGTERM)
    assert "caught SIGTERM: shutting down" in out
    assert "[alpha-1] alpha got SIGINT" in out
    assert "[WARN] [alpha-1]: sending SIGTERM (still running)" in out
    assert "[alpha-1] alpha got SIGTERM" in out
