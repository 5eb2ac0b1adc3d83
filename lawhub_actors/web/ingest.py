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
import array
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
from dataclasses import dataclass
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
PARTIAL_LINE_S = 2.0
"""... and one whose first bytes do not tell within this."""
PASS_TIMEOUT_S = 5.0
"""How long a connection may wait for room to be passed to the main process."""
ACCEPT_PAUSE_S = 1.0
"""Pause after a failed ``accept`` (as asyncio's servers do)."""
CONTROL_SNDBUF = 4 * 1024 * 1024
FDS_PER_MESSAGE = 4
"""Room for descriptors in one control message (one is ever sent)."""
STATS_EVERY_S = 0.25
START_TIMEOUT_S = 30.0
RESTART_LIMIT = 10
"""Failures in a row after which the gateway gives up (exit 1)."""
RESTART_MAX_S = 10.0
STABLE_S = 30.0
"""A child that served this long before dying starts a new count of failures."""
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
    from lawhub_actors.web.metrics import timing_webhooks  # noqa: PLC0415

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

    journal = Journal(secrets.data_dir / JOURNAL_FILE, seal=seal, open_=open_,
                      batch_max=settings.storage.journal_batch_max, shared=True,
                      on_commit=committed)
    stats = _Stats(control)
    app = web.Application(client_max_size=settings.server.webhook_max_bytes,
                          middlewares=[timing_webhooks(stats.answered)])
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
    control.send(READY)
    reporting = asyncio.create_task(stats.report_every(STATS_EVERY_S))
    routing: set[asyncio.Task[None]] = set()
    accepting = asyncio.create_task(_accept(listener, control, runner, routing))
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


async def _accept(listener: socket.socket, control: socket.socket,
                  runner: web.AppRunner, routing: set[asyncio.Task[None]]) -> None:
    """Accept for as long as the child lives: a failed ``accept`` (out of
    file descriptors, a connection aborted) is waited out as asyncio's own
    servers do, never the end of accepting."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            connection, _ = await loop.sock_accept(listener)
        except ConnectionAbortedError:
            continue
        except OSError as error:
            log.warning("accept_failed", error=error.strerror or repr(error))
            await asyncio.sleep(ACCEPT_PAUSE_S)
            continue
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


# -- the main process's side -------------------------------------------------------------


ConnectionTaker = Callable[[socket.socket], None]
StatsTaker = Callable[[dict[str, int], list[float]], None]


@dataclass
class IngestState:
    """What operators see of the ack path (``/admin/tree``'s ``services``). (While
    the child is down nothing answers from outside at all: the port's new
    connections wait in its backlog for the next child.)"""

    mode: str = "inline"
    serving: bool = True
    """False while the ack path's process is down (until it serves again)."""
    pid: int | None = None
    restarts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "serving": self.serving, "pid": self.pid,
                "restarts": self.restarts}


