"""Live reload under load: pools shrink and grow and limits change while
1,000 messages flow; nothing is lost, each conversation keeps its order, and
actors the change does not touch are neither restarted nor replaced."""

from __future__ import annotations

import asyncio
import random

import pytest

from lawhub_actors.actors import paths
from lawhub_actors.actors.number_limiter import PairPermit
from lawhub_actors.settings import parse_text
from lawhub_actors.simulator import traffic
from lawhub_actors.web.app import build_app
from lawhub_actors.web.keys import RUNTIME
from tests.conftest import ADMIN_TOKEN, SHIPPED_CONFIG
from tests.e2e.gateway import Feed, post
from tests.waits import until

pytestmark = pytest.mark.timeout(180)

BASE = SHIPPED_CONFIG.read_text()
NUMBERS = {"firm-a": "106540352242922", "firm-b": "107611463353033"}
CONVERSATIONS = 50
PER_CONVERSATION = 20  # 1,000 messages in all
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _config(shards: int, workers: int, throughput: int, pair_burst: int) -> str:
    return (BASE.replace("throughput_mps = 80", f"throughput_mps = {throughput}", 1)
            + f"\n[supervision.pools]\nsession_shards = {shards}\noutbound_workers = {workers}\n"
            + f"\n[limits]\npair_burst = {pair_burst}\n")


async def test_pools_resize_and_limits_change_while_1000_messages_flow(
    aiohttp_client, secrets
) -> None:
    client = await aiohttp_client(
        build_app(parse_text(BASE), secrets, on_give_up=lambda r: None, config_text=BASE))
    registry = client.app[RUNTIME].tree.registry
    untouched = ["inbound/dispatcher", "inbound/media/0", "inbound/assist/0",
                 f"outbound/breakers/{NUMBERS['firm-a']}", f"outbound/limiters/{NUMBERS['firm-b']}",
                 "inbound/sessions/firm-a/0", "outbound/workers/0"]
    nodes_before = {path: registry.get(path) for path in untouched}
    conversations = [(tenant, f"6281300{i:05d}") for i in range(CONVERSATIONS)
                     for tenant in ["firm-a" if i % 2 else "firm-b"]]
    random.Random(6).shuffle(conversations)
    posted = 0
    reloads = {200: _config(1, 2, 60, 40), 500: _config(6, 8, 70, 30), 800: _config(2, 3, 50, 45)}

    async def converse(tenant: str, wa_id: str) -> None:
        nonlocal posted
        for n in range(PER_CONVERSATION):
            change = traffic.text_message(NUMBERS[tenant], wa_id, f"{wa_id} #{n}")
            assert await post(client, traffic.envelope(change)) == 200
            posted += 1

    async def reload_while_flowing() -> list[tuple[int, int]]:
        """Each reload once that many messages are in; (status, posted when it
        was asked for: its answer may come after the last post on a busy box)."""
        done = []
        for at, text in reloads.items():
            await until(lambda at=at: posted >= at, timeout=15)
            asked_at = posted
            response = await client.put("/admin/config", data=text.encode(), headers=ADMIN)
            done.append((response.status, asked_at))
        return done

    results = await asyncio.gather(reload_while_flowing(),
                                   *(converse(t, w) for t, w in conversations))

    assert [status for status, _ in results[0]] == [200, 200, 200]
    assert results[0][-1][1] < CONVERSATIONS * PER_CONVERSATION  # still flowing at the last one
    feeds = {tenant: await Feed.open(client, tenant) for tenant in NUMBERS}
    expected = {t: PER_CONVERSATION * sum(1 for c, _ in conversations if c == t) for t in NUMBERS}
    for tenant, feed in feeds.items():
        await feed.until(
            lambda f, n=expected[tenant]: len([x for x in f if x["type"] == "message.received"])
            >= n, timeout=90)
        assert len(feed.of_type("message.received")) == expected[tenant]  # none twice
    for tenant, wa_id in conversations:
        texts = [f["data"]["text"] for f in feeds[tenant].of_type("message.received")
                 if f["data"]["customer"] == wa_id]
        assert texts == [f"{wa_id} #{n}" for n in range(PER_CONVERSATION)], wa_id
    for feed in feeds.values():
        await feed.close()

    def shards() -> list[str]:
        return [node.path for node in client.app[RUNTIME].snapshot().walk()
                if node.path.startswith("inbound/sessions/firm-a/")]

    await until(lambda: len(shards()) == 2, timeout=15, what="the shrink to 2 shards")  # the others drained, then stopped
    snapshot = {node.path: node for node in client.app[RUNTIME].snapshot().walk()}
    assert len([p for p in snapshot if p.startswith("outbound/workers/")]) == 3
    for path, node in nodes_before.items():
        assert registry.get(path) is node, f"{path} was replaced"
        assert node.restarts.total == 0, f"{path} was restarted"
    assert all(node.restarts_total == 0 for node in snapshot.values())
    # The limiter runs at the new rate (less the headroom) on its next message.
    registry.ask(paths.limiter_of(NUMBERS["firm-a"]), PairPermit("6281300000"), timeout=5)
    info = registry.get(paths.limiter_of(NUMBERS["firm-a"])).details
    assert info["rate_per_s"] == pytest.approx(50 * 0.98, rel=1e-3)
