"""Messages between the application's actors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

from lawhub_actors.core.events import Event, InboundMessage, PreferenceUpdate, StatusUpdate

Routable: TypeAlias = InboundMessage | StatusUpdate | PreferenceUpdate
"""The updates the dispatcher routes to a conversation's shard; the rest
(account errors, changes not processed yet) are recorded where they arrive."""


@dataclass(frozen=True, slots=True)
class JournalAdvanced:
    """The journal committed up to ``seq``: read what is new."""

    seq: int


@dataclass(frozen=True, slots=True)
class InFlight:
    """Ask the dispatcher: how many of the tenant's updates are handed out or
    left behind there (a removed tenant's actors retire only once none are)."""

    tenant: str


@dataclass(frozen=True, slots=True)
class Inbound:
    """One normalized webhook update for a conversation's shard."""

    journal_seq: int
    event: Routable
    epoch: int | None = None
    """The epoch of the conversation's partition it was handed out under:
    its writes are fenced by it (None: by the epoch held when they run)."""


@dataclass(frozen=True, slots=True)
class InboundBatch:
    """Updates for one shard, handled in order and committed together."""

    items: tuple[Inbound, ...]

    @classmethod
    def of(cls, items: list[Inbound]) -> InboundBatch:
        return cls(tuple(items))

    def updates(self) -> tuple[tuple[int, str], ...]:
        """(journal seq, dedupe key) of what this settles."""
        return tuple((item.journal_seq, item.event.dedupe_key) for item in self.items)


@dataclass(frozen=True, slots=True)
class Processed:
    """An update is settled: durable with every effect (or found already so),
    or given up after its handler kept crashing (``failed`` says why), or
    refused because its partition is no longer this node's (``fenced``:
    nothing of it was written; its new owner does it)."""

    journal_seq: int
    dedupe_key: str
    failed: str | None = None
    fenced: bool = False
    epoch: int | None = None
    """Of a fenced one: the epoch its copy was handed out under (a copy handed
    out before the partitions held changed is not the one waiting now)."""


@dataclass(frozen=True, slots=True)
class OwnershipChanged:
    """The partitions this node holds changed: read again from their cursors."""


@dataclass(frozen=True, slots=True)
class Settled:
    """Several updates settled at once (a shard's batch): one message back
    to the dispatcher per batch, not one per update."""

    items: tuple[Processed, ...]


@dataclass(frozen=True, slots=True)
class Classify:
    """Classify a stored message; ``masked`` already had PII replaced.

    The assist worker settles the update (``Processed`` to the dispatcher)
    once the result is durable: the conversation waits until then."""

    tenant: str
    customer: str
    wamid: str
    message_id: str
    masked: object  # lawhub_actors.core.masking.MaskedText
    journal_seq: int
    dedupe_key: str
    phone_number_id: str = ""
    """The number the message came to: an urgent intake's acknowledgement goes from it."""
    at: int = 0
    """Meta's timestamp of the message."""
    epoch: int | None = None
    """The partition's epoch its update was handed out under (fencing)."""

    def updates(self) -> tuple[tuple[int, str], ...]:
        """(journal seq, dedupe key) of what this settles."""
        return ((self.journal_seq, self.dedupe_key),)


@runtime_checkable
class SettlesUpdates(Protocol):
    """A message whose handling settles updates: when its handler keeps
    crashing on it (a dead letter), they are settled as failed instead."""

    def updates(self) -> tuple[tuple[int, str], ...]: ...


def takes_slow_step(event: Event, *, remote_classifier: bool) -> bool:
    """Whether the update is settled by a slow step after its shard stored it:
    checking its media, or classifying its text when the classifier is
    remote (the built-in rules run inline in the shard's transaction).

    The dispatcher parks the rest of that conversation until the update is
    settled, so everything about one conversation stays in order while other
    conversations go on; the shard hands such an update on instead of
    settling it itself. Both ask this one function.
    """
    if not isinstance(event, InboundMessage):
        return False
    return event.media is not None or (remote_classifier and bool(event.text))
