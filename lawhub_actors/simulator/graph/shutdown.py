"""The served app's shutdown signal: stalled downloads, throttling, delays and sends held
unanswered all wait on it, so that the server stops promptly."""

from __future__ import annotations

import asyncio

from aiohttp import web

_RELEASE = web.AppKey("release", asyncio.Event)


def install(app: web.Application) -> None:
    """Give ``app`` its signal, set when it starts shutting down."""
    app[_RELEASE] = asyncio.Event()
    app.on_shutdown.append(_release)


async def _release(app: web.Application) -> None:
    app[_RELEASE].set()  # ends stalls, delays and throttling so shutdown is prompt


async def until_shutdown(app: web.Application) -> None:
    """Return once ``app`` starts shutting down."""
    await app[_RELEASE].wait()


async def pause(app: web.Application, seconds: float) -> bool:
    """Sleep ``seconds`` unless the app shuts down first; True when it is shutting down."""
    release = app[_RELEASE]
    if seconds <= 0:
        return release.is_set()
    try:
        await asyncio.wait_for(release.wait(), seconds)
    except TimeoutError:
        return False
    return True
