"""Kill test: SIGKILL during a burst of sends; after restart no message accepted by
Meta is sent twice, none is lost, and each recipient's messages reach Meta in the
order the API accepted them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from lawhub_actors.simulator.graph import GraphStandIn
from tests.conftest import APP_SECRET, SHIPPED_CONFIG
from tests.e2e.outbound_helpers import (
    GRAPH_TOKEN,
    Gateway,
    Gateways,
    all_sent,
    config_with,
    customers_wrote,
    gateways,  # noqa: F401 - fixture
    meta_in_thread,
    send_text,
)
from tests.waits import until

CUSTOMERS = [f"62816000{i:05d}" for i in range(30)]
PER_CUSTOMER = 10
KILL_AFTER = 100
"""SIGKILL once Meta has accepted this many sends."""
RETRY = "[retry]\nmax_attempts = 6\nbase_s = 1.0\nmax_s = 4.0\nsettle_grace_s = 3.0\n"
"""Quicker than the defaults (Meta refuses nothing here, so nothing is retried anyway);
settle_grace_s is how long the restarted gateway waits for a status webhook before
sending again a message that was under way when it died. The relay delivers the held
statuses as soon as the gateway listens; journaling and processing them took over 1 s
once with the whole suite running on two cores (eight messages sent twice)."""
SEND_LATENCY_S = 0.1
"""Meta answers a send this late: calls are always under way when the gateway dies."""
STATUS_DELAY_S = 0.3
"""Meta's status webhooks come this late: some accepted sends have neither answer nor
status yet when the gateway dies."""
RELAY_HOLD_S = 8.0


class WebhookRelay:
    """The one webhook URL Meta knows: forwards each status webhook to whichever gateway
    is up, and while none is, holds it (as Meta keeps retrying the same URL until the
    gateway answers), so statuses of sends from before the kill reach the restarted
    gateway."""

    def __init__(self) -> None:
        self.target: str | None = None
        self._session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()
                   if k in ("Content-Type", "X-Hub-Signature-256", "User-Agent")}
        assert self._session is not None
        deadline = time.monotonic() + RELAY_HOLD_S
        while time.monotonic() < deadline:
            target = self.target
            if target is not None:
                try:
                    async with self._session.post(f"{target}/webhook", data=body,
                                                  headers=headers) as answer:
                        await answer.read()
                        return web.Response(status=answer.status)
                except (aiohttp.ClientError, TimeoutError):
                    pass  # gone, or not up yet: the gateway dedupes a repeat
            await asyncio.sleep(0.02)
        return web.Response(status=503)

    async def serve(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_post("/webhook", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                              timeout=aiohttp.ClientTimeout(total=5))
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            yield f"http://127.0.0.1:{runner.addresses[0][1]}/webhook"
        finally:
            await self._session.close()
            await runner.cleanup()


@pytest.fixture
def meta():
    """Meta's stand-in in a thread of the test process; it answers sends a little late
    and no throughput limit of its own applies (the rate is tested elsewhere)."""
    with meta_in_thread(throughput_mps=None) as stand_in:
        stand_in.send_latency_s = SEND_LATENCY_S
        yield stand_in


def accepted_by_meta(meta: GraphStandIn) -> int:
    return sum(1 for s in list(meta.sends) if s.status == 200)


async def burst_then_kill(
    session: aiohttp.ClientSession, gateway: Gateway, meta: GraphStandIn,
) -> tuple[dict[str, list[tuple[str, str]]], float]:
    """Each customer's PER_CUSTOMER texts, one after the other (so the API accepts them
    in that order), all customers at once; SIGKILL once Meta accepted KILL_AFTER. Per
    customer, (id, body) of every send the API answered 202 for, in order; and when the
    gateway died (by the stand-in's clock)."""
    acked: dict[str, list[tuple[str, str]]] = {c: [] for c in CUSTOMERS}

    async def customer(to: str) -> None:
        for n in range(PER_CUSTOMER):
            body = f"untuk {to}: bagian {n}"
            try:
                message_id = await send_text(session, gateway.url, to, body)
            except aiohttp.ClientError:
                return  # the gateway died under this request: not accepted, as far as we know
            acked[to].append((message_id, body))

    senders = asyncio.gather(*(customer(c) for c in CUSTOMERS))
    try:
        await until(lambda: accepted_by_meta(meta) >= KILL_AFTER, timeout=30,
                    what=f"{KILL_AFTER} sends accepted by Meta")
    except AssertionError:
        senders.cancel()
        raise
    gateway.kill()
    killed_at = time.time()  # the stand-in's clock
    await senders
    return acked, killed_at


async def test_sigkill_during_a_burst_of_sends_sends_each_accepted_message_once_in_order(
    tmp_path: Path, gateways: Gateways, meta: GraphStandIn,  # noqa: F811
) -> None:
    config = config_with(SHIPPED_CONFIG, RETRY, tmp_path / "lawhub.toml")
    data_dir = tmp_path / "var"
    env = {"LAWHUB_ACCESS_TOKEN": GRAPH_TOKEN, "LAWHUB_GRAPH_BASE_URL": meta.base_url}
    relay = WebhookRelay()
    serving = relay.serve()
    relay_url = await anext(serving)
    try:
        meta.deliver_statuses_to(relay_url, APP_SECRET.encode(), delay_s=STATUS_DELAY_S,
                                 attempts=3, retry_delay_s=0.1)
        gateway = await asyncio.to_thread(gateways.start, data_dir, config, **env)
        relay.target = gateway.url
        async with aiohttp.ClientSession() as session:
            await customers_wrote(session, gateway.url, CUSTOMERS)
            acked, killed_at = await burst_then_kill(session, gateway, meta)
            relay.target = None
            accepted_ids = [i for each in acked.values() for i, _ in each]
            before = [s for s in list(meta.sends) if s.status == 200 and s.at <= killed_at]
            assert len(before) < len(accepted_ids), "nothing left to send at the kill"
            # Meta took these, and the gateway died before their answer came back: only
            # their status webhooks can tell the restarted gateway they were sent
            unanswered = [s for s in before if s.at > killed_at - SEND_LATENCY_S]
            assert unanswered, "no send was under way at Meta when the gateway died"

            gateway = await asyncio.to_thread(gateways.start, data_dir, config, **env)
            relay.target = gateway.url
            try:
                await all_sent(session, gateway.url, accepted_ids, timeout=25, statuses=True)
            except AssertionError as lost:
                raise AssertionError(f"{lost}; gateway errors: {gateway.errors()}") from None
        # SIGTERM waits for calls under way: a late second send would be counted below
        assert gateway.stop() == 0
    finally:
        await serving.aclose()

    accepted = Counter(s.callback for s in meta.sends if s.status == 200)
    assert {i: accepted[i] for i in accepted_ids if accepted[i] != 1} == {}, (
        "accepted by the API, then lost (0) or sent twice (2+)")
    assert max(accepted.values()) == 1, "a message Meta accepted was sent again"
    assert [s.code for s in meta.sends if s.status != 200] == []
    for customer, sent in acked.items():
        ours = {i for i, _ in sent}
        order = [s.body for s in meta.sends if s.status == 200 and s.callback in ours]
        assert order == [body for _, body in sent], f"{customer}: out of order"
