"""The live status feed: committed events fanned out to websocket clients.

Actors publish events after their transaction commits, from their own
threads; the hub hops onto the event loop through the bridge and offers
each event to the subscribers of that tenant only. A client gets frames in ``seq`` order
with no gap: it subscribes first, replays from the store after ``since``,
then follows live events — skipping what it already sent, and catching up
from the store when a live event arrives ahead of one still in flight
(events commit in seq order, so the store always has the missing ones).

A slow client cannot grow memory: its queue is bounded in events and in
bytes (``[limits] feed_queue_max``, ``feed_queue_bytes``); when it overflows
the client gets what its queue holds, is closed with code 4008 and resumes
with ``since``. A client that stops reading altogether is dropped too: once
the socket's buffers are full a send waits, and one that waits longer than
``[limits] feed_send_timeout_s`` ends the client with 4008 (its queue may
never fill when events are rare; its connection would be held for good).

**Several nodes.** A node's own commits reach its hub as events; another
node's reach it as a notice (:class:`Committed`: this tenant's events up
to ``seq`` are in the store, :meth:`FeedHub.heard`), and each of the
tenant's clients behind it catches up from the store — the store is the
source, the notice only a wake-up, so a lost notice costs latency (the next
one, or a reconnect, catches up), never an event.

Operators' consoles subscribe to every tenant at once (``subscribe_all``),
live only (``seq`` is per tenant, so there is no one ``since`` to resume
from), under the same bounded-queue rule.

Every client's socket is closed by its own handler when its subscriber is
*ended* (:meth:`Subscriber.end`), with the code that ended it: 4008 for a
client too slow, 1001 for every client when the gateway stops
(:meth:`FeedHub.close_all`, from the app's ``on_shutdown``: a client never
holds the shutdown open; tenants resume with ``since``), 4001 for a tenant
whose API token was revoked or changed (:meth:`FeedHub.revoke`; it must
reconnect with a valid token). Handlers subscribe before their first
``await`` after the token check, so an end from then on always reaches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from lawhub_actors.adapters import store_reads
from lawhub_actors.adapters.store import Store
from lawhub_actors.adapters.store_rows import FeedEvent
from lawhub_actors.bridge import Bridge
from lawhub_actors.web.render import frame

log = structlog.get_logger("lawhub.feed")

SLOW_CONSUMER = 4008
TOKEN_REVOKED = 4001
GOING_AWAY = int(WSCloseCode.GOING_AWAY)  # 1001
REPLAY_PAGE = 500
HEARTBEAT_S = 30.0
CLOSE_TIMEOUT_S = 3.0
"""How long closing a socket may take (the close frame out, the client's
back): a client that never answers, or stopped reading altogether, holds its
handler (and a shutdown) no longer."""


def feed_socket() -> web.WebSocketResponse:
    """A feed client's socket (tenant's or operator's)."""
    return web.WebSocketResponse(heartbeat=HEARTBEAT_S, timeout=CLOSE_TIMEOUT_S)


async def close_socket(ws: web.WebSocketResponse, reader: asyncio.Task[None], code: int,
                       reason: str) -> None:
    """Closes ``ws`` with the closing handshake, within ``CLOSE_TIMEOUT_S``
    (then the connection is dropped). ``reader`` (the task reading the client)
    is stopped first: while another task reads, aiohttp drops the connection
    without waiting for the client's answer, and a client may then see 1006
    rather than ``code``."""
    reader.cancel()
    await asyncio.wait({reader})
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await ws.close(code=code, message=reason.encode())
    except TimeoutError:  # aiohttp closed the transport as it was cancelled
        log.info("feed_client_dropped", code=code)


@dataclass(frozen=True, slots=True)
class Committed:
    """Another node committed the tenant's events up to ``seq``: in the store."""

    tenant: str
    seq: int


Offered = FeedEvent | Committed


def event_size(event: Offered) -> int:
    """About what an event holds in memory: its text-like values' lengths
    plus a fixed overhead (cheap; computed on offer and on take)."""
    if isinstance(event, Committed):
        return 64
    return 256 + sum(len(value) for value in event.data.values() if isinstance(value, str))


class NotReading(ConnectionError):
    """A send to a client waited past its subscriber's ``send_timeout_s``."""


