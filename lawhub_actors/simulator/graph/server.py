"""Serving a :class:`~lawhub_actors.simulator.graph.stand_in.GraphStandIn`: :func:`serve` on
the caller's loop, or :func:`serve_in_thread` on a private loop in a daemon thread. Both
yield the base URL, ``http://127.0.0.1:<port>/v21.0``, which is what
``LAWHUB_GRAPH_BASE_URL`` takes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from aiohttp import web

from lawhub_actors.simulator.graph.stand_in import GraphStandIn

GRAPH_VERSION = "v21.0"
_SHUTDOWN_TIMEOUT_S = 5.0


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/{GRAPH_VERSION}"


async def _start(stand_in: GraphStandIn, host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(
        stand_in.make_app(), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = int(runner.addresses[0][1])
    except BaseException:
        await runner.cleanup()
        raise
    return runner, _base_url(host, bound_port)


@asynccontextmanager
async def serve(
    stand_in: GraphStandIn, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``stand_in`` on the running loop; yields ``http://host:port/v21.0``."""
    runner, base_url = await _start(stand_in, host, port)
    try:
        yield base_url
    finally:
        await runner.cleanup()


@contextmanager
def serve_in_thread(
    stand_in: GraphStandIn, host: str = "127.0.0.1", port: int = 0
) -> Iterator[str]:
    """Serve ``stand_in`` from a private loop in a daemon thread; yields the base URL.

    For synchronous callers (actor threads, sync tests), which must not block the
    serving loop.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="graph-stand-in", daemon=True)
    thread.start()
    try:
        runner, base_url = asyncio.run_coroutine_threadsafe(
            _start(stand_in, host, port), loop
        ).result(timeout=10)
        try:
            yield base_url
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(
                timeout=_SHUTDOWN_TIMEOUT_S + 5
            )
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()