class IngestProcess:
    """Runs and supervises the child; hands the connections it passes to
    ``take``, its figures to ``count`` and what it committed to ``committed``.

    A child that dies is started again after a pause that doubles with each
    failure in a row (up to ``RESTART_MAX_S``; a child that had served
    ``STABLE_S`` starts the count again); after ``RESTART_LIMIT`` failures in
    a row, ``give_up`` is called (the gateway exits 1, and its own
    supervisor takes over)."""

    def __init__(self, handover: bytes, listener: socket.socket, *, take: ConnectionTaker,
                 count: StatsTaker, committed: Callable[[int], None],
                 give_up: Callable[[str], None], state: IngestState | None = None) -> None:
        self._buffer = bytearray(CONTROL_BYTES)
        self._fds_space = socket.CMSG_SPACE(FDS_PER_MESSAGE * array.array("i").itemsize)
        self.state = state or IngestState()
        self.state.mode, self.state.serving = "process", False
        self._handover = handover
        self._committed = committed
        self._listener = listener
        self._take = take
        self._count = count
        self._give_up = give_up
        self._stopping = False
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._ready: asyncio.Future[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self.restarts = 0

    async def start(self) -> None:
        """Start the child and wait until it serves (raises if it cannot)."""
        await self._spawn()
        self._watch = asyncio.create_task(self._supervise())

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        self._ready = ready = loop.create_future()
        try:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "lawhub_actors.web.ingest",
                 "--listen-fd", str(self._listener.fileno()),
                 "--control-fd", str(theirs.fileno())],
                stdin=subprocess.PIPE, pass_fds=(self._listener.fileno(), theirs.fileno()),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._process, self._control = process, ours
        loop.add_reader(ours.fileno(), self._on_control, ours)
        try:
            await asyncio.to_thread(_hand_over, process, self._handover)
            await asyncio.wait_for(asyncio.shield(ready), START_TIMEOUT_S)
        except (BaseException, TimeoutError) as error:
            process.kill()
            await asyncio.to_thread(process.wait)
            self._forget_control()
            if isinstance(error, asyncio.CancelledError):
                raise
            raise RuntimeError(f"the ingest process did not start: {error!r}") from error
        self.state.serving, self.state.pid = True, process.pid
        log.info("ingest_process_started", pid=process.pid)

    def _on_control(self, control: socket.socket) -> None:
        """Everything the child sent since the last wake (a busy main
        process must not leave the pair full); commits are coalesced."""
        last_commit = 0
        while True:
            try:
                message, fds = self._receive(control)
            except BlockingIOError:
                break
            except OSError:
                message, fds = b"", []
            if not message:  # the child is gone: its supervisor takes over
                self._child_gone(control)
                break
            try:
                if message[:1] == COMMITTED:
                    last_commit = max(last_commit, int(message[1:]))
                elif message[:1] == CONNECTION:
                    self._take_all(fds)
                    fds = []
                elif message[:1] == STATS:
                    figures = orjson.loads(message[1:])
                    self._count(figures["statuses"], figures["latencies"])
                elif message[:1] == READY and self._ready is not None \
                        and not self._ready.done():
                    self._ready.set_result(None)
            finally:
                for fd in fds:
                    os.close(fd)
        if last_commit:
            self._committed(last_commit)

    def _receive(self, control: socket.socket) -> tuple[bytes, list[int]]:
        """One message and the descriptors it carries, read into a buffer
        kept for the purpose (a commit notice a millisecond must not cost a
        64 KiB allocation each)."""
        size, ancillary, _, _ = control.recvmsg_into([self._buffer], self._fds_space)
        fds = array.array("i")
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        return bytes(self._buffer[:size]), list(fds)

    def _take_all(self, fds: list[int]) -> None:
        for fd in fds:
            try:
                self._take(socket.socket(fileno=fd))
            except OSError:
                os.close(fd)

    def _child_gone(self, control: socket.socket) -> None:
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(control.fileno())
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(RuntimeError("the ingest process ended before it served"))

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            process = self._process
            assert process is not None
            began = time.monotonic()
            code = await asyncio.to_thread(process.wait)
            self.state.serving = False
            self._forget_control()
            if self._stopping:
                return
            if time.monotonic() - began >= STABLE_S:
                failures = 0  # it had served a good while: not a crash loop
            while not self._stopping:
                failures += 1
                self.restarts += 1
                self.state.restarts = self.restarts
                log.error("ingest_process_exited", code=code, restarts=self.restarts)
                if failures > RESTART_LIMIT:
                    self._give_up(f"the ingest process failed {failures - 1} times in a row")
                    return
                await asyncio.sleep(min(RESTART_PAUSE_S * 2 ** (failures - 1), RESTART_MAX_S))
                if self._stopping:
                    return
                try:
                    await self._spawn()
                except RuntimeError as error:
                    code = repr(error)
                    continue
                break

    def _forget_control(self) -> None:
        control, self._control = self._control, None
        if control is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(control.fileno())
            control.close()

    async def stop(self, timeout_s: float) -> None:
        """Refuse new connections at once, stop the child (its webhooks in
        hand finish), and end its supervision, even mid-restart."""
        self._stopping = True
        self._listener.close()
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), timeout_s)
            except TimeoutError:
                process.kill()
                await asyncio.to_thread(process.wait)
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.wait({self._watch})
        process = self._process  # a restart may have begun meanwhile
        if process is not None and process.poll() is None:
            process.kill()
            await asyncio.to_thread(process.wait)
        self._forget_control()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid


def _hand_over(process: subprocess.Popen[bytes], handover: bytes) -> None:
    """Write the child's settings and secrets to its stdin (off the loop: a
    large config fills the pipe until the child reads it)."""
    assert process.stdin is not None
    try:
        process.stdin.write(handover)
    finally:
        with contextlib.suppress(OSError):
            process.stdin.close()


if __name__ == "__main__":
    raise SystemExit(main())
