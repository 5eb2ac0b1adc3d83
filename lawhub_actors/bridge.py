"""asyncio ⇄ actors, without ever blocking the event loop.

Awaiting a pykka future inside asyncio blocks the loop (pykka issue 99).
Here the reply slot handed to the actor is a pykka ``Future`` whose
``set``/``set_exception`` hop onto the loop with ``call_soon_threadsafe``
and resolve an asyncio future. Sends never wait on a full mailbox: the
caller gets ``MailboxFull`` at once and can answer 503.

The other direction (actors → websocket clients) goes through
:meth:`Bridge.call_soon`, which schedules a callback on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from typing import Any

import pykka

from supervisors import Registry
from supervisors.pykka_seam import Envelope


class _LoopFuture(pykka.Future[Any]):
    """The actor's end of an ask whose asker is a coroutine."""

    def __init__(self, loop: asyncio.AbstractEventLoop, target: asyncio.Future[Any]) -> None:
        super().__init__()
        self._loop = loop
        self._target = target

    def get(self, *, timeout: float | None = None) -> Any:
        raise RuntimeError("a bridged future is awaited on the event loop, never read")

    def set(self, value: Any | None = None) -> None:
        self._hop(value, None)

    def set_exception(self, exc_info: Any = None) -> None:
        self._hop(None, (exc_info or sys.exc_info())[1])

    def _hop(self, value: Any, error: BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self._loop.call_soon_threadsafe(_resolve, self._target, value, error)


def _resolve(target: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if target.done():  # the asker timed out meanwhile
        return
    if error is not None:
        target.set_exception(error)
    else:
        target.set_result(value)


async def ask(registry: Registry, path: str, message: Any, *, timeout: float,
              key: str | None = None) -> Any:
    """From a coroutine on any event loop: ask the actor at ``path``, waiting
    without blocking the loop; raises what the actor raised, ``TimeoutError``
    (the actor may still handle the message later), ``NotRegistered``, or
    ``MailboxFull`` at once (never waits for room)."""
    loop = asyncio.get_running_loop()
    target: asyncio.Future[Any] = loop.create_future()
    registry.send(path, Envelope(message, reply_to=_LoopFuture(loop, target)), key, wait=False)
    return await asyncio.wait_for(target, timeout)


class Bridge:
    def __init__(self, loop: asyncio.AbstractEventLoop, registry: Registry | None = None) -> None:
        self._loop = loop
        self._registry = registry

    def attach(self, registry: Registry) -> None:
        """The actors' registry, once the tree exists (it starts after the loop)."""
        self._registry = registry

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            raise RuntimeError("the bridge has no actor tree yet")
        return self._registry

    async def ask(self, path: str, message: Any, *, timeout: float, key: str | None = None) -> Any:
        """Ask the actor at ``path``; raises what the actor raised, or
        ``TimeoutError`` (the actor may still handle the message later)."""
        return await ask(self.registry, path, message, timeout=timeout, key=key)

    def tell(self, path: str, message: Any, *, key: str | None = None) -> None:
        self.registry.tell(path, message, key, wait=False)

    def call_soon(self, callback: Callable[..., None], *args: Any) -> None:
        """From any thread: run ``callback(*args)`` on the event loop (dropped
        once the loop has closed: nobody is listening any more)."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)
