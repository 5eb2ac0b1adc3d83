"""The life of an outbound message, and what follows each answer from Meta (pure).

::

    pending ──► sending ──► sent            (Meta answered 200: its wamid stored)
       ▲           │  └───► unknown         (5xx, timeout, crash mid-call: Meta may have
       │           │           │             sent it; a status carrying our id settles it)
       └───────────┘◄──────────┘            (retryable failure, or nothing heard: again)
                   └──────► dead            (terminal error or retries spent: the DLQ)
                              ├──► pending  (replayed by an operator, every check passed again)
                              └──► discarded (deleted by an operator)

A status webhook carrying our id settles a message as ``sent`` from any
state but ``discarded`` (the answer to the call was lost or came after the
status; an unsure outcome may even have been dead-lettered meanwhile: Meta's
word is the record). :data:`MOVES` is the table; the store refuses any
other move.

:func:`after_failure` is the one decision the outbound worker takes on a
failed call: the class of Meta's answer (:mod:`send_errors`), whether it
says the number works (for its breaker), and what next — send again after
a delay, wait for a status first (an unsure outcome), or the dead-letter
queue. Meta's code 1 ("unknown API error") is tried again once only
(:data:`send_errors.RETRY_ONCE`): a second code 1 in a row is final.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from lawhub_actors.core.retry import backoff_delay
from lawhub_actors.core.send_errors import RETRY_ONCE, SendClass, classify_send, recipient_backoff


class SendState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    UNKNOWN = "unknown"
    SENT = "sent"
    DEAD = "dead"
    DISCARDED = "discarded"


MOVES: dict[SendState, frozenset[SendState]] = {
    SendState.PENDING: frozenset({SendState.SENDING, SendState.SENT, SendState.DEAD}),
    # sending -> sending: the process stopped mid-call and the message goes again.
    SendState.SENDING: frozenset({SendState.SENDING, SendState.SENT, SendState.UNKNOWN,
                                  SendState.PENDING, SendState.DEAD}),
    SendState.UNKNOWN: frozenset({SendState.SENDING, SendState.SENT, SendState.DEAD}),
    SendState.SENT: frozenset({SendState.SENT}),  # a repeated answer or status: no change
    # dead -> sent: Meta's status says it went after all (an unsure outcome dead-lettered).
    SendState.DEAD: frozenset({SendState.PENDING, SendState.DISCARDED, SendState.SENT}),
    SendState.DISCARDED: frozenset(),
}
"""From each state, the states a message may move to."""

FINISHED: frozenset[SendState] = frozenset({SendState.SENT, SendState.DEAD,
                                            SendState.DISCARDED})
"""Nothing more is sent: a worker that meets one of these lets the message go."""
UNFINISHED: tuple[SendState, ...] = tuple(s for s in SendState if s not in FINISHED)
"""Taken up again at every start."""
UNSURE: frozenset[SendState] = frozenset({SendState.SENDING, SendState.UNKNOWN})
"""Once attempted, Meta may have sent it: a status gets a grace period first."""


def may_move(old: SendState, new: SendState) -> bool:
    return new in MOVES[old]


class IllegalMove(Exception):
    """A move :data:`MOVES` does not allow (a bug, or a race lost)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The ``[retry]`` settings, as the decision needs them."""

    max_attempts: int
    base_s: float
    max_s: float
    settle_grace_s: float


@dataclass(frozen=True, slots=True)
class Failure:
    """Meta's answer to one call that did not send: its HTTP status (None:
    no answer) and ``error.code``."""

    status: int | None
    code: int | None
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class SendAgain:
    """Move to ``state`` (pending, or unknown: wait for a status first) and
    take the message up again after ``delay_s``."""

    state: SendState
    delay_s: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    """``terminal`` or ``retries_exhausted``."""


@dataclass(frozen=True, slots=True)
class Decision:
    kind: SendClass
    number_works: bool
    """The answer shows the number and its token work (a success for its breaker)."""
    trip: bool
    """The token or the account is broken: open the number's breaker now."""
    then: SendAgain | DeadLetter


def after_failure(failure: Failure, *, attempts: int, previous_code: int | None,
                  policy: RetryPolicy, uniform: Callable[[], float]) -> Decision:
    """What follows a failed call, the ``attempts``-th (1-based); the code
    Meta gave the attempt before, if any."""
    kind = classify_send(failure.status, failure.code, timed_out=failure.timed_out)
    # A terminal error about this message, or the pair rate of this recipient,
    # says the number and its token work (it also answers a half-open probe).
    number_works = kind in (SendClass.RETRY_RECIPIENT, SendClass.TERMINAL)
    trip = kind is SendClass.TERMINAL_BREAK
    once_already = failure.code in RETRY_ONCE and failure.code == previous_code
    then: SendAgain | DeadLetter
    if kind in (SendClass.TERMINAL, SendClass.TERMINAL_BREAK):
        then = DeadLetter("terminal")
    elif attempts >= policy.max_attempts or once_already:
        then = DeadLetter("retries_exhausted")
    elif kind is SendClass.UNKNOWN_OUTCOME:
        then = SendAgain(SendState.UNKNOWN, grace_s(attempts, policy))
    elif kind is SendClass.RETRY_RECIPIENT:
        then = SendAgain(SendState.PENDING, recipient_backoff(attempts - 1))
    else:
        then = SendAgain(SendState.PENDING,
                         backoff_delay(attempts - 1, policy.base_s, policy.max_s, uniform))
    return Decision(kind, number_works, trip, then)


def grace_s(attempts: int, policy: RetryPolicy) -> float:
    """How long an unsure outcome waits for its status webhook before the
    message is sent again: never less than ``settle_grace_s``, longer as
    attempts grow."""
    backoff = min(policy.max_s, policy.base_s * 2.0 ** max(attempts - 1, 0))
    return max(policy.settle_grace_s, backoff)