class Subscriber:
    """One client's bounded queue: at most ``size`` events and ``max_bytes``
    of them (:func:`event_size`); a client over either, or not taking a send
    within ``send_timeout_s``, is ended (4008)."""

    def __init__(self, tenant: str | None, size: int, max_bytes: int = 8 * 1024 * 1024,
                 send_timeout_s: float = 20.0) -> None:
        self.tenant = tenant
        """The tenant whose events it gets; ``None``: every tenant's."""
        self.send_timeout_s = send_timeout_s
        self.queue: asyncio.Queue[Offered] = asyncio.Queue(size)
        self.queued_bytes = 0
        self._max_bytes = max_bytes
        self.ended = asyncio.Event()
        """Set once its socket is to be closed, with ``close_code`` and ``close_reason``."""
        self.stop_now = asyncio.Event()
        """Set when nothing more is to be sent, not even what a client ended as
        too slow still has queued (the gateway stops, the token was revoked)."""
        self.close_code: int | None = None
        self.close_reason = ""

    @property
    def overflowed(self) -> bool:
        return self.close_code == SLOW_CONSUMER

    def offer(self, event: Offered) -> None:
        if self.ended.is_set():
            return
        size = event_size(event)
        if self.queued_bytes + size > self._max_bytes and not self.queue.empty():
            self.end(SLOW_CONSUMER, "too slow")
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.end(SLOW_CONSUMER, "too slow")
            return
        self.queued_bytes += size

    async def get(self) -> Offered:
        event = await self.queue.get()
        self.queued_bytes -= event_size(event)
        return event

    def get_nowait(self) -> Offered:
        event = self.queue.get_nowait()
        self.queued_bytes -= event_size(event)
        return event

    def end(self, code: int, reason: str) -> bool:
        """Asks its handler to close its socket with ``code``: no event is
        offered to it any more. The first end holds; whether this one did.
        Any end but "too slow" also stops sending what is still queued."""
        if code != SLOW_CONSUMER:
            self.stop_now.set()
        if self.ended.is_set():
            return False
        self.close_code, self.close_reason = code, reason
        self.ended.set()
        return True


