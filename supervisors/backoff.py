"""Restart delay (pure): exponential in recent restarts, capped, jittered.

The nominal delay is ``min_s * multiplier**n``, capped at ``max_s``. Jitter
draws the actual delay uniformly from the band ``nominal * [1 - j, 1 + j]``
*clipped to* ``[min_s, max_s]`` — clipping the band rather than the drawn
value keeps the spread at the edges: restarts of siblings that failed
together are spread over ``[min_s, min_s * (1 + j)]`` instead of half of
them landing exactly on ``min_s``. The random source is an argument so
tests pin it.
"""

from __future__ import annotations

from collections.abc import Callable

from supervisors.spec import Backoff


def restart_delay(backoff: Backoff, recent_restarts: int, uniform: Callable[[], float]) -> float:
    """Seconds to wait before restart number ``recent_restarts`` (0-based)
    within the current period. ``uniform`` returns a float in ``[0, 1)``."""
    steps = max(recent_restarts, 0)
    # Cap the exponent: past ~64 doublings the result is max_s anyway.
    nominal = min(backoff.max_s, backoff.min_s * backoff.multiplier ** min(steps, 64))
    low = max(backoff.min_s, nominal * (1.0 - backoff.jitter))
    high = min(backoff.max_s, nominal * (1.0 + backoff.jitter))
    return low + (high - low) * uniform()
