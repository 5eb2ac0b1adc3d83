"""Every stage of a request has a deadline, and a process holds a bounded
number of connections: idle ones make room, busy ones are never cut."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from lawhub_actors.web.connections import Connections, Limits

LIMITS = Limits(max_connections=3, idle_s=0.3, headers_s=0.3, body_s=0.3)
BIG = 32 * 1024 * 1024


class Server:
    def __init__(self, connections: Connections, port: int, release: asyncio.Event) -> None:
        self.connections = connections
        self.port = port
        self.release = release

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    connections = Connections(LIMITS)
    release = asyncio.Event()

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * BIG)

    async def busy(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="done")

    app = web.Application(middlewares=[connections.middleware()])
    app.router.add_get("/ok", ok)
    app.router.add_post("/echo", echo)
    app.router.add_get("/busy", busy)
    app.router.add_get("/big", big)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    listening = await asyncio.get_running_loop().create_server(
        connections.factory(runner.server), "127.0.0.1", 0)
    yield Server(connections, listening.sockets[0].getsockname()[1], release)
    release.set()
    listening.close()
    await runner.cleanup()


async def _answer(reader: asyncio.StreamReader, timeout: float = 3.0) -> bytes:
    """Everything until the server closes the connection."""
    return await asyncio.wait_for(reader.read(), timeout)


async def _ask(server: Server, request: bytes) -> bytes:
    reader, writer = await server.open()
    writer.write(request)
    answer = await _answer(reader)
    writer.close()
    return answer


async def test_a_connection_that_sends_nothing_is_closed_quietly_after_idle_s(server) -> None:
    reader, writer = await server.open()
    started = time.monotonic()
    assert await _answer(reader) == b""
    assert 0.25 < time.monotonic() - started < 2.0
    assert server.connections.counts["idle_closed"] == 1
    writer.close()


async def test_headers_that_never_finish_get_408_after_headers_s(server) -> None:
    reader, writer = await server.open()
    writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    started = time.monotonic()
    answer = await _answer(reader)
    assert answer.startswith(b"HTTP/1.1 408") and b"headers" in answer
    assert time.monotonic() - started < 2.0
    writer.close()


async def test_headers_trickled_a_byte_at_a_time_still_meet_the_deadline(server) -> None:
    reader, writer = await server.open()
    started = time.monotonic()
    answering = asyncio.create_task(_answer(reader))
    for byte in b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:  # closed on us: the deadline passed
            break
        await asyncio.sleep(0.05)
    answer = await answering
    assert answer.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 2.0
    writer.close()


async def test_a_content_length_longer_than_the_body_gets_408_after_body_s(server) -> None:
    answer = await _ask(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort")
    assert answer.startswith(b"HTTP/1.1 408") and b"body" in answer
    assert server.connections.counts["body_late"] == 1


async def test_a_kept_alive_connection_serves_requests_then_is_closed_when_idle(server) -> None:
    reader, writer = await server.open()
    for _ in range(3):
        writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\nok"), 3)
        assert head.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.15)  # under idle_s between requests
    assert await _answer(reader) == b""  # then idle for good
    writer.close()


async def test_a_slow_handler_is_never_cut_by_a_deadline(server) -> None:
    reader, writer = await server.open()
    writer.write(b"GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(1.0)  # past every deadline: the request is being answered
    server.release.set()
    assert (await asyncio.wait_for(reader.readuntil(b"done"), 3)).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_over_the_cap_the_connection_idle_longest_makes_room(server) -> None:
    idle = [await server.open() for _ in range(3)]
    await asyncio.sleep(0.05)
    answer = await _ask(server, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    assert await _answer(idle[0][0], 1.0) == b""  # the oldest was closed for it
    assert server.connections.counts["evicted"] == 1
    for _, writer in idle:
        writer.close()


async def test_over_the_cap_with_every_connection_busy_a_new_one_is_refused_503(server) -> None:
    busy = [await server.open() for _ in range(3)]
    for _, writer in busy:
        writer.write(b"GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.1)
    answer = await _ask(server, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer
    assert b"too_many_connections" in answer
    server.release.set()
    for reader, writer in busy:
        assert (await asyncio.wait_for(reader.readuntil(b"done"), 3)).startswith(b"HTTP/1.1 200")
        writer.close()
    assert server.connections.counts["refused"] == 1


async def test_a_body_that_ends_after_its_answer_leaves_the_idle_deadline_running(server) -> None:
    """A handler that answers without reading the body (a refusal): the rest of
    the body arrives later and must not end the deadline that runs by then."""
    reader, writer = await server.open()
    writer.write(b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")  # GET-only: 405
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    assert head.startswith(b"HTTP/1.1 405")
    writer.write(b"0123456789" + b"GET /ok HTTP/1.1\r\n")  # the body's end, then half a request
    started = time.monotonic()
    await asyncio.wait_for(reader.read(), 3)  # closed: the header deadline ran
    assert time.monotonic() - started < 2.0
    writer.close()


async def test_a_connection_whose_request_is_arriving_is_evicted_after_every_silent_one(
        server) -> None:
    first, writer = await server.open()
    silent = [await server.open() for _ in range(2)]
    await asyncio.sleep(0.05)
    writer.write(b"GET /ok HTTP/1.1\r\n")  # the oldest, but its request has begun
    await asyncio.sleep(0.05)
    answer = await _ask(server, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    assert await _answer(silent[0][0], 1.0) == b""  # the oldest silent one made room
    writer.write(b"Host: x\r\n\r\n")
    assert (await asyncio.wait_for(first.readuntil(b"ok"), 3)).startswith(b"HTTP/1.1 200")
    for _, other in (*silent, (first, writer)):
        other.close()


async def test_a_slow_reader_of_a_big_answer_gets_all_of_it_past_the_idle_deadline(
        server) -> None:
    """The idle deadline runs once the handler returned, while the answer is
    still being written; closing then must let the buffered answer out (a
    graceful close, never an abort)."""
    reader, writer = await server.open()
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await asyncio.sleep(1.0)  # past idle_s, the answer still in the server's buffers
    answer = await _answer(reader, timeout=10)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"x" * 1000)
    assert len(answer) > BIG
    writer.close()
