"""Every connection's deadlines, and a cap on how many one process holds.

aiohttp times out neither a request's headers nor its body, so a client
that opens connections and sends nothing, a byte now and then, or a
``Content-Length`` longer than what it sends, holds a descriptor for good:
~20,000 of them once starved the gateway of descriptors. Here every stage
of a request has a deadline, and the connections are counted:

- **Idle** (``idle_s``): a connection that sends nothing for this long after
  it opened or after its last answer is closed (quietly: nothing was asked).
- **Headers** (``headers_s``): from a request's first byte its headers must
  be complete within this; else 408 and close.
- **Body** (``body_s``): from its headers the body must have arrived within
  this (a ``Content-Length`` longer than the body, a trickle); else 408 and
  close, whatever the handler was waiting for.
- **Cap** (``max_connections``): a connection over the cap makes room by
  closing the connection that has waited longest for a request (an idle
  flood cannot lock Meta's webhooks out); when every connection is busy
  with a request, the new one is refused with 503 and closed.

:class:`Connections` wraps the server's protocol factory (:meth:`factory`)
and provides the :meth:`middleware` that tells it when a request's headers
are in and when its answer is out. Entries that are not HTTP yet (the ack
process peeking at a connection's first line) count too (:meth:`hold`).
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from lawhub_actors.settings import Server as ServerSettings

log = structlog.get_logger("lawhub.connections")

REPORT_EVERY_S = 10.0

OTHER_FILES = 256
"""Descriptors a process needs besides its connections (databases, logs,
pipes, the media files being scanned)."""


def raise_open_files_limit() -> tuple[int, int, int]:
    """Raise this process's soft limit on open files to its hard limit (a
    child inherits it): (soft before, soft now, hard). Each connection is a
    descriptor (in one process: the ack process closes its copy of one it
    hands over)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft, soft, hard
        return soft, target, hard
    return soft, soft, hard


