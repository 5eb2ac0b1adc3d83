"""Generic cell rate algorithm as *reservation* (pure).

A sender asks for a permit and waits its turn: every request is granted,
with a start time. So the achieved rate equals the limit under load, and
never exceeds it — unlike a "try, refuse, retry later" limiter, which
undershoots (the retry lands late) and lets callers race.

Rules (ITU-T I.371 GCRA, "virtual scheduling" form; FACTS.md "Limits"):

- A :class:`Rate` is an emission interval ``T = 1 / per_second`` and a
  burst: ``burst`` permits may go back to back after an idle period, the
  tolerance being ``tau = (burst - 1) * T``.
- The only state is the *theoretical arrival time* ``tat`` of the next
  permit (``None`` = never used, which behaves as ``tat = now``).
- :func:`reserve` at ``now``: the permit may start at
  ``start_at = max(now, tat - tau)`` and the stored ``tat`` becomes
  ``max(tat, now) + T``. Each reservation pushes ``tat`` by at least ``T``;
  hence in any window of length ``W`` at most ``burst + W / T`` permits
  start — from an idle state, ``burst`` at once, then exactly ``T`` apart.
- Idle time is credit up to ``tau`` only: ``max(tat, now)`` forgets the rest.
- A clock that goes backwards (``now`` below an earlier ``now``) never
  grants more: ``start_at`` still respects ``tat - tau``.
- Times are floats, so ``tat`` carries rounding (``0.0125`` added 80 times
  is not exactly ``1.0``). A start due within ``SLACK_S`` (1 µs) of ``now``
  counts as ``now``: otherwise the last permits of a burst would "wait"
  a few ulps and :func:`allowed_now` would say no for a wait of 1e-16 s.
  The slack never accumulates (``tat`` still moves by ``T``), so no window
  gains more than ``SLACK_S * per_second`` of a permit from it.
- Pass times of moderate size (a monotonic clock, or seconds since a recent
  origin): at Unix-epoch size (1.7e9) a float resolves only 0.24 µs, and a
  1,000/s interval computed there is off by up to ~0.3 %.
- A reservation is a commitment: the caller stores the new ``tat`` and uses
  its permit at ``start_at``. A permit given up is lost capacity, never
  excess rate.

The same arithmetic can run in Redis (a Lua script) when several processes
share one limit; this module is its reference.

Examples: Meta's throughput, 80 msg/s → ``Rate(80.0)`` (``T`` = 12.5 ms);
Meta's pair rate, one message per 6 s to a user with bursts up to 45 →
``Rate.every(6.0, burst=45)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SLACK_S: float = 1e-6
"""A start due this close to ``now`` is due now (float rounding, not a wait)."""


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_second`` permits per second on average, ``burst`` back to back."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.per_second) and self.per_second > 0):
            raise ValueError(f"per_second must be a positive finite number, not {self.per_second}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, not {self.burst}")

    @property
    def interval(self) -> float:
        """``T``: seconds between two permits at the steady rate."""
        return 1.0 / self.per_second

    @property
    def tolerance(self) -> float:
        """``tau``: how far ahead of ``tat`` a permit may start."""
        return (self.burst - 1) * self.interval

    @classmethod
    def every(cls, seconds: float, burst: int = 1) -> Rate:
        """One permit every ``seconds`` (e.g. ``Rate.every(6.0, burst=45)``)."""
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"seconds must be a positive finite number, not {seconds}")
        return cls(1.0 / seconds, burst)


@dataclass(frozen=True, slots=True)
class Reservation:
    """A granted permit: use it at ``start_at``; store ``tat`` for the next one."""

    start_at: float
    tat: float

    def wait(self, now: float) -> float:
        """Seconds to wait at ``now`` before using the permit (0.0 when due)."""
        return max(0.0, self.start_at - now)


def reserve(tat: float | None, now: float, rate: Rate) -> Reservation:
    """Reserve the next permit at ``now`` given the stored ``tat``."""
    current = now if tat is None else tat
    earliest = current - rate.tolerance
    return Reservation(
        start_at=now if earliest <= now + SLACK_S else earliest,
        tat=max(current, now) + rate.interval,
    )


def allowed_now(tat: float | None, now: float, rate: Rate) -> bool:
    """Whether a permit reserved at ``now`` would start immediately."""
    return tat is None or tat - rate.tolerance <= now + SLACK_S
