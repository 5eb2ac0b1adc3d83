"""The ack path in a process of its own (``[server] ingest = "process"``): the child.

One interpreter cannot keep Meta's acknowledgements fast while its actors
process a backlog: they share one GIL (measured: ack p99 362 ms at twice
the processing capacity, against 91 ms for a bare aiohttp handler in the
same run). So the webhook's whole ack path — HTTP, the HMAC, the checks, the
durable journal append — can run in a child process, and the main process
keeps everything else, reading the journal the child writes (SQLite WAL:
one file, two processes; see ``Journal(shared=True)``).

One port serves both, as before. The main process binds it and hands the
listening socket to the child, which accepts every connection and *peeks*
at its first request line (``MSG_PEEK``: nothing is consumed):

- ``/webhook`` (GET handshake or POST): the child serves the connection;
- anything else: the child passes the connection's file descriptor to the
  main process (``SCM_RIGHTS`` over a ``SOCK_SEQPACKET`` pair), whose aiohttp
  server takes it over as if it had accepted it — websockets included.

A kept-alive connection stays where its first request went. The main
process serves a webhook that arrives on one of its connections itself
(both append to the shared journal); the child answers anything but a
webhook on one of its own with 421 and closes it (clients retry on a new
connection, which lands right). The child reports its webhook answers and
ack latencies to the main process, so ``/metrics`` counts them as before.

The main process supervises the child (:mod:`.ingest_supervisor`: started
before the main process serves, restarted if it dies, stopped first on
shutdown; the listening socket stays open there meanwhile, so connections
wait in its backlog rather than being refused). What passes between the
two is in :mod:`.ingest_wire`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys
import time

import orjson
import structlog
from aiohttp import web

from lawhub_actors import logs
from lawhub_actors.adapters.databases import journal_database
from lawhub_actors.adapters.journal import Journal
from lawhub_actors.adapters.memory_release import map_big_allocations
from lawhub_actors.runtime import journal_crypto
from lawhub_actors.settings import Secrets, Settings
from lawhub_actors.web import webhook
from lawhub_actors.web.connections import TOO_MANY, Connections, Limits
from lawhub_actors.web.ingest_wire import (
    COMMITTED,
    CONNECTION,
    READY,
    STATS,
    STATS_PER_MESSAGE,
    read_handover,
)
from lawhub_actors.web.keys import APP_SECRET, JOURNAL, VERIFY_TOKEN, WEBHOOK_MAX_BYTES
from lawhub_actors.web.metrics import timing_webhooks

log = structlog.get_logger("lawhub.ingest")

PEEK_BYTES = 64
PEEK_TIMEOUT_S = 10.0
"""A connection that sends no request line within this is closed."""
PARTIAL_LINE_S = 2.0
"""... and one whose first bytes do not tell within this."""
PASS_TIMEOUT_S = 5.0
"""How long a connection may wait for room to be passed to the main process."""
ACCEPT_PAUSE_S = 1.0
"""Pause after a failed ``accept`` (as asyncio's servers do)."""
ACCEPT_BATCH = 256
"""Connections accepted per wake-up (asyncio's servers take their backlog's
worth): one per wake-up cannot keep up with a flood, and once the listening
backlog is full the kernel drops new SYNs, which their senders retry only a
second later."""
CONTROL_SNDBUF = 4 * 1024 * 1024
"""The control pair's send buffer: room for a main process busy a while."""
STATS_EVERY_S = 0.25


def goes_to_ingest(first_bytes: bytes) -> bool | None:
    """Whether a connection whose first bytes are ``first_bytes`` is the
    webhook's (``GET``/``POST`` of ``/webhook``, with or without a query);
    ``None`` while too few bytes have come to tell."""
    for method in (b"POST ", b"GET "):
        if first_bytes.startswith(method):
            rest = first_bytes[len(method):]
            target = b"/webhook"
            if len(rest) <= len(target):
                return None if target.startswith(rest) else False
            return rest.startswith(target) and rest[len(target):len(target) + 1] in b" ?"
        if method.startswith(first_bytes):
            return None
    return False


def wanted_nice(started: int, ahead: int) -> int:
    """The nice value ``ahead`` levels before ``started`` (never below -20)."""
    return max(-20, started + ahead)


def ahead_of_processing(ahead: int) -> tuple[bool, int]:
    """Run this process (its threads are made after) ``ahead`` (<= 0) nice
    levels before the one it started at, the processing's (never below
    -20): when the actors keep both cores busy, an acknowledgement waits
    less for a core (at 3,000 POSTs/s, twice what the actors process, the
    ack p99 went from ~60-130 ms at 0 to 12-24 ms at -10). Raising a
    priority needs a privilege (CAP_SYS_NICE, or an RLIMIT_NICE that allows
    it): without it nothing changes. Whether it was applied, and the nice
    value this process runs at."""
    started = os.getpriority(os.PRIO_PROCESS, 0)
    if ahead == 0:
        return True, started
    target = wanted_nice(started, ahead)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, target)
    except OSError:
        return False, started
    return True, target


