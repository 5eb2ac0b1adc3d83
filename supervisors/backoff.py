"""Restart delay (pure): exponential in recent restarts, capped, jittered.

The random source is an argument so tests pin it. With ``jitter=j`` the
delay is multiplied by a factor drawn from ``[1 - j, 1 + j]`` and then kept
within ``[min_s, max_s]``.
"""

from __future__ import annotations

from collections.abc import Callable

from supervisors.spec import Backoff


def restart_delay(backoff: Backoff, recent_restarts: int, uniform: Callable[[], float]) -> float:
    """Seconds to wait before restart number ``recent_restarts`` (0-based)
    within the current period. ``uniform`` returns a float in ``[0, 1)``."""
    steps = max(recent_restarts, 0)
    # Cap the exponent: past ~64 doublings the result is max_s anyway.
    raw = backoff.min_s * backoff.multiplier ** min(steps, 64)
    factor = 1.0 + backoff.jitter * (2.0 * uniform() - 1.0)
    return min(backoff.max_s, max(backoff.min_s, raw * factor))
