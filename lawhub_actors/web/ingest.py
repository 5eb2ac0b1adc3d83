"""The ack path in a process of its own (``[server] ingest = "process"``).

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

The main process supervises the child: started before the main process
serves, restarted (after a short pause) if it dies, stopped on shutdown.
The listening socket stays open in the main process meanwhile, so
connections wait in its backlog rather than being refused.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

log = structlog.get_logger("lawhub.ingest")

CONNECTION = b"c"
"""A control message carrying one connection's file descriptor."""
STATS = b"s"
"""A control message carrying webhook answers and ack latencies (JSON)."""
READY = b"r"
"""The child serves."""
COMMITTED = b"j"
"""The child committed journal entries up to the sequence number that follows."""
PEEK_BYTES = 64
PEEK_TIMEOUT_S = 10.0
"""A connection that sends no request line within this is closed."""
STATS_EVERY_S = 0.25
STATS_PER_MESSAGE = 2_000
"""Latencies per control message (about 20 bytes each in JSON)."""
CONTROL_BYTES = 64 * 1024
"""The largest control message read (a datagram is never split: none is larger)."""
RESTART_PAUSE_S = 0.5


def passes_connections() -> bool:
    """Whether this platform can hand a connection to another process the
    way the ack path does (SCM_RIGHTS over SOCK_SEQPACKET: Linux); else the
    gateway runs the ack path inline, and says so."""
    able = hasattr(socket, "send_fds") and hasattr(socket, "SOCK_SEQPACKET") \
        and sys.platform.startswith("linux")
    if not able:
        log.warning("ingest_inline", reason="connections cannot be passed between processes here")
    return able


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


# -- the child -------------------------------------------------------------------------


def handover(settings: Any, secrets: Any) -> bytes:
    """What the child reads on its stdin: the settings and the secrets it
    needs (the main process's own, which may have been made up in memory,
    as the demo's are): never in its arguments or environment."""
    def reveal(value: Any) -> Any:
        return None if value is None else value.get_secret_value()

    key = reveal(secrets.master_key)
    return orjson.dumps({
        "settings": settings.model_dump(mode="json"),
        "secrets": {
            "app_secret": reveal(secrets.app_secret),
            "verify_token": reveal(secrets.verify_token),
            "master_key": None if key is None else base64.b64encode(key).decode(),
            "master_key_version": secrets.master_key_version,
            "data_dir": str(secrets.data_dir),
        },
    })


def main(argv: list[str] | None = None) -> int:
    """``python -m lawhub_actors.web.ingest --listen-fd N --control-fd M``,
    the settings and secrets on stdin (:func:`handover`)."""
    parser = argparse.ArgumentParser(prog="lawhub-ingest")
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    args = parser.parse_args(argv)
    # Imported here: the parent imports this module for its side of the work.
    from lawhub_actors import logs  # noqa: PLC0415
    from lawhub_actors.adapters.memory_release import map_big_allocations  # noqa: PLC0415
    from lawhub_actors.settings import Secrets, Settings  # noqa: PLC0415

    given = orjson.loads(sys.stdin.buffer.read())
    settings = Settings.model_validate(given["settings"])
    mine = given["secrets"]
    secrets = Secrets.model_validate({
        **mine, "master_key": base64.b64decode(mine["master_key"]) if mine["master_key"] else None,
    })
    logs.configure(level=settings.logging.level, secrets=secrets)
    map_big_allocations()
    listener = socket.socket(fileno=args.listen_fd)
    control = socket.socket(fileno=args.control_fd)
    return asyncio.run(_serve_ingest(settings, secrets, listener, control))


async def _serve_ingest(settings: Any, secrets: Any, listener: socket.socket,
                        control: socket.socket) -> int:
    from lawhub_actors.adapters.sqlite_journal import Journal  # noqa: PLC0415
    from lawhub_actors.runtime import JOURNAL_FILE, journal_crypto  # noqa: PLC0415
    from lawhub_actors.web import webhook  # noqa: PLC0415
    from lawhub_actors.web.keys import (  # noqa: PLC0415
        APP_SECRET,
        JOURNAL,
        VERIFY_TOKEN,
        WEBHOOK_MAX_BYTES,
    )

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # Ctrl-C reaches the whole process group: the main process decides when
    # the ack path stops (after it, on its way out), not the keyboard.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    seal, open_ = journal_crypto(secrets)

    def committed(seq: int) -> None:  # on the journal's writer thread
        with contextlib.suppress(OSError):  # the main process is gone
            control.send(COMMITTED + str(seq).encode())

    journal = Journal(secrets.data_dir / JOURNAL_FILE, seal=seal, open_=open_,
                      batch_max=settings.storage.journal_batch_max, shared=True,
                      on_commit=committed)
    stats = _Stats(control)
    app = web.Application(client_max_size=settings.server.webhook_max_bytes,
                          middlewares=[stats.middleware])
    app[WEBHOOK_MAX_BYTES] = settings.server.webhook_max_bytes
    app[JOURNAL] = journal
    if secrets.app_secret is not None:
        app[APP_SECRET] = secrets.app_secret.get_secret_value().encode()
    if secrets.verify_token is not None:
        app[VERIFY_TOKEN] = secrets.verify_token.get_secret_value()
    webhook.add_routes(app)
    app.router.add_route("*", "/{tail:.*}", _misdirected)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    listener.setblocking(False)
    control.setblocking(False)
    # The main process never writes to us: the pair turning readable means it
    # is gone (even SIGKILLed), and an ack path alone must not go on.
    loop.add_reader(control.fileno(), _parent_gone, control, stop)
    control.send(READY)
    reporting = asyncio.create_task(stats.report_every(STATS_EVERY_S))
    accepting = asyncio.create_task(_accept(listener, control, runner))
    await stop.wait()
    accepting.cancel()
    await runner.shutdown()
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
    return web.json_response(
        {"error": {"code": "misdirected", "message": "only /webhook on this connection;"
                   " retry on a new connection"}},
        status=421, headers={"Connection": "close"})


