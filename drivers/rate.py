"""Event rate over a sliding one-second window (loop rate, camera fps)."""

from __future__ import annotations

from collections import deque


class RateMeter:
    def __init__(self, window_s: float = 1.0):
        self.window_s = window_s
        self._times: deque[float] = deque()
        self.rate = 0.0

    def tick(self, now: float) -> float:
        t = self._times
        t.append(now)
        while t and now - t[0] > self.window_s:
            t.popleft()
        if len(t) > 1 and t[-1] > t[0]:
            self.rate = (len(t) - 1) / (t[-1] - t[0])
        return self.rate