def main(argv: list[str] | None = None) -> int:
    """``python -m lawhub_actors.web.ingest --listen-fd N --control-fd M``,
    the settings and secrets on stdin (:func:`.ingest_wire.handover`)."""
    parser = argparse.ArgumentParser(prog="lawhub-ingest")
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    args = parser.parse_args(argv)
    settings, secrets = read_handover(sys.stdin.buffer.read())
    logs.configure(level=settings.logging.level, secrets=secrets)
    ahead = settings.server.ingest_nice
    applied, nice = ahead_of_processing(ahead)
    if applied:
        log.info("ingest_priority", ahead=ahead, nice=nice, applied=True)
    else:
        wanted = wanted_nice(nice, ahead)
        log.warning("ingest_priority", ahead=ahead, nice=nice, applied=False,
                    fix=f"grant the privilege (CAP_SYS_NICE; or systemd's LimitNICE={wanted:+d},"
                        f" Docker's --ulimit nice={20 - wanted}) or set [server] ingest_nice = 0")
    map_big_allocations()
    listener = socket.socket(fileno=args.listen_fd)
    control = socket.socket(fileno=args.control_fd)
    return asyncio.run(_serve_ingest(settings, secrets, listener, control))


async def _serve_ingest(settings: Settings, secrets: Secrets, listener: socket.socket,
                        control: socket.socket) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # Ctrl-C reaches the whole process group: the main process decides when
    # the ack path stops (after it, on its way out), not the keyboard.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload is the main process's
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    seal, open_ = journal_crypto(secrets)

    def committed(seq: int) -> None:  # on the journal's writer thread
        with contextlib.suppress(OSError):  # the main process is gone
            control.send(COMMITTED + str(seq).encode())

    journal = Journal(journal_database(settings, secrets), seal=seal, open_=open_,
                      batch_max=settings.storage.journal_batch_max, shared=True,
                      on_commit=committed)
    stats = _Stats(control)
    connections = Connections(Limits.of(settings.server))
    app = web.Application(client_max_size=settings.server.webhook_max_bytes,
                          middlewares=[connections.middleware(),
                                       timing_webhooks(stats.answered)])
    app[WEBHOOK_MAX_BYTES] = settings.server.webhook_max_bytes
    app[JOURNAL] = journal
    if secrets.app_secret is not None:
        app[APP_SECRET] = secrets.app_secret.get_secret_value().encode()
    if secrets.verify_token is not None:
        app[VERIFY_TOKEN] = secrets.verify_token.get_secret_value()
    webhook.add_routes(app)
    app.router.add_route("*", "/{tail:.*}", _misdirected)
    # Finish within the main process's patience (it kills at shutdown_timeout_s).
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=settings.server.shutdown_timeout_s / 2)
    await runner.setup()
    listener.setblocking(False)
    control.setblocking(False)
    with contextlib.suppress(OSError):
        control.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CONTROL_SNDBUF)
    # The main process never writes to us: the pair turning readable means it
    # is gone (even SIGKILLed), and an ack path alone must not go on.
    loop.add_reader(control.fileno(), _parent_gone, control, stop)
    # What start-up made (modules, settings, the app) lives as long as the
    # process: out of the collector's sight, a full collection scans only
    # what requests leave, ~1 ms instead of ~40 ms each acknowledgement
    # waiting behind it would pay.
    gc.freeze()
    control.send(READY)
    reporting = asyncio.create_task(stats.report_every(STATS_EVERY_S))
    routing: set[asyncio.Task[None]] = set()
    accepting = asyncio.create_task(_accept(listener, control, runner, connections, routing))
    await stop.wait()
    accepting.cancel()
    listener.close()  # refused at once from now on, not left in a backlog
    for task in list(routing):
        task.cancel()
    await asyncio.gather(accepting, *routing, return_exceptions=True)
    await runner.cleanup()
    reporting.cancel()
    stats.report()
    await asyncio.to_thread(journal.close)
    return 0


def _parent_gone(control: socket.socket, stop: asyncio.Event) -> None:
    with contextlib.suppress(BlockingIOError):
        if control.recv(1):
            return  # (nothing is ever sent this way)
    with contextlib.suppress(ValueError):
        asyncio.get_running_loop().remove_reader(control.fileno())
    log.warning("ingest_parent_gone")
    stop.set()


async def _misdirected(request: web.Request) -> web.Response:
    """Not a webhook on a connection that began with one: 421, and close it
    (the client's next connection reaches the main process)."""
    response = web.json_response(
        {"error": {"code": "misdirected", "message": "only /webhook on this connection;"
                   " retry on a new connection"}},
        status=421)
    response.force_close()
    return response