class FeedHub:
    """Lives on the event loop: every method but :meth:`publish` is called there."""

    def __init__(self, bridge: Bridge, queue_size: int = 1000,
                 queue_bytes: int = 8 * 1024 * 1024, send_timeout_s: float = 20.0) -> None:
        self._bridge = bridge
        self._queue_size = queue_size
        self._queue_bytes = queue_bytes
        self._send_timeout_s = send_timeout_s
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._everyone: set[Subscriber] = set()
        self._outbox: list[Offered] = []
        self._outbox_lock = threading.Lock()
        self._wake_pending = False

    def publish(self, events: Sequence[FeedEvent]) -> None:
        """From any thread, after the events are committed. Publishers share
        one loop wake-up while a fan-out is pending (waking the loop once per
        event cost ~7 % of the gateway's CPU under load)."""
        self._enqueue(events)

    def heard(self, tenant: str, seq: int) -> None:
        """From any thread: another node committed ``tenant``'s events up to ``seq``."""
        self._enqueue([Committed(tenant, seq)])

    def heard_all(self) -> None:
        """From any thread: notices may have been missed (a listener
        reconnected): every client catches up from the store."""
        self._bridge.call_soon(self._catch_everyone_up)

    def _catch_everyone_up(self) -> None:
        for tenant, subscribers in self._subscribers.items():
            for subscriber in subscribers:
                subscriber.offer(Committed(tenant, 2**62))

    def _enqueue(self, offered: Sequence[Offered]) -> None:
        with self._outbox_lock:
            self._outbox.extend(offered)
            if self._wake_pending:
                return
            self._wake_pending = True
        self._bridge.call_soon(self._fan_out)

    def _fan_out(self) -> None:
        with self._outbox_lock:
            events, self._outbox = self._outbox, []
            self._wake_pending = False
        for event in events:
            for subscriber in self._subscribers.get(event.tenant, ()):
                subscriber.offer(event)
            if isinstance(event, Committed):  # consoles are live only: this node's events
                continue
            for subscriber in self._everyone:
                subscriber.offer(event)

    def subscribe(self, tenant: str) -> Subscriber:
        subscriber = Subscriber(tenant, self._queue_size, self._queue_bytes,
                                self._send_timeout_s)
        self._subscribers[tenant].add(subscriber)
        return subscriber

    def subscribe_all(self) -> Subscriber:
        """Every tenant's events, live from now on (operators)."""
        subscriber = Subscriber(None, self._queue_size, self._queue_bytes,
                                self._send_timeout_s)
        self._everyone.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Idempotent: an ended subscriber may have left already."""
        if subscriber.tenant is None:
            self._everyone.discard(subscriber)
            return
        subscribers = self._subscribers.get(subscriber.tenant)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[subscriber.tenant]

    def revoke(self, tenants: Iterable[str]) -> int:
        """Closes every live ``/ws`` client of ``tenants`` with 4001 ("token
        revoked"; they must reconnect with a valid token) and returns how many.
        They get no event from now on. Operators' consoles are not touched.

        Call it once the old token no longer opens ``/ws`` (a handler that got
        past the check is subscribed by then, so this reaches it)."""
        revoked, closed = set(tenants), 0
        for tenant in revoked:
            for subscriber in self._subscribers.pop(tenant, set()):
                closed += subscriber.end(TOKEN_REVOKED, "token revoked")
        if closed:
            log.info("feed_clients_revoked", tenants=sorted(revoked), clients=closed)
        return closed

    def close_all(self, code: int = GOING_AWAY, reason: str = "gateway stopping") -> int:
        """Closes every client, tenants' and operators', with ``code``; how many."""
        everyone = [*self._everyone, *itertools.chain.from_iterable(self._subscribers.values())]
        self._everyone.clear()
        self._subscribers.clear()
        return sum(subscriber.end(code, reason) for subscriber in everyone)

    def count(self) -> int:
        """Feed clients: tenants' dashboards and operators' consoles."""
        return len(self._everyone) + sum(
            len(subscribers) for subscribers in self._subscribers.values())


async def stream(
    ws: web.WebSocketResponse, subscriber: Subscriber, store: Store, since: int
) -> None:
    """A tenant's feed on ``ws`` until the client leaves or ``subscriber`` is
    ended (then ``ws`` is closed with its code). The caller subscribed before
    its first ``await`` and unsubscribes when this returns."""
    tenant = subscriber.tenant
    assert tenant is not None, "a tenant's subscriber"
    reader = asyncio.create_task(_drain_incoming(ws))
    ending = asyncio.create_task(subscriber.ended.wait())
    last = since

    async def send(event: FeedEvent) -> None:
        nonlocal last
        await send_text(ws, orjson.dumps(frame(event)).decode(), subscriber)
        last = event.seq

    async def catch_up() -> None:
        while True:
            events = await asyncio.to_thread(
                store.read_tx, store_reads.events_after, tenant, last, REPLAY_PAGE)
            for event in events:
                await send(event)
            if len(events) < REPLAY_PAGE:
                return

    async def follow(event: Offered) -> None:
        if isinstance(event, FeedEvent) and event.seq == last + 1:
            await send(event)
        elif event.seq > last + isinstance(event, FeedEvent):  # ahead, or another node's
            await catch_up()

    async def pump() -> None:
        with contextlib.suppress(NotReading):  # ended: closed below
            await pump_until_ended()

    async def pump_until_ended() -> None:
        await catch_up()
        while not ws.closed and not subscriber.ended.is_set():
            getter = asyncio.create_task(subscriber.get())
            done, _ = await asyncio.wait(
                {getter, ending, reader}, return_when=asyncio.FIRST_COMPLETED
            )
            getter.cancel()
            if getter in done:
                await follow(getter.result())
            if reader in done:
                return
        if subscriber.overflowed:  # it gets what its queue holds, then goes
            while not ws.closed and not subscriber.queue.empty():
                await follow(subscriber.get_nowait())

    pumping = asyncio.create_task(pump())
    try:
        await asyncio.wait({pumping, ending}, return_when=asyncio.FIRST_COMPLETED)
        await _drain_unless_stopped(pumping, subscriber)
        if subscriber.stop_now.is_set():  # nothing more: not even what a stuck send holds up
            pumping.cancel()
        await asyncio.wait({pumping})
        if not pumping.cancelled():
            pumping.result()  # the client went away mid-send: as before, to the handler
        if subscriber.ended.is_set() and not ws.closed:
            await _close(ws, reader, subscriber, last)
    finally:
        for task in (pumping, reader, ending):
            task.cancel()


async def _drain_unless_stopped(pumping: asyncio.Task[None], subscriber: Subscriber) -> None:
    """A client ended as too slow gets what its queue holds, unless the
    gateway stops (or its token is revoked) meanwhile."""
    if pumping.done() or subscriber.stop_now.is_set():
        return
    stopping = asyncio.create_task(subscriber.stop_now.wait())
    try:
        await asyncio.wait({pumping, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()


async def _close(ws: web.WebSocketResponse, reader: asyncio.Task[None], subscriber: Subscriber,
                 last: int) -> None:
    code, reason = subscriber.close_code, subscriber.close_reason
    assert code is not None
    if code == SLOW_CONSUMER:
        log.warning("feed_client_too_slow", tenant=subscriber.tenant, seq=last)
    if code != TOKEN_REVOKED:
        reason = f"{reason}; resume with since={last}"
    await close_socket(ws, reader, code, reason)


async def send_text(ws: web.WebSocketResponse, text: str, subscriber: Subscriber) -> None:
    """Send ``text``; a send still waiting after ``subscriber.send_timeout_s``
    (the client's buffers are full: it is not reading) ends the subscriber
    (4008) and raises :class:`NotReading`."""
    try:
        async with asyncio.timeout(subscriber.send_timeout_s):
            await ws.send_str(text)
    except TimeoutError:
        subscriber.end(SLOW_CONSUMER, "not reading")
        raise NotReading(f"no send taken within {subscriber.send_timeout_s} s") from None


async def _drain_incoming(ws: web.WebSocketResponse) -> None:
    """Clients only listen; reading keeps pings answered and notices a close."""
    async for message in ws:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
