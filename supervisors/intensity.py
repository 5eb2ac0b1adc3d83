"""Restart intensity: how many restarts a supervisor tolerates in a period.

Pure bookkeeping over a monotonic clock the caller passes in (OTP's
``add_restart``): ``add`` records one restart and answers whether the
supervisor may go on. More than ``max_restarts`` within ``period_s`` means
no: the supervisor must give up and escalate.
"""

from __future__ import annotations

from collections import deque


class RestartIntensity:
    def __init__(self, max_restarts: int, period_s: float) -> None:
        self.max_restarts = max_restarts
        self.period_s = period_s
        self._times: deque[float] = deque()

    def add(self, now: float) -> bool:
        """Record a restart at ``now``; ``False`` when the limit is exceeded."""
        self._times.append(now)
        self._expire(now)
        return len(self._times) <= self.max_restarts

    def count(self, now: float) -> int:
        """Restarts within the period ending at ``now``."""
        self._expire(now)
        return len(self._times)

    def retune(self, max_restarts: int, period_s: float) -> None:
        """Adopt new limits, keeping the restarts already recorded."""
        self.max_restarts = max_restarts
        self.period_s = period_s

    def _expire(self, now: float) -> None:
        horizon = now - self.period_s
        while self._times and self._times[0] <= horizon:
            self._times.popleft()


class RecentRestarts:
    """Per-child counterpart: restarts of one child within the period (for
    backoff and for operators), plus the lifetime total."""

    def __init__(self) -> None:
        self.total = 0
        self._times: deque[float] = deque()

    def add(self, now: float) -> None:
        self.total += 1
        self._times.append(now)

    def within(self, now: float, period_s: float) -> int:
        horizon = now - period_s
        while self._times and self._times[0] <= horizon:
            self._times.popleft()
        return len(self._times)
