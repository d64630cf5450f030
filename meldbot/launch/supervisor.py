"""Start a launch plan's processes and supervise them the way ros2 launch does.

- every child runs in its own process group (a signal reaches what it spawned, and a Ctrl-C in the
  terminal reaches only the runner, which then shuts the children down in order);
- output "screen": each line prefixed ``[label]``; "log": both streams to ``LOG_DIR/label.log`` and
  stderr also to the screen (as ROS's default 'log'); "both": screen and file;
- shutdown (Ctrl-C/SIGTERM to the runner, or an ``on_exit: shutdown`` process ending): SIGINT to each
  running child, SIGTERM after its ``sigterm_timeout``, SIGKILL after ``sigkill_timeout``; a second
  Ctrl-C skips to the next stage.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TextIO

from meldbot.launch.model import ProcessSpec


def _parent_death_signal():
    """preexec_fn: on Linux, SIGTERM the child if the runner dies without shutting it down (kill -9)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec():  # runs between fork and exec: keep it to one libc call
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec


_PREEXEC = _parent_death_signal() if sys.platform.startswith("linux") else None


def default_log_dir() -> Path:
    """``$ROS_LOG_DIR`` or ``$ROS_HOME/log`` or ``~/.ros/log``, plus one folder per launch."""
    base = os.environ.get("ROS_LOG_DIR") or os.path.join(
        os.environ.get("ROS_HOME") or os.path.join(os.path.expanduser("~"), ".ros"), "log")
    stamp = datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
    return Path(base) / f"meldbot-launch-{stamp}-{os.getpid()}"


def exit_status(returncode: int) -> int:
    """A shell-style exit status: a child killed by signal N counts as 128+N."""
    return 128 - returncode if returncode < 0 else returncode


class _Child:
    def __init__(self, spec: ProcessSpec):
        self.spec = spec
        self.popen: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.log: TextIO | None = None
        self.readers: list[threading.Thread] = []
        self.stage_at: float | None = None  # when the last shutdown signal was sent
        self.stage = 0  # 0 none sent, 1 SIGINT, 2 SIGTERM, 3 SIGKILL

    @property
    def running(self) -> bool:
        return self.popen is not None and self.returncode is None