async def _accept(listener: socket.socket, control: socket.socket, runner: web.AppRunner,
                  connections: Connections, routing: set[asyncio.Task[None]]) -> None:
    """Accept for as long as the child lives: a failed ``accept`` (out of
    file descriptors, a connection aborted) is waited out as asyncio's own
    servers do, never the end of accepting."""
    loop = asyncio.get_running_loop()
    while True:
        readable: asyncio.Future[None] = loop.create_future()
        loop.add_reader(listener.fileno(), _set_once, readable)
        try:
            await readable
        finally:
            loop.remove_reader(listener.fileno())
        for _ in range(ACCEPT_BATCH):  # what waits, at once: a full backlog drops SYNs
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, ConnectionAbortedError):
                break
            except OSError as error:
                log.warning("accept_failed", error=error.strerror or repr(error))
                await asyncio.sleep(ACCEPT_PAUSE_S)
                break
            task = asyncio.create_task(_route(connection, control, runner, connections))
            routing.add(task)
            task.add_done_callback(routing.discard)


async def _route(connection: socket.socket, control: socket.socket,
                 runner: web.AppRunner, connections: Connections) -> None:
    """Serve the connection here (the webhook's) or pass it to the main
    process; while its first line is awaited it counts as a connection of
    ours waiting for a request (over the cap, the first to be closed)."""
    loop = asyncio.get_running_loop()
    connection.setblocking(False)
    with connections.hold(_Peeking(connection)) as admitted:
        if not admitted:
            with contextlib.suppress(OSError):
                connection.send(TOO_MANY)
            connection.close()
            return
        try:
            ours = await _peek(connection)
        except (OSError, TimeoutError):
            connection.close()
            return
    if ours:
        assert runner.server is not None
        await loop.connect_accepted_socket(connections.factory(runner.server), connection)
        return
    try:  # the main process takes it over; our copy is closed either way
        await _pass(control, connection)
    except (OSError, TimeoutError):
        log.warning("connection_not_passed")
    connection.close()


async def _pass(control: socket.socket, connection: socket.socket) -> None:
    """Send the connection's descriptor, waiting while the pair is full (the
    main process busy) up to ``PASS_TIMEOUT_S``."""
    deadline = time.monotonic() + PASS_TIMEOUT_S
    pause = 0.001
    while True:
        try:
            socket.send_fds(control, [CONNECTION], [connection.fileno()])
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError("the main process takes no connection") from None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)


async def _peek(connection: socket.socket) -> bool:
    """Whether the connection is the webhook's, from its first bytes, which
    stay unread. Peeking consumes nothing, so a socket holding a partial
    line stays readable: wait for more with a growing pause, and give a
    partial line ``PARTIAL_LINE_S`` at most (a client that sent a byte and
    closed would otherwise be peeked at until the deadline)."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + PEEK_TIMEOUT_S
    partial_since: float | None = None
    pause = 0.001
    while True:
        readable: asyncio.Future[None] = loop.create_future()
        loop.add_reader(connection.fileno(), _set_once, readable)
        try:
            await asyncio.wait_for(readable, max(0.0, deadline - time.monotonic()))
        finally:
            loop.remove_reader(connection.fileno())
        first = connection.recv(PEEK_BYTES, socket.MSG_PEEK)
        if not first:
            raise OSError("closed before its request line")
        decided = goes_to_ingest(first)
        if decided is not None:
            return decided
        if len(first) >= PEEK_BYTES:
            return False
        now = time.monotonic()
        partial_since = partial_since or now
        if now - partial_since > PARTIAL_LINE_S:
            raise TimeoutError("a partial request line")
        await asyncio.sleep(pause)  # the rest of the line is on its way
        pause = min(pause * 2, 0.05)


class _Peeking:
    """A connection whose first line is awaited, as the cap sees it."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection

    def drop(self) -> None:
        """Its peek wakes to an end of stream and closes it."""
        with contextlib.suppress(OSError):
            self._connection.shutdown(socket.SHUT_RDWR)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Stats:
    """Webhook answers and ack latencies, sent to the main process in batches."""

    def __init__(self, control: socket.socket) -> None:
        self._control = control
        self._statuses: dict[str, int] = {}
        self._latencies: list[float] = []

    def answered(self, request: web.Request, status: int, seconds: float) -> None:
        self._statuses[str(status)] = self._statuses.get(str(status), 0) + 1
        self._latencies.append(seconds)

    async def report_every(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            self.report()

    def report(self) -> None:
        statuses, latencies = self._statuses, self._latencies
        self._statuses, self._latencies = {}, []
        for start in range(0, len(latencies), STATS_PER_MESSAGE):  # each fits CONTROL_BYTES
            message = STATS + orjson.dumps({
                "statuses": statuses if start == 0 else {},
                "latencies": [round(x, 6) for x in latencies[start:start + STATS_PER_MESSAGE]],
            })
            with contextlib.suppress(OSError):  # the main process is gone: nothing to tell
                self._control.send(message)


if __name__ == "__main__":
    raise SystemExit(main())
