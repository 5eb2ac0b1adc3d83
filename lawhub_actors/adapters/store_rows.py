"""The store's rows as its callers see them (opened: no sealed blob here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FeedEvent:
    tenant: str
    seq: int
    type: str
    at: float
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """The outcome of one inbound media file's checks."""

    verdict: str
    reason: str | None
    shelf: str | None
    ref: str | None
    mime_type: str | None
    size: int | None
    scanner: str


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: str
    customer: str
    conv_seq: int
    direction: str
    wamid: str | None
    type: str
    status: str
    created_at: float
    content: dict[str, Any]
    media: MediaRecord | None = None
    """The outcome of an inbound media file's checks, once known."""


@dataclass(frozen=True, slots=True)
class Customer:
    tenant: str
    customer: str
    kind: str
    consent: str
    last_inbound_at: float | None
