"""Messages between the application's actors."""

from __future__ import annotations

from dataclasses import dataclass

from lawhub_actors.core.events import Event


@dataclass(frozen=True, slots=True)
class JournalAdvanced:
    """The journal committed up to ``seq``: read what is new."""

    seq: int


@dataclass(frozen=True, slots=True)
class Inbound:
    """One normalized webhook update for a conversation's shard."""

    journal_seq: int
    event: Event


@dataclass(frozen=True, slots=True)
class Processed:
    """A shard made the update durable (or found it already was)."""

    journal_seq: int
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class Classify:
    """Classify a stored message; ``masked`` already had PII replaced."""

    tenant: str
    customer: str
    wamid: str
    message_id: str
    masked: object  # lawhub_actors.core.masking.MaskedText
