"""How feed clients (tenants' ``/ws``, operators' ``/admin/ws``) are ended:
when the gateway stops (1001, promptly) and when a tenant's token is revoked
(4001, that tenant's clients only)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from lawhub_actors.adapters.store_rows import FeedEvent
from lawhub_actors.simulator import traffic
from lawhub_actors.web.app import build_app
from lawhub_actors.web.feed import GOING_AWAY, SLOW_CONSUMER, TOKEN_REVOKED, FeedHub, Subscriber
from lawhub_actors.web.keys import FEED
from tests.conftest import ADMIN_TOKEN, REPO
from tests.e2e.gateway import Feed, auth, post
from tests.waits import until

NUMBER_B = "107611463353033"
PROMPTLY_S = 5.0  # Kubernetes waits 30 s before it kills


@pytest.fixture
async def client(aiohttp_client, settings, secrets):
    return await aiohttp_client(build_app(settings, secrets, on_give_up=lambda r: None))


async def _closing(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> aiohttp.WSMessage:
    """The first message that is not a frame of the feed."""
    while (message := await ws.receive(timeout=timeout)).type is WSMsgType.TEXT:
        pass
    return message


async def _feed_client_that_stops_reading(host: str, port: int) -> asyncio.StreamWriter:
    """A tenant's ``/ws`` client, upgraded, that reads nothing more (a small
    receive buffer, so the server's sends soon wait); its writer, to close."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write((f"GET /ws?since=0 HTTP/1.1\r\nHost: {host}:{port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                  f"Authorization: {auth('firm-a')['Authorization']}\r\n\r\n").encode())
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    reader._transport.pause_reading()  # type: ignore[attr-defined]  # and reads no more
    return writer


# -- shutdown --------------------------------------------------------------------------


