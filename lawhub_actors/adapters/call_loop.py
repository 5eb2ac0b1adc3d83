"""One asyncio event loop on a thread of its own, running the calls that
actors hand it (the Graph API sends): every call under way is a coroutine
there, so ``limit`` calls in flight cost one thread, not ``limit``.

Why not a thread per call: a call mostly waits (for its throughput slot,
then for Meta's answer), and a pool of waiting threads is paid in CPU by
every one of them waking, taking the GIL and handing it back; a blocking
HTTP client is also dearer per request than aiohttp's. Measured on this
machine kind (FACTS.md): httpx with 32 threads ~2.2 ms of CPU per request,
aiohttp with 32 requests in flight on one loop ~0.35 ms.

:meth:`CallLoop.submit` takes a coroutine from any thread and answers a
``concurrent.futures.Future`` (an actor adds a callback that tells itself
the outcome). At most ``limit`` of the submitted coroutines run at once;
the others wait in the order they were submitted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import structlog

T = TypeVar("T")

log = structlog.get_logger("lawhub.calls")


class CallLoop:
    def __init__(self, limit: int, name: str = "calls") -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._loop = asyncio.new_event_loop()
        self._slots = asyncio.Semaphore(limit)
        self._closing = False
        self._at_close: list[Callable[[], Awaitable[None]]] = []
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, call: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``call`` on the loop as soon as one of the ``limit`` places is
        free; its outcome (or its error) in the future answered. Raises
        ``RuntimeError`` once :meth:`close` has begun (``call`` is closed)."""
        if self._closing:
            call.close()
            raise RuntimeError("the call loop is closing")
        return asyncio.run_coroutine_threadsafe(self._bounded(call), self._loop)

    def run(self, call: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """``call`` run on the loop outside the bound, waited for here (for
        setting up and closing what lives on the loop)."""
        return asyncio.run_coroutine_threadsafe(call, self._loop).result(timeout_s)

    def at_close(self, close: Callable[[], Awaitable[None]]) -> None:
        """Have ``close()`` awaited on the loop when it closes, after the calls
        (e.g. closing an HTTP session that lives on this loop)."""
        self._at_close.append(close)

    async def _bounded(self, call: Coroutine[Any, Any, T]) -> T:
        async with self._slots:
            return await call

    def close(self, timeout_s: float) -> None:
        """Take no more calls; let those under way end (each ends within its
        own timeout) for up to ``timeout_s`` seconds, cancel the rest (their
        futures are cancelled), await what :meth:`at_close` was given, and
        stop the loop's thread."""
        if self._closing:
            return
        self._closing = True
        with contextlib.suppress(concurrent.futures.TimeoutError):
            self.run(self._settle(timeout_s), timeout_s + 5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()

    async def _settle(self, timeout_s: float) -> None:
        current = asyncio.current_task()
        under_way = [task for task in asyncio.all_tasks() if task is not current]
        if under_way:
            _, pending = await asyncio.wait(under_way, timeout=timeout_s)
            if pending:
                log.warning("calls_cancelled_at_close", count=len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=1.0)
        for close in reversed(self._at_close):
            try:
                await close()
            except Exception as error:  # noqa: BLE001 - closing: the others still close
                log.warning("call_loop_close_failed", error=repr(error))
