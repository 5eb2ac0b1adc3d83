"""Monotonic merge of an outbound message's delivery status (pure).

Meta sends ``sent``, ``delivered``, ``read`` (``played`` for voice notes)
and ``failed`` webhooks with no ordering guarantee and with duplicates; a
status may even arrive before our send call returned. The stored status is
therefore a *join*: :func:`merge` is commutative, associative and
idempotent, so every order of the same webhooks ends in the same state and
the state never goes backwards.

The order (rank, lowest first)::

    pending < sent < failed < delivered < read < played

- ``read`` after ``delivered`` moves forward; ``delivered`` after ``read``
  is ignored (a read message is never shown as merely delivered), and so is
  a late ``sent`` after ``delivered``.
- ``played`` (voice notes) counts as read: :func:`counts_as_read` is true
  for both, and ``played`` ranks just above ``read`` so the extra fact
  "listened to" is kept rather than lost to a late ``read``.
- ``failed`` is terminal for the *send*: nothing from the send path
  (``pending``, ``sent``) overrides it, and it carries its Meta error. It
  sits *below* ``delivered`` on purpose. Meta emits ``failed`` after
  ``sent`` but never after ``delivered``; so when both a ``failed`` and a
  ``delivered``/``read`` exist for one message the delivery receipt — a
  fact reported by the recipient's phone — is the stronger evidence, and
  showing "failed" would invite a lawyer to send it twice. The choice has
  to be one way or the other for every arrival order to converge; the
  ignored ``failed`` is still journaled and audited by the caller
  (``merge`` reports ``changed=False`` for it).
- Two ``failed`` with different errors: the one carrying an error wins
  over one without; between two errors the smallest
  ``(code, title, message, details)`` wins — arbitrary, but independent of
  arrival order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """Delivery status of one outbound message, as Meta names it (plus ``pending``)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"


_RANK: dict[Status, int] = {
    Status.PENDING: 0,
    Status.SENT: 1,
    Status.FAILED: 2,
    Status.DELIVERED: 3,
    Status.READ: 4,
    Status.PLAYED: 5,
}


@dataclass(frozen=True, slots=True)
class StatusError:
    """One entry of a ``failed`` status's ``errors`` list."""

    code: int
    title: str = ""
    message: str = ""
    details: str = ""

    def key(self) -> tuple[int, str, str, str]:
        return (self.code, self.title, self.message, self.details)


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """The merged status of one outbound message; ``error`` only with ``failed``."""

    status: Status
    error: StatusError | None = None

    def __post_init__(self) -> None:
        if self.error is not None and self.status is not Status.FAILED:
            raise ValueError(f"only a failed status carries an error, not {self.status}")


PENDING = DeliveryState(Status.PENDING)
"""The state of a message stored before any actor has sent it."""


def parse(name: str) -> Status | None:
    """Meta's status name → :class:`Status`; ``None`` for a name we do not know.

    An unknown name is the caller's to log and ignore — never a crash
    (Meta adds values over time).
    """
    try:
        return Status(name.strip().lower())
    except ValueError:
        return None


def rank(status: Status) -> int:
    """Position of ``status`` in the merge order."""
    return _RANK[status]


def counts_as_read(status: Status) -> bool:
    """Whether the recipient has seen (or, for voice, played) the message."""
    return status in (Status.READ, Status.PLAYED)


def is_final(status: Status) -> bool:
    """Whether no later webhook can change the state any more."""
    return status is Status.PLAYED


def _error_order(error: StatusError | None) -> tuple[bool, tuple[int, str, str, str]]:
    if error is None:
        return (True, (0, "", "", ""))
    return (False, error.key())


def merge(current: DeliveryState, incoming: DeliveryState) -> tuple[DeliveryState, bool]:
    """Join ``incoming`` into ``current``: ``(new_state, changed)``."""
    cur, new = _RANK[current.status], _RANK[incoming.status]
    if new > cur:
        return incoming, True
    if new < cur or incoming == current:
        return current, False
    # Same rank: only two ``failed`` can differ (by their error).
    if _error_order(incoming.error) < _error_order(current.error):
        return incoming, True
    return current, False


def merge_all(current: DeliveryState, incoming: Iterable[DeliveryState]) -> DeliveryState:
    """Fold :func:`merge` over several webhooks."""
    for state in incoming:
        current, _ = merge(current, state)
    return current
