"""What to do after ``POST /{phone_number_id}/messages`` failed (pure).

Meta says to branch on ``error.code``, not on the HTTP status (its old HTTP
tables disagree), so a *known* code decides and the status is only the
fallback (FACTS.md "Error codes"). The codes, as data in ``_TABLE``:

- ``retry`` (backoff with full jitter): 1, 2, 4, 80007, 130429, 131000,
  131016, 131057, 133004.
- ``retry_recipient``: 131056 (pair rate) — only that recipient waits
  ``4**n`` s (1, 4, 16, 64, …); the others go on.
- ``terminal_break`` (dead-letter queue *and* open the number's breaker —
  the token or the account is broken): 0, 3, 10, 190, 200-299, 368, 131031,
  131042, 131045, 131048, 133010.
- ``terminal`` (dead-letter queue): 100, 130403, 130472, 131008, 131009,
  131021, 131026, 131047, 131049, 131050, 131051, 131053, 132000-132099
  (template errors), 135000.

No code, or one not in the table:

- no HTTP answer at all (``status is None``: transport error, timeout) →
  ``retry``; 429 → ``retry``;
- 5xx → ``unknown_outcome``: Meta may have sent the message. Record that
  and let the status webhook carrying our id settle it, rather than
  retrying into a double send;
- any other 4xx → ``terminal``;
- anything else (a 1xx/2xx/3xx that is not a success with a message id) is
  an answer we cannot read → ``unknown_outcome`` too.

Code 1 ("API unknown") is worth one retry only (FACTS.md): ``RETRY_ONCE``.
What follows a failure, with its delay, is decided in
:func:`lawhub_actors.core.send_lifecycle.after_failure`.
"""

from __future__ import annotations

from enum import StrEnum


class SendClass(StrEnum):
    RETRY = "retry"
    RETRY_RECIPIENT = "retry_recipient"
    TERMINAL = "terminal"
    TERMINAL_BREAK = "terminal_break"
    UNKNOWN_OUTCOME = "unknown_outcome"


_TABLE: tuple[tuple[SendClass, tuple[int, ...] | range], ...] = (
    (SendClass.RETRY, (1, 2, 4, 80007, 130429, 131000, 131016, 131057, 133004)),
    (SendClass.RETRY_RECIPIENT, (131056,)),
    (SendClass.TERMINAL_BREAK, (0, 3, 10, 190, 368, 131031, 131042, 131045, 131048, 133010)),
    (SendClass.TERMINAL_BREAK, range(200, 300)),  # permissions
    (SendClass.TERMINAL, (100, 130403, 130472, 131008, 131009, 131021, 131026, 131047)),
    (SendClass.TERMINAL, (131049, 131050, 131051, 131053, 135000)),
    (SendClass.TERMINAL, range(132000, 132100)),  # template errors
)

_CODES: dict[int, SendClass] = {code: cls for cls, codes in _TABLE for code in codes}

RETRY_ONCE: frozenset[int] = frozenset({1})
"""Codes retried at most once (Meta's "unknown API error" rarely clears)."""


def classify_send(status: int | None, code: int | None, *, timed_out: bool = False) -> SendClass:
    """Class of a failed send from its HTTP ``status`` and Meta's ``error.code``.

    Whether Meta sent the message is unknown after a 5xx or an answer that
    timed out (the request may have arrived): a class that would retry is
    then ``unknown_outcome`` — wait for a status webhook carrying our id
    before sending again, so a retry never doubles a message."""
    cls = _by_code_then_status(status, code)
    unsure = timed_out or (status is not None and status >= 500)
    return SendClass.UNKNOWN_OUTCOME if unsure and cls is SendClass.RETRY else cls


def _by_code_then_status(status: int | None, code: int | None) -> SendClass:
    if code is not None and code in _CODES:
        return _CODES[code]
    if status is None or status == 429:
        return SendClass.RETRY
    if 400 <= status < 500:
        return SendClass.TERMINAL
    return SendClass.UNKNOWN_OUTCOME


def recipient_backoff(attempt: int) -> float:
    """Seconds before pair-rate retry ``attempt`` (0-based): 1, 4, 16, 64, …"""
    return 4.0 ** min(max(attempt, 0), 64)