def _answer(status: str, code: str, message: str, **headers: str) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection."""
    body = orjson.dumps({"error": {"code": code, "message": message}})
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{head}\r\n").encode() + body


TOO_MANY = _answer("503 Service Unavailable", "too_many_connections",
                   "the server holds as many connections as it may; retry", **{"Retry-After": "1"})
HEADERS_LATE = _answer("408 Request Timeout", "request_timeout",
                       "the request's headers did not arrive in time")
BODY_LATE = _answer("408 Request Timeout", "request_timeout",
                    "the request's body did not arrive in time")


@dataclass(frozen=True, slots=True)
class Limits:
    max_connections: int
    idle_s: float
    headers_s: float
    body_s: float

    @classmethod
    def of(cls, server: ServerSettings) -> Limits:
        return cls(server.max_connections, server.idle_timeout_s, server.headers_timeout_s,
                   server.body_timeout_s)


class Droppable(Protocol):
    def drop(self) -> None: ...


class Connections:
    """One process's connections: the cap and the deadlines (on its event loop)."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._waiting: OrderedDict[Droppable, None] = OrderedDict()
        """Connections waiting for a request, longest first: the first to go."""
        self.open = 0
        self.counts = {"refused": 0, "evicted": 0, "idle_closed": 0, "headers_late": 0,
                       "body_late": 0}
        self._by_transport: dict[asyncio.BaseTransport, Guarded] = {}
        self._reported = dict(self.counts)
        self._last_report = float("-inf")
        self._flush: asyncio.TimerHandle | None = None

    def factory(self, inner: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``inner``'s (aiohttp's server) with the cap
        and the deadlines."""
        return lambda: Guarded(self, inner())

    def admit(self) -> bool:
        """Room for one more connection (perhaps made by closing the one that
        waited longest): whether it may open."""
        if self.open >= self.limits.max_connections:
            if not self._waiting:
                self.count("refused")
                return False
            oldest, _ = self._waiting.popitem(last=False)
            self.count("evicted")
            oldest.drop()
        self.open += 1
        return True

    def serving(self, transport: asyncio.BaseTransport, connection: Guarded) -> None:
        """``connection`` (admitted) serves HTTP on ``transport``: the
        middleware finds it by its request's transport."""
        self._by_transport[transport] = connection

    def left(self, entry: Droppable, transport: asyncio.BaseTransport | None = None) -> None:
        self.open -= 1
        self._waiting.pop(entry, None)
        if transport is not None:
            self._by_transport.pop(transport, None)

    def wait(self, entry: Droppable) -> None:
        self._waiting[entry] = None

    def busy(self, entry: Droppable) -> None:
        self._waiting.pop(entry, None)

    def heard(self, entry: Droppable) -> None:
        """A request has begun to arrive on ``entry``: the last to be evicted
        (its headers' deadline bounds it), after every silent one."""
        if entry in self._waiting:
            self._waiting.move_to_end(entry)

    @contextmanager
    def hold(self, entry: Droppable) -> Iterator[bool]:
        """Count ``entry`` (not HTTP yet) as an open connection waiting for a
        request while the block runs; yields whether it was admitted."""
        admitted = self.admit()
        if admitted:
            self.wait(entry)
        try:
            yield admitted
        finally:
            if admitted:
                self.left(entry)

    def count(self, what: str) -> None:
        """Count a refusal or a closing (on the event loop). The first is
        logged at once, the rest as one summary at most every
        ``REPORT_EVERY_S``: a flood must not become a flood of lines."""
        self.counts[what] += 1
        waited = self._clock() - self._last_report
        if waited >= REPORT_EVERY_S:
            self._report()
        elif self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(
                REPORT_EVERY_S - waited, self._report)

    def _report(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        since = {key: value - self._reported[key] for key, value in self.counts.items()
                 if value != self._reported[key]}
        self._reported, self._last_report = dict(self.counts), self._clock()
        if since:
            log.warning("connections_shed", open=self.open,
                        max_connections=self.limits.max_connections, **since)

    def middleware(self) -> Middleware:
        """Tells each connection when its request's headers are in (the
        header deadline ends, the body's starts) and when it was answered
        (the idle deadline starts again)."""

        @web.middleware
        async def deadlines(request: web.Request, handler: Handler) -> web.StreamResponse:
            transport = request.transport
            connection = None if transport is None else self._by_transport.get(transport)
            if connection is None:  # not one of ours (a test client's), or gone
                return await handler(request)
            connection.request_started(request)
            try:
                return await handler(request)
            except Exception:
                if connection.body_expired:  # its answer was the 408; it is closed
                    return web.Response(status=408)
                raise
            finally:
                connection.request_ended()

        return deadlines


class Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the deadlines around it."""

    def __init__(self, connections: Connections, inner: Any) -> None:
        self._connections = connections
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._admitted = False
        self._heard = False
        """Bytes arrived since it began waiting for a request."""
        self.body_expired = False

    # -- asyncio's side ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if not self._connections.admit():
            transport.write(TOO_MANY)
            transport.close()
            return
        self._admitted = True
        self._connections.serving(transport, self)
        self._inner.connection_made(transport)
        self._waiting()

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if not self._heard and self._timer is not None:  # a request begins
            self._heard = True
            self._connections.heard(self)
            self._arm(self._connections.limits.headers_s, self._headers_late)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if not self._admitted:
            return
        self._connections.left(self, self._transport)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._admitted:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self._inner.resume_writing()

    # -- the request's side (the middleware) --------------------------------------

    def request_started(self, request: web.Request) -> None:
        self._connections.busy(self)
        self._disarm()
        if request.body_exists and not request.content.is_eof():
            timer = self._arm(self._connections.limits.body_s, self._body_late)
            request.content.on_eof(lambda: self._disarm_if(timer))

    def request_ended(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._waiting()

    # -- deadlines ----------------------------------------------------------------

    def _waiting(self) -> None:
        self._heard = False
        self._connections.wait(self)
        self._arm(self._connections.limits.idle_s, self._idle)

    def _arm(self, seconds: float, then: Callable[[], None]) -> asyncio.TimerHandle:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(seconds, then)
        return self._timer

    def _disarm_if(self, timer: asyncio.TimerHandle) -> None:
        """End ``timer`` if it is still this connection's deadline (a body may
        end after its answer, once the idle deadline runs: that one stays)."""
        if self._timer is timer:
            self._disarm()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _idle(self) -> None:
        self._connections.count("idle_closed")
        self.drop()

    def _headers_late(self) -> None:
        self._connections.count("headers_late")
        self._close_with(HEADERS_LATE)

    def _body_late(self) -> None:
        self.body_expired = True
        self._connections.count("body_late")
        self._close_with(BODY_LATE)

    def _close_with(self, answer: bytes) -> None:
        self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(answer)
            self._transport.close()

    def drop(self) -> None:
        """Close now, answering nothing (it waits for a request)."""
        self._disarm()
        if self._transport is not None:
            self._transport.close()
