"""Waiting in tests: poll a cheap condition until it holds, with a deadline
(never a bare sleep to synchronise)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

POLL_S = 0.01


async def until(predicate: Callable[[], bool], timeout: float = 10.0,
                what: str = "the condition") -> None:
    """On the test's event loop: poll ``predicate()`` until it is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(POLL_S)


def until_sync(predicate: Callable[[], bool], timeout: float = 10.0,
               what: str = "the condition") -> None:
    """On a plain thread: poll ``predicate()`` until it is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(POLL_S / 2)
