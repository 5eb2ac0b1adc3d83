"""Retrying what failed on Meta's side (pure): how long to wait.

Exponential backoff with *full jitter* (AWS Architecture Blog, "Exponential
Backoff And Jitter"): attempt ``n`` (0-based) waits a uniform draw from
``[0, min(max_s, base_s * 2**n)]``. Full jitter spreads the retries of many
callers that failed together (Meta answering 5xx to every worker at once)
instead of having them return in lockstep. The random source is an
argument so tests pin it.
"""

from __future__ import annotations

from collections.abc import Callable


def backoff_delay(
    attempt: int, base_s: float, max_s: float, uniform: Callable[[], float]
) -> float:
    """Seconds to wait before retry ``attempt`` (0 = the first retry);
    ``uniform`` returns a float in ``[0, 1)``."""
    ceiling = min(max_s, base_s * 2.0 ** min(max(attempt, 0), 64))
    return ceiling * uniform()
