"""SIGKILL in the middle of a load loses no acknowledged message and doubles none,
nor any message's classification."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import aiohttp

from lawhub_actors.simulator import traffic
from tests.conftest import APP_SECRET, TENANT_TOKENS
from tests.e2e.outbound_helpers import NUMBER_A, Gateways, gateways  # noqa: F401 - fixture

CUSTOMERS = [f"62813000{i:05d}" for i in range(40)]


async def _load(url: str, acknowledged: list[str], stop_after: int) -> None:
    """64 clients post unique messages until ``stop_after`` are acknowledged."""
    done = asyncio.Event()
    async with aiohttp.ClientSession() as session:

        async def client(index: int) -> None:
            n = 0
            while not done.is_set():
                wamid = traffic.wamid()
                customer = CUSTOMERS[(index + n) % len(CUSTOMERS)]
                change = traffic.text_message(NUMBER_A, customer, f"{index}/{n}", message_id=wamid)
                signed = traffic.signed(traffic.envelope(change), APP_SECRET.encode())
                n += 1
                try:
                    async with session.post(f"{url}/webhook", data=signed.body,
                                            headers=signed.headers) as response:
                        if response.status == 200:
                            acknowledged.append(wamid)
                            if len(acknowledged) >= stop_after:
                                done.set()
                except aiohttp.ClientError:
                    return  # the server is gone

        await asyncio.gather(*(client(i) for i in range(64)))


FED_TYPES = ("message.received", "intake.updated")


async def _fed_wamids(url: str, expected: int) -> dict[str, Counter[str]]:
    """Per type, every wamid on firm-a's feed from the start: messages and
    their classifications."""
    counts: dict[str, Counter[str]] = {type_: Counter() for type_ in FED_TYPES}
    headers = {"Authorization": f"Bearer {TENANT_TOKENS['firm-a']}"}
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{url}/ws?since=0", headers=headers) as ws:
        while min(sum(counter.values()) for counter in counts.values()) < expected:
            frame = await asyncio.wait_for(ws.receive_json(), 30)
            if frame["type"] in counts:
                counts[frame["type"]][frame["data"]["wamid"]] += 1
        # anything beyond the expected count would be a duplicate: read what else is queued
        try:
            while True:
                frame = await asyncio.wait_for(ws.receive_json(), 0.5)
                if frame["type"] in counts:
                    counts[frame["type"]][frame["data"]["wamid"]] += 1
        except TimeoutError:
            pass
    return counts


async def _stored_wamids(url: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {TENANT_TOKENS['firm-a']}"}
    async with aiohttp.ClientSession() as session:
        for customer in CUSTOMERS:
            before = None
            while True:
                query = "?limit=200" + (f"&before={before}" if before else "")
                async with session.get(f"{url}/api/v1/conversations/{customer}/messages{query}",
                                       headers=headers) as response:
                    page = await response.json()
                counts.update(m["wamid"] for m in page["messages"])
                if len(page["messages"]) < 200:
                    break
                before = page["next_before"]
    return counts


def test_acknowledged_messages_survive_sigkill_exactly_once(
    tmp_path: Path, gateways: Gateways,  # noqa: F811
) -> None:
    data_dir = tmp_path / "var"
    gateway = gateways.start(data_dir)
    acknowledged: list[str] = []

    async def load_then_kill() -> None:
        loader = asyncio.create_task(_load(gateway.url, acknowledged, stop_after=10**9))
        while len(acknowledged) < 600:
            await asyncio.sleep(0.01)
        gateway.kill()  # in the middle of the load
        await loader

    asyncio.run(load_then_kill())
    assert len(acknowledged) >= 600

    gateway = gateways.start(data_dir)
    feed = asyncio.run(_fed_wamids(gateway.url, expected=len(acknowledged)))
    stored = asyncio.run(_stored_wamids(gateway.url))
    assert gateway.stop() == 0
    fed, classified = feed["message.received"], feed["intake.updated"]
    assert all(fed[w] == 1 for w in acknowledged), "an acknowledged message was lost or fed twice"
    assert all(stored[w] == 1 for w in acknowledged), "an acknowledged message was lost or stored twice"
    assert max(fed.values()) == 1 and max(stored.values()) == 1  # unacknowledged ones: once at most
    assert classified == fed, "a stored message's classification was lost or doubled by the kill"
