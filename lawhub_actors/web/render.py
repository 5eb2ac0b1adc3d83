"""How the gateway writes times and feed frames on the wire."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lawhub_actors.adapters.store_rows import FeedEvent


def iso(timestamp: float) -> str:
    """ISO-8601 in UTC with milliseconds, e.g. ``2026-11-23T14:03:50.123Z``."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def frame(event: FeedEvent) -> dict[str, Any]:
    """One websocket frame, as CONTRACT.md defines it."""
    return {"seq": event.seq, "type": event.type, "at": iso(event.at), "data": event.data}
