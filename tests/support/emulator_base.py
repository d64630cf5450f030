"""What every device emulator shares: a background thread serving a pty, started and stopped the same way."""

from __future__ import annotations

import threading


class ThreadedEmulator:
    """Runs `self._serve()` in a daemon thread between `start()` and `stop()`; usable as a context manager.

    Subclasses implement `_serve()` (loop until `self._stop_requested.is_set()`), and may override
    `_on_start()` (before the thread starts) and `_on_stop()` (after it ended: close file descriptors).
    """

    thread_name = "emulator"

    def start(self):
        self._stop_requested = threading.Event()
        self._on_start()
        self._thread = threading.Thread(target=self._serve, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop_requested.set()
        if getattr(self, "_thread", None) is not None:
            self._thread.join(timeout=5)
        self._on_stop()

    def _on_start(self):
        pass

    def _on_stop(self):
        pass

    def _serve(self):
        raise NotImplementedError

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
