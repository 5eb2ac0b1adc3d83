"""CallLoop: coroutines from any thread, at most ``limit`` at once, closed in order."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import pytest

from lawhub_actors.adapters.call_loop import CallLoop


def test_a_submitted_call_runs_on_the_loops_own_thread_and_answers_a_future() -> None:
    calls = CallLoop(4, "calls-test")
    try:
        async def where() -> str:
            await asyncio.sleep(0)
            return threading.current_thread().name

        assert calls.submit(where()).result(5) == "calls-test"
    finally:
        calls.close(1.0)


def test_a_calls_error_is_its_futures() -> None:
    calls = CallLoop(1)
    try:
        async def fails() -> None:
            raise ValueError("meta said no")

        with pytest.raises(ValueError, match="meta said no"):
            calls.submit(fails()).result(5)
    finally:
        calls.close(1.0)


def test_at_most_limit_calls_run_at_once_and_the_rest_start_in_submitted_order() -> None:
    calls = CallLoop(2)
    running, most, started = 0, 0, []

    async def call(n: int) -> None:
        nonlocal running, most
        started.append(n)
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1

    try:
        futures = [calls.submit(call(n)) for n in range(6)]
        concurrent.futures.wait(futures, timeout=5)
    finally:
        calls.close(1.0)
    assert most == 2
    assert started == list(range(6))


def test_close_lets_calls_under_way_end_then_closes_what_lives_on_the_loop() -> None:
    calls = CallLoop(4)
    closed: list[str] = []

    async def slow() -> str:
        await asyncio.sleep(0.2)
        return "answered"

    async def close_session() -> None:
        closed.append("session")

    calls.at_close(close_session)
    future = calls.submit(slow())
    calls.close(5.0)
    assert future.result(0) == "answered"
    assert closed == ["session"]


def test_close_cancels_what_outlives_its_timeout_and_refuses_new_calls() -> None:
    calls = CallLoop(4)

    async def forever() -> None:
        await asyncio.sleep(3600)

    future = calls.submit(forever())
    started = time.monotonic()
    calls.close(0.2)
    assert time.monotonic() - started < 3
    assert future.cancelled()
    late = forever()
    with pytest.raises(RuntimeError, match="closing"):
        calls.submit(late)
    assert late.cr_frame is None  # closed, never left unawaited


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        CallLoop(0)
