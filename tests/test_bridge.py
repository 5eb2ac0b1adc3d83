"""The bridge: coroutines ask actors without blocking the event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from lawhub_actors.bridge import Bridge
from supervisors import Actor, ChildSpec, MailboxFull, MailboxSpec, Overflow, Tree, supervisor_spec
from tests.supervisors.helpers import flags


class Slow(Actor):
    gate = threading.Event()

    def receive(self, message: Any) -> Any:
        if message == "block":
            Slow.gate.wait(5)
        if message == "fail":
            raise ValueError("refused")
        return f"echo {message}"


@pytest.fixture
def tree():
    Slow.gate = threading.Event()
    spec = ChildSpec("slow", Slow, message_retries=0,
                     mailbox=MailboxSpec(capacity=2, overflow=Overflow.BLOCK, block_timeout_s=5))
    tree = Tree(supervisor_spec("root", flags(), [spec])).start()
    yield tree
    Slow.gate.set()
    tree.stop()


async def test_ask_returns_the_answer_while_the_loop_keeps_running(tree) -> None:
    bridge = Bridge(asyncio.get_running_loop(), tree.registry)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticking = asyncio.create_task(ticker())
    pending = asyncio.create_task(bridge.ask("slow", "block", timeout=5))
    await asyncio.sleep(0.05)
    assert ticks > 5 and not pending.done()  # the loop ran while the actor was busy
    Slow.gate.set()
    assert await pending == "echo block"
    ticking.cancel()


async def test_an_actor_error_is_raised_to_the_coroutine(tree) -> None:
    bridge = Bridge(asyncio.get_running_loop(), tree.registry)
    with pytest.raises(ValueError, match="refused"):
        await bridge.ask("slow", "fail", timeout=5)


async def test_a_full_mailbox_refuses_at_once_instead_of_blocking_the_loop(tree) -> None:
    bridge = Bridge(asyncio.get_running_loop(), tree.registry)
    first = asyncio.create_task(bridge.ask("slow", "block", timeout=5))
    await asyncio.sleep(0.02)
    bridge.tell("slow", 1)
    bridge.tell("slow", 2)
    with pytest.raises(MailboxFull):
        bridge.tell("slow", 3)
    Slow.gate.set()
    assert await first == "echo block"


async def test_an_ask_times_out_without_blocking(tree) -> None:
    bridge = Bridge(asyncio.get_running_loop(), tree.registry)
    with pytest.raises(TimeoutError):
        await bridge.ask("slow", "block", timeout=0.05)
