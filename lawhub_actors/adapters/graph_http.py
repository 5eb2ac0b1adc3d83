"""What the Graph API clients share: reading answers safely."""

from __future__ import annotations

import json
from typing import Any

import httpx


def read_capped(response: httpx.Response, cap: int) -> bytes:
    """At most ``cap`` bytes of a streamed body (a huge error page is not pulled in)."""
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        parts.append(chunk)
        size += len(chunk)
        if size >= cap:
            break
    return b"".join(parts)[:cap]


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None (not JSON, or not an object)."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