async def test_a_stopping_gateway_closes_open_feed_clients_with_1001_promptly(
    settings, secrets
) -> None:
    runner = web.AppRunner(build_app(settings, secrets, on_give_up=lambda r: None),
                           handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with aiohttp.ClientSession() as session:
        tenant = await session.ws_connect(f"{url}/ws?since=0", headers=auth("firm-a"))
        console = await session.ws_connect(f"{url}/admin/ws", params={"token": ADMIN_TOKEN})
        assert (await console.receive_json(timeout=5))["type"] == "tree"
        await asyncio.sleep(0.1)  # both handlers are following the feed

        # Clients read as they go (browsers do), so they answer the close at once.
        goodbyes = [asyncio.create_task(_closing(ws, timeout=30)) for ws in (tenant, console)]
        started = time.monotonic()
        stopping = asyncio.create_task(runner.cleanup())  # what SIGTERM runs
        done, _ = await asyncio.wait({stopping}, timeout=PROMPTLY_S)
        took = time.monotonic() - started
        if not done:  # hang up ourselves, so the test ends (failing) without leaks
            await tenant.close()
            await console.close()
            await stopping
        assert done, f"shutdown still waiting on feed clients after {took:.1f} s"
        stopping.result()
        to_tenant, to_console = await asyncio.gather(*goodbyes)
        assert (to_tenant.type, to_tenant.data) == (WSMsgType.CLOSE, GOING_AWAY)
        assert to_tenant.extra == "gateway stopping; resume with since=0"
        assert (to_console.type, to_console.data) == (WSMsgType.CLOSE, GOING_AWAY)
        # Both handshakes completed (a dropped connection shows 1006 here).
        assert (tenant.close_code, console.close_code) == (GOING_AWAY, GOING_AWAY)


async def test_a_client_that_stopped_reading_does_not_hold_the_shutdown(settings, secrets) -> None:
    """A laptop closed mid-feed: the frames pile up until the server's sends wait."""
    runner = web.AppRunner(build_app(settings, secrets, on_give_up=lambda r: None),
                           handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    writer = await _feed_client_that_stops_reading("127.0.0.1", port)
    hub = runner.app[FEED]  # type: ignore[union-attr]
    await until(lambda: hub.count() == 1, timeout=5)
    big = "x" * 65536
    hub.publish([FeedEvent("firm-a", seq, "message.received", 0.0, {"text": big})
                 for seq in range(1, 400)])  # ~26 MB: far more than the sockets buffer
    await asyncio.sleep(0.5)  # the handler now waits on a send

    started = time.monotonic()
    stopping = asyncio.create_task(runner.cleanup())
    done, _ = await asyncio.wait({stopping}, timeout=PROMPTLY_S)
    took = time.monotonic() - started
    writer.close()
    await stopping
    assert done, f"shutdown still waiting on a stuck feed client after {took:.1f} s"


async def test_app_shutdown_says_goodbye_to_tenants_feed_clients(client) -> None:
    feed = await Feed.open(client, "firm-a")
    await asyncio.sleep(0.05)  # let the server subscribe it
    await client.app.shutdown()  # what stopping the server runs first
    goodbye = await _closing(feed.ws)
    assert (goodbye.type, goodbye.data) == (WSMsgType.CLOSE, GOING_AWAY)
    assert client.app[FEED].count() == 0


# -- revocation ------------------------------------------------------------------------


async def test_revoking_a_tenant_closes_its_feed_clients_with_4001_and_no_other(client) -> None:
    hub = client.app[FEED]
    firm_a = [await Feed.open(client, "firm-a"), await Feed.open(client, "firm-a")]
    firm_b = await Feed.open(client, "firm-b")
    console = await client.ws_connect("/admin/ws", params={"token": ADMIN_TOKEN})
    await until(lambda: hub.count() == 4, timeout=5)

    assert hub.revoke(["firm-a", "no-such-tenant"]) == 2

    for feed in firm_a:
        closed = await _closing(feed.ws)
        assert (closed.type, closed.data, closed.extra) == (
            WSMsgType.CLOSE, TOKEN_REVOKED, "token revoked")
        assert feed.ws.close_code == TOKEN_REVOKED
    assert hub.revoke(["firm-a"]) == 0
    # firm-b and the console still follow the feed.
    assert await post(client, traffic.envelope(
        traffic.text_message(NUMBER_B, "6281234569001", "masih di sini"))) == 200
    await firm_b.until(lambda frames: any(f["type"] == "message.received" for f in frames))
    while (frame := await console.receive_json(timeout=10))["type"] != "feed":
        pass
    assert frame["tenant"] == "firm-b"
    assert hub.count() == 2
    await firm_b.close()
    await console.close()


class _NowBridge:
    """Runs the hub's fan-out at once (the test is its only thread)."""

    def call_soon(self, callback: Callable[..., None], *args: Any) -> None:
        callback(*args)


def _event(tenant: str, seq: int) -> FeedEvent:
    return FeedEvent(tenant, seq, "message.received", 0.0, {})


def _queued(subscriber: Subscriber) -> list[int]:
    return [event.seq for event in subscriber.queue._queue]  # type: ignore[attr-defined]


async def test_revoke_ends_the_tenants_subscribers_and_they_get_nothing_more() -> None:
    hub = FeedHub(_NowBridge(), queue_size=3)  # type: ignore[arg-type]
    slow = hub.subscribe("firm-c")
    hub.publish([_event("firm-c", n) for n in range(1, 5)])  # one more than its queue holds
    assert slow.overflowed
    a1, a2, b, everyone = (hub.subscribe("firm-a"), hub.subscribe("firm-a"),
                           hub.subscribe("firm-b"), hub.subscribe_all())

    assert hub.revoke(iter(["firm-a", "firm-a", "firm-c"])) == 2  # slow was ended already
    assert [(s.close_code, s.close_reason) for s in (a1, a2)] == [
        (TOKEN_REVOKED, "token revoked")] * 2
    assert slow.close_code == SLOW_CONSUMER
    assert not b.ended.is_set() and not everyone.ended.is_set()
    assert hub.count() == 2
    hub.publish([_event("firm-a", 1), _event("firm-b", 1)])
    assert _queued(a1) == _queued(a2) == [] and _queued(b) == [1]
    hub.unsubscribe(a1)  # what its handler does as it ends: harmless now
    assert hub.revoke([]) == 0 and hub.count() == 2


async def test_close_all_ends_every_subscriber_once() -> None:
    hub = FeedHub(_NowBridge())  # type: ignore[arg-type]
    subscribers = [hub.subscribe("firm-a"), hub.subscribe("firm-b"), hub.subscribe_all()]
    assert hub.close_all() == 3
    assert {(s.close_code, s.close_reason) for s in subscribers} == {
        (GOING_AWAY, "gateway stopping")}
    assert hub.count() == 0 and hub.close_all() == 0
    assert hub.revoke(["firm-a"]) == 0


async def test_a_client_that_stopped_reading_is_dropped_after_the_send_timeout(
    aiohttp_client, make_settings, secrets
) -> None:
    """Too few events to fill its queue: only the send's deadline can tell."""
    config = (REPO / "config" / "lawhub.toml").read_text() + (
        "\n[limits]\nfeed_send_timeout_s = 0.5\n")
    client = await aiohttp_client(build_app(make_settings(config), secrets,
                                            on_give_up=lambda r: None))
    writer = await _feed_client_that_stops_reading(client.server.host, client.server.port)
    hub = client.app[FEED]
    await until(lambda: hub.count() == 1, timeout=5)
    text = "x" * 60_000  # 120 of them: past the sockets' buffers, within the queue's 8 MiB
    hub.publish([FeedEvent("firm-a", seq, "message.received", 0.0, {"text": text})
                 for seq in range(1, 121)])
    started = time.monotonic()
    await until(lambda: hub.count() == 0, timeout=10, what="the client dropped")
    assert time.monotonic() - started < 0.5 + 3.0 + 2.0  # the deadline, the close's, slack
    writer.close()


async def test_a_client_whose_queue_holds_too_many_bytes_is_ended_as_too_slow() -> None:
    hub = FeedHub(_NowBridge(), queue_size=1000, queue_bytes=10_000)  # type: ignore[arg-type]
    slow, fast = hub.subscribe("firm-a"), hub.subscribe("firm-a")
    big = [FeedEvent("firm-a", n, "message.received", 0.0, {"text": "x" * 3000})
           for n in range(1, 5)]
    hub.publish(big[:3])
    assert not slow.ended.is_set() and slow.queued_bytes == 3 * (256 + 3000)
    while not fast.queue.empty():  # a client that reads gives its bytes back
        await fast.get()
    assert fast.queued_bytes == 0
    hub.publish(big[3:])  # a fourth would hold more than 10,000 bytes for the slow one
    assert slow.close_code == SLOW_CONSUMER and _queued(slow) == [1, 2, 3]
    assert not fast.ended.is_set() and _queued(fast) == [4]


async def test_one_event_bigger_than_the_byte_budget_still_reaches_an_idle_client() -> None:
    hub = FeedHub(_NowBridge(), queue_size=10, queue_bytes=100)  # type: ignore[arg-type]
    client = hub.subscribe("firm-a")
    hub.publish([FeedEvent("firm-a", 1, "message.received", 0.0, {"text": "y" * 500})])
    assert not client.ended.is_set() and _queued(client) == [1]