async def _accept(listener: socket.socket, control: socket.socket,
                  runner: web.AppRunner) -> None:
    loop = asyncio.get_running_loop()
    routing: set[asyncio.Task[None]] = set()
    while True:
        connection, _ = await loop.sock_accept(listener)
        task = asyncio.create_task(_route(connection, control, runner))
        routing.add(task)
        task.add_done_callback(routing.discard)


async def _route(connection: socket.socket, control: socket.socket,
                 runner: web.AppRunner) -> None:
    loop = asyncio.get_running_loop()
    connection.setblocking(False)
    try:
        ours = await _peek(connection)
    except (OSError, TimeoutError):
        connection.close()
        return
    if ours:
        assert runner.server is not None
        await loop.connect_accepted_socket(runner.server, connection)
        return
    try:  # the main process takes it over; our copy is closed either way
        socket.send_fds(control, [CONNECTION], [connection.fileno()])
    except OSError:
        log.warning("connection_not_passed")
    connection.close()


async def _peek(connection: socket.socket) -> bool:
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + PEEK_TIMEOUT_S
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
        await asyncio.sleep(0.001)  # the rest of the line is on its way


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Stats:
    """Webhook answers and ack latencies, sent to the main process in batches."""

    def __init__(self, control: socket.socket) -> None:
        self._control = control
        self._statuses: dict[str, int] = {}
        self._latencies: list[float] = []

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        if request.path != "/webhook" or request.method != "POST":
            return await handler(request)  # type: ignore[no-any-return]
        began = time.perf_counter()
        status = 500
        try:
            response: web.StreamResponse = await handler(request)
            status = response.status
            return response
        finally:
            self._statuses[str(status)] = self._statuses.get(str(status), 0) + 1
            self._latencies.append(time.perf_counter() - began)

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


# -- the main process's side -------------------------------------------------------------


ConnectionTaker = Callable[[socket.socket], None]
StatsTaker = Callable[[dict[str, int], list[float]], None]


class IngestProcess:
    """Runs and supervises the child; hands the connections it passes to
    ``take``, its figures to ``count`` and what it committed to ``committed``."""

    def __init__(self, handover: bytes, listener: socket.socket, take: ConnectionTaker,
                 count: StatsTaker, committed: Callable[[int], None]) -> None:
        self._handover = handover
        self._committed = committed
        self._listener = listener
        self._take = take
        self._count = count
        self._stopping = False
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._ready: asyncio.Future[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self.restarts = 0

    async def start(self) -> None:
        """Start the child and wait until it serves."""
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        self._ready = loop.create_future()
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "lawhub_actors.web.ingest",
             "--listen-fd", str(self._listener.fileno()), "--control-fd", str(theirs.fileno())],
            stdin=subprocess.PIPE, pass_fds=(self._listener.fileno(), theirs.fileno()),
        )
        theirs.close()
        assert process.stdin is not None
        process.stdin.write(self._handover)
        process.stdin.close()
        self._process, self._control = process, ours
        loop.add_reader(ours.fileno(), self._on_control, ours)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), 30)
        except TimeoutError:
            process.kill()
            raise RuntimeError("the ingest process did not start within 30 s") from None
        log.info("ingest_process_started", pid=process.pid)
        self._watch = asyncio.create_task(self._watch_exit(process))

    def _on_control(self, control: socket.socket) -> None:
        try:
            message, fds, _, _ = socket.recv_fds(control, CONTROL_BYTES, 4)
        except BlockingIOError:
            return
        except OSError:
            message, fds = b"", []
        if not message:  # the child is gone: its watcher takes over
            asyncio.get_running_loop().remove_reader(control.fileno())
            return
        kind = message[:1]
        if kind == COMMITTED:
            self._committed(int(message[1:]))
        elif kind == CONNECTION:
            for fd in fds:
                self._take(socket.socket(fileno=fd))
        elif kind == STATS:
            figures = orjson.loads(message[1:])
            self._count(figures["statuses"], figures["latencies"])
        elif kind == READY and self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        for fd in fds if kind != CONNECTION else ():
            os.close(fd)

    async def _watch_exit(self, process: subprocess.Popen[bytes]) -> None:
        code = await asyncio.to_thread(process.wait)
        self._forget_control()
        if self._stopping:
            return
        self.restarts += 1
        log.error("ingest_process_exited", code=code, restarts=self.restarts)
        await asyncio.sleep(RESTART_PAUSE_S)
        if not self._stopping:
            await self.start()

    def _forget_control(self) -> None:
        control, self._control = self._control, None
        if control is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(control.fileno())
            control.close()

    async def stop(self, timeout_s: float) -> None:
        self._stopping = True
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), timeout_s)
            except TimeoutError:
                process.kill()
        if self._watch is not None:
            await asyncio.wait({self._watch})
        self._forget_control()
        self._listener.close()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid


if __name__ == "__main__":
    raise SystemExit(main())
