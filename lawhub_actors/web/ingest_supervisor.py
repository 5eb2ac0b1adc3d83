"""The main process's side of the ack path's process: start it, take the
connections it passes back, follow what it commits, count its answers,
restart it when it dies, stop it first on the way out (the whole
arrangement: :mod:`lawhub_actors.web.ingest`).
"""

from __future__ import annotations

import array
import asyncio
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

from lawhub_actors.web.ingest_wire import (
    COMMITTED,
    CONNECTION,
    CONTROL_BYTES,
    FDS_PER_MESSAGE,
    READY,
    STATS,
)

log = structlog.get_logger("lawhub.ingest")

START_TIMEOUT_S = 30.0
RESTART_PAUSE_S = 0.5
"""The first pause before a restart; it doubles with each failure in a row."""
RESTART_MAX_S = 10.0
RESTART_LIMIT = 10
"""Failures in a row after which the gateway gives up (exit 1)."""
STABLE_S = 30.0
"""A child that served this long before dying starts a new count of failures."""


def passes_connections() -> bool:
    """Whether this platform can hand a connection to another process the
    way the ack path does (SCM_RIGHTS over SOCK_SEQPACKET: Linux); else the
    gateway runs the ack path inline, and says so."""
    able = hasattr(socket, "send_fds") and hasattr(socket, "SOCK_SEQPACKET") \
        and sys.platform.startswith("linux")
    if not able:
        log.warning("ingest_inline", reason="connections cannot be passed between processes here")
    return able


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
            ended: int | str = await asyncio.to_thread(process.wait)  # exit code, or why
            self.state.serving = False
            self._forget_control()
            if self._stopping:
                return
            if time.monotonic() - began >= STABLE_S:
                failures = 0  # it had served a good while: not a crash loop
            while not self._stopping:
                failures += 1
                self.state.restarts += 1
                log.error("ingest_process_exited", code=ended, restarts=self.state.restarts)
                if failures > RESTART_LIMIT:
                    self._give_up(f"the ingest process failed {failures - 1} times in a row")
                    return
                await asyncio.sleep(min(RESTART_PAUSE_S * 2 ** (failures - 1), RESTART_MAX_S))
                if self._stopping:
                    return
                try:
                    await self._spawn()
                except RuntimeError as error:
                    ended = repr(error)
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

    @property
    def restarts(self) -> int:
        return self.state.restarts


def _hand_over(process: subprocess.Popen[bytes], handover: bytes) -> None:
    """Write the child's settings and secrets to its stdin (off the loop: a
    large config fills the pipe until the child reads it)."""
    assert process.stdin is not None
    try:
        process.stdin.write(handover)
    finally:
        with contextlib.suppress(OSError):
            process.stdin.close()