class Supervisor:
    """Runs processes until they all ended; returns the runner's exit status."""

    def __init__(self, processes: list[ProcessSpec], log_dir: Path | None = None,
                 out: TextIO | None = None, err: TextIO | None = None):
        self.specs = list(processes)
        self.log_dir = Path(log_dir) if log_dir else default_log_dir()
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.children: list[_Child] = []
        self.events: queue.Queue = queue.Queue()
        self.signals: list[int] = []  # appended by the signal handler, drained by the main loop
        self.lock = threading.Lock()
        self.shutting_down = False
        self.exit_code: int | None = None

    # --- output ------------------------------------------------------------------------------------
    def _print(self, text: str, stream: TextIO | None = None):
        with self.lock:
            stream = stream or self.out
            try:
                stream.write(text + "\n")
                stream.flush()
            except (OSError, ValueError):  # our stdout is gone (closed pipe): keep draining the children
                pass

    def notice(self, label: str, message: str, level: str = "INFO"):
        self._print(f"[{level}] [{label}]: {message}", self.err if level == "ERROR" else self.out)

    def _reader(self, child: _Child, pipe, to_screen: bool, screen: TextIO):
        prefix = f"[{child.spec.label}] "
        for raw in iter(pipe.readline, b""):
            line = raw.decode(errors="replace").rstrip("\r\n")
            with self.lock:
                if child.log is not None and not child.log.closed:  # closed: exited, a grandchild still writes
                    child.log.write(line + "\n")
                    child.log.flush()
            if to_screen:
                self._print(prefix + line, screen)
        pipe.close()

    # --- processes ----------------------------------------------------------------------------------
    def _start(self, spec: ProcessSpec):
        child = _Child(spec)
        self.children.append(child)
        if spec.output in ("log", "both"):
            self.log_dir.mkdir(parents=True, exist_ok=True)
            child.log = open(self.log_dir / f"{spec.label}.log", "w")
        try:
            child.popen = subprocess.Popen(spec.argv, env=spec.env, cwd=spec.cwd, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                           preexec_fn=_PREEXEC)
        except OSError as exc:
            self.notice(spec.label, f"failed to start {spec.argv[0]!r}: {exc.strerror or exc}", "ERROR")
            child.popen = None
            self.events.put(("exit", child, 127))
            return
        where = f" (output in {self.log_dir / (spec.label + '.log')})" if spec.output == "log" else ""
        self.notice(spec.label, f"process started with pid [{child.popen.pid}]{where}")
        streams = ((child.popen.stdout, spec.output != "log", self.out), (child.popen.stderr, True, self.err))
        for pipe, to_screen, screen in streams:
            t = threading.Thread(target=self._reader, args=(child, pipe, to_screen, screen), daemon=True)
            t.start()
            child.readers.append(t)
        threading.Thread(target=self._waiter, args=(child,), daemon=True).start()

    def _waiter(self, child: _Child):
        rc = child.popen.wait()
        for t in child.readers:  # print everything it wrote before its exit notice
            t.join(timeout=5.0)  # bound: a grandchild may keep the pipe open
        self.events.put(("exit", child, rc))

    def _signal(self, child: _Child, sig: int):
        if child.running:
            try:
                os.killpg(child.popen.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def _on_exit(self, child: _Child, rc: int):
        child.returncode = rc
        if child.log is not None:
            with self.lock:
                child.log.close()
        pid = child.popen.pid if child.popen else "-"
        if rc == 0:
            self.notice(child.spec.label, f"process has finished cleanly [pid {pid}]")
        else:
            how = f"signal {-rc}" if rc < 0 else f"exit code {rc}"
            level = "INFO" if self.shutting_down and rc in (-signal.SIGINT, -signal.SIGTERM) else "ERROR"
            self.notice(child.spec.label, f"process has died [pid {pid}, {how}, cmd '{' '.join(child.spec.argv)}']",
                        level)
        if child.spec.shutdown_on_exit and not self.shutting_down:
            self.exit_code = exit_status(rc)
            self.notice("launch", f"process [{child.spec.label}] has on_exit: shutdown: shutting down launched system")
            self._begin_shutdown()

    # --- shutdown -----------------------------------------------------------------------------------
    def _begin_shutdown(self):
        if not self.shutting_down:
            self.shutting_down = True
            self._advance(force=False)

    def _advance(self, force: bool):
        """Send each running child its next shutdown signal if it is due (or now, if forced)."""
        now = time.monotonic()
        for child in self.children:
            if not child.running:
                continue
            if child.stage == 0:
                child.stage, child.stage_at = 1, now
                self._signal(child, signal.SIGINT)
                continue
            timeout = child.spec.sigterm_timeout if child.stage == 1 else child.spec.sigkill_timeout
            if child.stage < 3 and (force or now - child.stage_at >= timeout):
                child.stage, child.stage_at = child.stage + 1, now
                sig = signal.SIGTERM if child.stage == 2 else signal.SIGKILL
                self.notice(child.spec.label, f"sending {signal.Signals(sig).name} (still running)", "WARN")
                self._signal(child, sig)

    def _handle_signal(self, signum, _frame):
        self.signals.append(signum)

    # --- main loop -----------------------------------------------------------------------------------
    def run(self) -> int:
        if not self.specs:
            self.notice("launch", "no processes to start")
            return 0
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, self._handle_signal)
        try:
            if any(s.output in ("log", "both") for s in self.specs):
                self.notice("launch", f"All log files can be found below {self.log_dir}")
            for spec in self.specs:
                if self.signals or self.shutting_down:
                    break
                self._start(spec)
                self._drain(block=False)
            while any(c.running or (c.popen is None and c.returncode is None) for c in self.children):
                self._drain(block=True)
        finally:
            for sig, old in handlers.items():
                signal.signal(sig, old)
        if self.exit_code is not None:
            return self.exit_code
        if self.shutting_down:
            return 0  # stopped on request
        failed = [exit_status(c.returncode) for c in self.children if c.returncode]
        return failed[0] if failed else 0

    def _drain(self, block: bool):
        try:
            _, child, rc = self.events.get(timeout=0.1) if block else self.events.get_nowait()
            self._on_exit(child, rc)
        except queue.Empty:
            pass
        while self.signals:
            signum = self.signals.pop(0)
            if not self.shutting_down:
                self.notice("launch", f"caught {signal.Signals(signum).name}: shutting down")
                self.shutting_down = True
                self._advance(force=False)
            else:
                self.notice("launch", f"caught {signal.Signals(signum).name} again: escalating")
                self._advance(force=True)
        if self.shutting_down:
            self._advance(force=False)


def run_plan(processes: list[ProcessSpec], log_dir: Path | None = None) -> int:
    """Start and supervise `processes`; returns the runner's exit status."""
    return Supervisor(processes, log_dir).run()
