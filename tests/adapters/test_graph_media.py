"""GraphMedia against the Graph API stand-in on a real local port (served from its own thread)."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lawhub_actors.adapters.graph_media import (
    GraphMedia,
    MediaFetchError,
    MediaInfo,
    MediaRefused,
    MediaTooLarge,
    MediaUnavailable,
    classify,
)
from lawhub_actors.simulator.graph import ATTACHMENTS_PATH, GraphStandIn, serve_in_thread

TOKEN = "graph-token-for-tests-0123456789"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 4000  # ~1 MB
MB = 1024 * 1024
CHUNK = 64 * 1024


class Clock:
    """Time as the stand-in sees it; ``script`` lists the readings to hand out first."""

    def __init__(self, now: float = 1_767_000_000.0, script: list[float] | None = None) -> None:
        self.now = now
        self.script = list(script or [])

    def __call__(self) -> float:
        if self.script:
            self.now = self.script.pop(0)
        return self.now


class Graph:
    def __init__(self, stand_in: GraphStandIn, base_url: str, clock: Clock) -> None:
        self.stand_in = stand_in
        self.base_url = base_url
        self.clock = clock
        self._clients: list[GraphMedia] = []

    def media(self, token: str = TOKEN, **options) -> GraphMedia:
        client = GraphMedia(self.base_url, token, **options)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def graph() -> Iterator[Graph]:
    clock = Clock()
    stand_in = GraphStandIn(TOKEN, clock=clock)
    with serve_in_thread(stand_in) as base_url:
        state = Graph(stand_in, base_url, clock)
        try:
            yield state
        finally:
            state.close()


def fetch(media: GraphMedia, media_id: str, limit: int = 100 * MB) -> bytes:
    return b"".join(media.download(media_id, limit))


def download_statuses(graph: Graph, media_id: str) -> list[int]:
    return [d.status for d in graph.stand_in.stats(media_id).downloads]


# -- clean path --------------------------------------------------------------------------------


def test_resolve_returns_metas_metadata(graph) -> None:
    media_id = graph.stand_in.add_media(PDF, "application/pdf")
    info = graph.media().resolve(media_id)
    assert isinstance(info, MediaInfo)
    assert info.id == media_id
    assert info.mime_type == "application/pdf"
    assert info.sha256 == hashlib.sha256(PDF).hexdigest()
    assert info.file_size == len(PDF)
    assert info.url.startswith(graph.base_url.removesuffix("/v21.0"))


def test_a_clean_download_returns_the_exact_bytes(graph) -> None:
    media_id = graph.stand_in.add_media(PDF, "application/pdf")
    chunks = list(graph.media().download(media_id, limit=len(PDF)))
    assert b"".join(chunks) == PDF
    assert max(len(c) for c in chunks) <= CHUNK
    # The server marks the download complete after its last write, which the
    # client can have read before that line runs on the server's thread.
    deadline = time.monotonic() + 5
    while not all(d.completed for d in graph.stand_in.stats(media_id).downloads):
        assert time.monotonic() < deadline, "the server never finished the download"
        time.sleep(0.005)
    stats = graph.stand_in.stats(media_id)
    assert stats.resolves == 1
    assert [(d.status, d.completed) for d in stats.downloads] == [(200, True)]


def test_a_chunked_download_without_content_length_returns_the_exact_bytes(graph) -> None:
    media_id = graph.stand_in.add_media(PDF, "application/pdf", chunked=True)
    assert fetch(graph.media(chunk_size=1000), media_id, limit=len(PDF)) == PDF


def test_download_does_nothing_before_it_is_iterated(graph) -> None:
    media_id = graph.stand_in.add_media(PDF, "application/pdf")
    chunks = graph.media().download(media_id, limit=len(PDF))
    assert graph.stand_in.stats(media_id).resolves == 0
    next(chunks)
    chunks.close()  # abandoning it early closes the connection, no error
    assert graph.stand_in.stats(media_id).resolves == 1


# -- size cap ----------------------------------------------------------------------------------


def test_a_declared_size_over_the_limit_is_refused_before_reading(graph) -> None:
    media_id = graph.stand_in.add_media(PDF, "application/pdf")
    with pytest.raises(MediaTooLarge) as caught:
        fetch(graph.media(), media_id, limit=len(PDF) - 1)
    assert caught.value.bytes_read == 0
    assert caught.value.limit == len(PDF) - 1
    assert caught.value.declared == len(PDF)
    assert not caught.value.transient
    assert graph.stand_in.stats(media_id).downloads == ()  # the URL was never requested


def test_a_content_length_over_the_limit_is_refused_before_reading(graph) -> None:
    media_id = graph.stand_in.add_media(PDF, "application/pdf", file_size=10)  # metadata lies
    with pytest.raises(MediaTooLarge) as caught:
        fetch(graph.media(), media_id, limit=MB // 2)
    assert caught.value.bytes_read == 0
    assert caught.value.declared == len(PDF)
    assert download_statuses(graph, media_id) == [200]


def _max_send_buffer() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * MB


def test_a_lying_declared_size_with_a_big_body_stops_reading_at_the_cap(graph) -> None:
    # What the server manages to write before it notices the client left is bounded by
    # the cap, one chunk and the socket buffers in between: the client's receive buffer
    # (pinned small here; Linux doubles it) and the server's send buffer (tcp_wmem max).
    receive_buffer = 128 * 1024
    in_flight = 2 * receive_buffer + _max_send_buffer() + 2 * CHUNK
    limit = MB
    size = max(16 * MB, 2 * (limit + CHUNK + in_flight))
    big = bytes(range(256)) * (size // 256)
    media_id = graph.stand_in.add_media(big, "video/mp4", file_size=1000, chunked=True)
    client = httpx.Client(transport=httpx.HTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)]
    ))
    media = graph.media(client=client)
    received = 0
    with pytest.raises(MediaTooLarge) as caught:
        for chunk in media.download(media_id, limit=limit):
            received += len(chunk)
    client.close()
    assert received <= limit
    assert limit < caught.value.bytes_read <= limit + CHUNK
    assert caught.value.declared is None
    previous = -1
    for _ in range(250):  # until the server notices the client left and stops writing
        time.sleep(0.02)
        (record,) = graph.stand_in.stats(media_id).downloads
        if record.bytes_sent == previous:
            break
        previous = record.bytes_sent
    assert not record.completed
    assert record.bytes_sent <= limit + CHUNK + in_flight < len(big)


# -- expired URLs ------------------------------------------------------------------------------


def test_an_expired_url_is_resolved_again_once_and_the_download_succeeds(graph) -> None:
    # The stand-in reads the clock when it hands out a URL and when one is used: the first
    # URL is used 301 s after it was issued (a slow queue), the second one right away.
    start = graph.clock.now
    graph.clock.script = [start, start + 301, start + 301, start + 301]
    media_id = graph.stand_in.add_media(PDF, "application/pdf")
    assert fetch(graph.media(), media_id) == PDF
    assert graph.stand_in.stats(media_id).resolves == 2
    assert download_statuses(graph, media_id) == [404, 200]


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_refused_url_is_resolved_again_once(graph, status) -> None:
    media_id = graph.stand_in.add_media(PDF, "application/pdf")
    graph.stand_in.fail_downloads_next(1, status)
    assert fetch(graph.media(), media_id) == PDF
    assert graph.stand_in.stats(media_id).resolves == 2
    assert download_statuses(graph, media_id) == [status, 200]


def test_two_expired_urls_in_a_row_fail_as_unavailable_without_a_third_try(graph) -> None:
    # A URL refused right after a fresh resolve: Graph just vouched for the id and the token,
    # so this is a race or clock skew, not a verdict on the media -> retry later (transient).
    graph.stand_in.url_ttl_s = 0  # every URL is dead on arrival
    media_id = graph.stand_in.add_media(PDF, "application/pdf")
    with pytest.raises(MediaUnavailable) as caught:
        fetch(graph.media(), media_id)
    assert caught.value.transient
    assert caught.value.status == 404
    assert graph.stand_in.stats(media_id).resolves == 2
    assert download_statuses(graph, media_id) == [404, 404]


def test_an_expired_url_whose_media_is_gone_on_the_new_resolve_is_refused(graph) -> None:
    media_id = graph.stand_in.add_media(PDF, "application/pdf")
    graph.stand_in.fail_downloads_next(1, 404)
    resolves: list[int] = []

    def meta_forgets_the_media(response: httpx.Response) -> None:
        if response.url.path == ATTACHMENTS_PATH:  # the first URL has just been refused
            graph.stand_in.remove_media(media_id)
        else:
            resolves.append(response.status_code)

    client = httpx.Client(event_hooks={"response": [meta_forgets_the_media]})
    with pytest.raises(MediaRefused) as caught:
        fetch(graph.media(client=client), media_id)
    client.close()
    assert (caught.value.status, caught.value.code) == (400, 100)
    assert resolves == [200, 400]


# -- Meta errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(500, 131000), (429, 130429), (503, 133004)])
def test_server_errors_and_rate_limits_on_resolve_are_transient(graph, status, code) -> None:
    media_id = graph.stand_in.add_media(PDF, "application/pdf")
    graph.stand_in.fail_next(1, status=status, code=code)
    with pytest.raises(MediaUnavailable) as caught:
        fetch(graph.media(), media_id)
    assert caught.value.transient
    assert (caught.value.status, caught.value.code) == (status, code)
    assert fetch(graph.media(), media_id) == PDF  # and a retry works


def test_a_500_from_the_download_url_is_transient_and_not_resolved_again(graph) -> None:
    media_id = graph.stand_in.add_media(PDF, "application/pdf")
    graph.stand_in.fail_downloads_next(1, 500)
    with pytest.raises(MediaUnavailable) as caught:
        fetch(graph.media(), media_id)
    assert caught.value.status == 500
    assert caught.value.code is None
    assert graph.stand_in.stats(media_id).resolves == 1


def test_an_unknown_media_id_is_refused_with_code_100(graph) -> None:
    with pytest.raises(MediaRefused) as caught:
        fetch(graph.media(), "1234567890123456")
    assert not caught.value.transient
    assert (caught.value.status, caught.value.code) == (400, 100)


def test_a_bad_token_is_refused_with_code_190_and_never_echoed(graph) -> None:
    media_id = graph.stand_in.add_media(PDF, "application/pdf")
    wrong = "wrong-token-that-must-not-leak"
    with pytest.raises(MediaRefused) as caught:
        fetch(graph.media(token=wrong), media_id)
    assert (caught.value.status, caught.value.code) == (401, 190)
    assert not caught.value.transient
    assert wrong not in str(caught.value) and wrong not in repr(caught.value.args)


def test_media_over_100_mb_reported_as_131052_is_refused(graph) -> None:
    graph.stand_in.fail_next(1, status=400, code=131052)
    with pytest.raises(MediaRefused) as caught:
        graph.media().resolve("1")
    assert caught.value.code == 131052


# -- slow and broken servers -------------------------------------------------------------------


def test_a_resolve_slower_than_the_timeout_is_unavailable(graph) -> None:
    media_id = graph.stand_in.add_media(PDF, "application/pdf")
    graph.stand_in.resolve_delay_s = 5
    started = time.monotonic()
    with pytest.raises(MediaUnavailable, match="timed out"):
        fetch(graph.media(timeout_s=0.3), media_id)
    assert time.monotonic() - started < 3


def test_a_download_that_stalls_midway_is_unavailable_after_the_timeout(graph) -> None:
    media_id = graph.stand_in.add_media(PDF, "application/pdf")
    graph.stand_in.stall_download(media_id, after_bytes=200_000)
    received = 0
    with pytest.raises(MediaUnavailable, match="timed out"):
        for chunk in graph.media(timeout_s=0.3).download(media_id, limit=MB * 2):
            received += len(chunk)
    assert 0 < received <= 200_000


def test_a_slow_download_within_the_timeout_completes(graph) -> None:
    media_id = graph.stand_in.add_media(PDF[:100_000], "application/pdf")
    graph.stand_in.slow_download(400_000, media_id)  # ~0.25 s, 20 writes a second
    assert fetch(graph.media(timeout_s=2), media_id) == PDF[:100_000]


def test_a_server_that_is_not_there_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with GraphMedia(f"http://127.0.0.1:{port}/v21.0", TOKEN) as media, \
            pytest.raises(MediaUnavailable, match="transport"):
        media.resolve("1")


# -- answers the stand-in does not give (odd but seen, or broken) -----------------------------


def _mock(answer: httpx.Response) -> GraphMedia:
    client = httpx.Client(transport=httpx.MockTransport(lambda request: answer))
    return GraphMedia("https://graph.example/v21.0", TOKEN, client=client)


def test_a_string_file_size_and_a_base64_sha256_are_accepted() -> None:
    digest = hashlib.sha256(b"x").digest()
    media = _mock(httpx.Response(200, json={
        "messaging_product": "whatsapp", "url": "https://lookaside.example/a?mid=1",
        "mime_type": "image/jpeg", "sha256": base64.b64encode(digest).decode(),
        "file_size": "303833", "id": "1",
    }))
    info = media.resolve("1")
    assert info.file_size == 303833
    assert info.sha256 == digest.hex()


@pytest.mark.parametrize(
    "body", [b"<html>proxy error</html>", b"[]", json.dumps({"id": "1"}).encode()]
)
def test_a_malformed_resolve_answer_is_unavailable(body) -> None:
    with pytest.raises(MediaUnavailable):
        _mock(httpx.Response(200, content=body)).resolve("1")


def test_a_media_id_cannot_escape_the_path() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(400, json={"error": {"code": 100}})

    client = httpx.Client(transport=httpx.MockTransport(answer))
    with pytest.raises(MediaRefused):
        GraphMedia("https://graph.example/v21.0", TOKEN, client=client).resolve("../me?x=1")
    assert seen == ["/v21.0/..%2Fme%3Fx%3D1"]


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (500, 100, MediaRefused),        # Meta's code decides before the status
        (400, 131000, MediaUnavailable),
        (400, 4, MediaUnavailable),
        (400, 80007, MediaUnavailable),
        (503, 131016, MediaUnavailable),
        (400, 2, MediaUnavailable),
        (401, 190, MediaRefused),
        (400, 131052, MediaRefused),
        (502, None, MediaUnavailable),
        (429, None, MediaUnavailable),
        (408, None, MediaUnavailable),
        (404, None, MediaRefused),
        (400, None, MediaRefused),
    ],
)
def test_errors_are_classified_by_metas_code_first_then_by_status(status, code, kind) -> None:
    error = classify(status, code, "resolve refused")
    assert type(error) is kind
    assert isinstance(error, MediaFetchError)
    assert error.transient is (kind is MediaUnavailable)
