"""The ack path's process: which connections it keeps, and how it peeks."""

from __future__ import annotations

import socket
import time

import pytest

from lawhub_actors.web import ingest
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


async def test_a_partial_request_line_is_given_up_after_a_bounded_time() -> None:
    # A byte and then nothing (or a FIN): peeking consumes nothing, so the
    # socket stays readable; the child must neither spin nor wait 10 s.
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    client.sendall(b"P")
    connection, _ = listener.accept()
    connection.setblocking(False)
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        await ingest._peek(connection)
    assert time.monotonic() - began < ingest.PARTIAL_LINE_S + 1
    for sock in (connection, client, listener):
        sock.close()



def test_the_ack_process_runs_ahead_of_the_actors_where_it_may() -> None:
    import os
    import threading

    from lawhub_actors.web.ingest import ahead_of_processing
    from tests.priorities import may_raise_priority

    seen: list[tuple[int, tuple[bool, int], tuple[bool, int], int, tuple[bool, int]]] = []

    def in_a_thread() -> None:  # Linux sets nice per thread: the test's own stays as it is
        before = os.getpriority(os.PRIO_PROCESS, 0)
        unchanged = ahead_of_processing(0)
        ahead = ahead_of_processing(-3)
        moved = os.getpriority(os.PRIO_PROCESS, 0) - before
        seen.append((before, unchanged, ahead, moved, ahead_of_processing(-20)))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join(5)
    [(before, unchanged, ahead, moved, furthest)] = seen
    assert unchanged == (True, before)
    first = max(-20, before - 3)  # relative to where it runs, never below -20
    second = max(-20, first - 20)
    if may_raise_priority(second):
        assert (ahead, moved, furthest) == ((True, first), first - before, (True, second))
    elif may_raise_priority(first):  # an RLIMIT_NICE that allows only so far
        assert (ahead, moved, furthest) == ((True, first), first - before, (False, first))
    else:
        assert (ahead, moved, furthest) == ((False, before), 0, (False, before))
