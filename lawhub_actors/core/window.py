"""The 24-hour customer-service window (pure).

Rules (Meta, FACTS.md "24-hour window"):

- Every message (or call) from the customer opens the window, or refreshes
  it, for 24 hours from that message.
- Inside the window the business may send anything (freeform text, media,
  interactive); outside it only an approved template (freeform → 131047).
- The window is half-open: ``[last_inbound, last_inbound + 24 h)``. At
  exactly 24 hours it is closed — the edge errs towards a template, which
  Meta always accepts, rather than a freeform send Meta would refuse.
- A customer message stamped a little *after* our clock (clock skew) still
  opens the window: it proves the customer wrote, so the window is open.
- No inbound message ever (``None``), or a timestamp that is not a finite
  number, means no window.

Timestamps are seconds since the epoch (Meta sends them as strings of
seconds); time is an argument, never read here.
"""

from __future__ import annotations

import math

WINDOW_S: float = 24 * 60 * 60
"""Length of the customer-service window in seconds."""


def open_until(last_inbound_ts: float) -> float:
    """The first instant at which the window opened by ``last_inbound_ts`` is closed."""
    return last_inbound_ts + WINDOW_S


def allows_freeform(last_inbound_ts: float | None, now: float) -> bool:
    """Whether a non-template message may be sent at ``now``."""
    if last_inbound_ts is None or not math.isfinite(last_inbound_ts) or not math.isfinite(now):
        return False
    return now < open_until(last_inbound_ts)


def remaining(last_inbound_ts: float | None, now: float) -> float:
    """Seconds of freeform sending left at ``now`` (0.0 when the window is closed)."""
    if last_inbound_ts is None or not allows_freeform(last_inbound_ts, now):
        return 0.0
    return min(WINDOW_S, open_until(last_inbound_ts) - now)


def refresh(last_inbound_ts: float | None, inbound_ts: float) -> float:
    """The window's anchor after another customer message at ``inbound_ts``.

    Meta does not guarantee webhook order, so an older message arriving late
    never shortens the window: the anchor is the latest inbound timestamp.
    """
    if last_inbound_ts is None or not math.isfinite(last_inbound_ts):
        return inbound_ts
    return max(last_inbound_ts, inbound_ts)
