"""Which connections the ack path's process keeps (lawhub_actors.web.ingest)."""

from __future__ import annotations

import pytest

from lawhub_actors.web.ingest import goes_to_ingest


@pytest.mark.parametrize(("first", "ours"), [
    (b"POST /webhook HTTP/1.1\r\n", True),
    (b"GET /webhook?hub.mode=subscribe&hub.challenge=1 HTTP/1.1\r\n", True),
    (b"POST /webhooks HTTP/1.1\r\n", False),
    (b"POST /webhook/x HTTP/1.1\r\n", False),
    (b"GET /ws?since=0 HTTP/1.1\r\n", False),
    (b"POST /api/v1/messages HTTP/1.1\r\n", False),
    (b"PUT /webhook HTTP/1.1\r\n", False),
    (b"DELETE /admin/dlq/1 HTTP/1.1\r\n", False),
    (b"\x16\x03\x01", False),  # TLS on a plain port: the main process answers
])
def test_only_the_webhooks_connections_stay_with_the_ack_path(first: bytes, ours: bool) -> None:
    assert goes_to_ingest(first) is ours


@pytest.mark.parametrize("partial", [b"", b"P", b"POS", b"POST ", b"POST /web", b"POST /webhook",
                                     b"G", b"GET /webhoo"])
def test_too_few_bytes_to_tell_waits_for_more(partial: bytes) -> None:
    assert goes_to_ingest(partial) is None
