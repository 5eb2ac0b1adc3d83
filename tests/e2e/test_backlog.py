"""Processing never stops: floods far above the mailbox bound drain in order
with no actor restarting, and no single input can wedge a stage."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from lawhub_actors.actors import entry_reader
from lawhub_actors.adapters import leases, store_reads
from lawhub_actors.adapters.store_tx import WAMID, Tx
from lawhub_actors.simulator import traffic
from lawhub_actors.web.app import build_app
from lawhub_actors.web.keys import JOURNAL, RUNTIME, STORE
from tests.conftest import REPO
from tests.e2e.gateway import post
from tests.waits import until

NUMBER_A = "106540352242922"  # firm-a
NUMBER_B = "107611463353033"  # firm-b
SHIPPED = (REPO / "config" / "lawhub.toml").read_text()

Posted = dict[tuple[str, str], list[str]]
"""(tenant, customer) → wamids in the order they were posted."""


async def _gateway(aiohttp_client, make_settings, secrets, extra: str = ""):
    settings = make_settings(SHIPPED + "\n" + extra)
    return await aiohttp_client(build_app(settings, secrets, on_give_up=lambda reason: None))


async def _post_batches(client, messages: list[tuple[str, str, str]], per_post: int) -> Posted:
    """Post (number, customer, text) messages, ``per_post`` updates to a body
    as Meta batches them; every body distinct."""
    posted: Posted = defaultdict(list)
    tenant_of = {NUMBER_A: "firm-a", NUMBER_B: "firm-b"}
    for start in range(0, len(messages), per_post):
        changes = []
        for number, customer, text in messages[start:start + per_post]:
            wamid = traffic.wamid()
            changes.append(traffic.text_message(number, customer, text, message_id=wamid))
            posted[tenant_of[number], customer].append(wamid)
        assert await post(client, traffic.envelope(*changes)) == 200
    return posted


async def _drained(client, timeout: float) -> None:
    journal, store = client.app[JOURNAL], client.app[STORE]
    await until(lambda: store.read(leases.processed_upto) >= journal.last_committed,
                timeout=timeout, what="the journal lag back to 0")


def _stored_order(client) -> Posted:
    """Each customer's stored inbound wamids in conversation order, by number
    (the store keys customers and wamids by keyed hashes; the profile holds
    the number, the sealed content the wamid)."""
    def read(tx) -> Posted:
        number_of = {(tenant, ref): tx.unseal(tenant, key_id, profile,
                                              f"customer:{tenant}:{ref}")["number"]
                     for tenant, ref, key_id, profile in tx.conn.execute(
                         "SELECT tenant, customer, key_id, profile FROM customers")}
        stored: Posted = defaultdict(list)
        for message_id, tenant, ref, key_id, content in tx.conn.execute(
                "SELECT id, tenant, customer, key_id, content FROM messages"
                " WHERE direction = 'in' ORDER BY tenant, customer, conv_seq"):
            opened = tx.unseal(tenant, key_id, content, f"message:{tenant}:{message_id}")
            stored[tenant, number_of[tenant, ref]].append(opened[WAMID])
        return stored

    return client.app[STORE].read_tx(read)


def _restarts(client) -> dict[str, int]:
    return {node.path: node.restarts_total for node in client.app[RUNTIME].snapshot().walk()
            if node.restarts_total}


def _quarantined(client) -> list[dict[str, Any]]:
    return client.app[STORE].read_tx(store_reads.quarantined, 1000)


async def test_the_wedge_is_gone_settlements_pass_full_mailboxes(
    aiohttp_client, make_settings, secrets
) -> None:
    # The wedge: a shard's mailbox full, the dispatcher blocked sending to it while the
    # shard blocked settling into the dispatcher's full mailbox. Tiny mailboxes make it
    # certain; every message must be processed without one actor crashing.
    client = await _gateway(aiohttp_client, make_settings, secrets,
                            "[supervision.mailbox]\ncapacity = 8\nblock_timeout_s = 0.2\n")
    messages = [(NUMBER_A, "6281300000001" if i % 2 else f"62813100{i % 40:05d}", f"pesan {i}")
                for i in range(3_000)]
    posted = await _post_batches(client, messages, per_post=100)
    await _drained(client, timeout=60)
    assert _stored_order(client) == posted
    assert _restarts(client) == {}


@pytest.mark.timeout(240)
async def test_a_flood_of_30000_drains_every_conversation_in_order_without_a_restart(
    aiohttp_client, make_settings, secrets
) -> None:
    # 15,000 in one conversation, the rest over 300 conversations of two firms,
    # interleaved, in Meta batches of 100, with the shipped mailbox capacity.
    others = [(NUMBER_A if i % 2 else NUMBER_B, f"62814{i:08d}") for i in range(300)]
    messages = []
    for i in range(30_000):
        if i % 2:
            messages.append((NUMBER_A, "6281399999999", f"kronologi bagian {i}"))
        else:
            number, customer = others[(i // 2) % len(others)]
            messages.append((number, customer, f"Good morning, any news on my case? {i}"))
    client = await _gateway(aiohttp_client, make_settings, secrets)
    posted = await _post_batches(client, messages, per_post=100)
    await _drained(client, timeout=200)
    stored = _stored_order(client)
    assert sum(map(len, stored.values())) == 30_000
    assert stored == posted  # every message, each conversation in posted order
    assert _restarts(client) == {}
    flow = client.app[RUNTIME].flow
    assert flow.in_flight == 0 and flow.behind == 0


async def test_a_poison_update_inside_a_batch_is_quarantined_alone(
    aiohttp_client, make_settings, secrets, monkeypatch
) -> None:
    insert = Tx.insert_message

    def failing_on_poison(self: Tx, tenant: str, customer: str, **fields: Any) -> Any:
        if fields.get("wamid") == "wamid.poison":
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return insert(self, tenant, customer, **fields)

    monkeypatch.setattr(Tx, "insert_message", failing_on_poison)
    client = await _gateway(aiohttp_client, make_settings, secrets)
    changes = [traffic.text_message(NUMBER_A, "6281300000002", f"#{i}", message_id=f"wamid.n{i}")
               for i in range(5)]
    changes.insert(2, traffic.text_message(NUMBER_A, "6281300000002", "x", message_id="wamid.poison"))
    assert await post(client, traffic.envelope(*changes)) == 200
    await _drained(client, timeout=15)
    assert _stored_order(client)["firm-a", "6281300000002"] == [f"wamid.n{i}" for i in range(5)]
    failed = [q for q in _quarantined(client) if q["reason"] == "processing_failed"]
    assert [q["data"]["dedupe_key"] for q in failed] == ["wamid.poison"]
    assert "OverflowError" in failed[0]["data"]["error"]
    assert _restarts(client) == {}


async def test_an_entry_the_dispatcher_fails_on_is_quarantined_and_the_next_go_on(
    aiohttp_client, make_settings, secrets, monkeypatch
) -> None:
    normalize = entry_reader.normalize

    def failing(document: Any, tenant_of: Any) -> Any:
        if "boom" in str(document):
            raise RecursionError("maximum recursion depth exceeded")  # as an injected fault
        return normalize(document, tenant_of)

    monkeypatch.setattr(entry_reader, "normalize", failing)
    client = await _gateway(aiohttp_client, make_settings, secrets)
    customer = "6281300000003"
    for text in ("before", "boom", "after"):
        change = traffic.text_message(NUMBER_A, customer, text, message_id=f"wamid.{text}")
        assert await post(client, traffic.envelope(change)) == 200
    await _drained(client, timeout=15)
    assert _stored_order(client)["firm-a", customer] == ["wamid.before", "wamid.after"]
    failed = [q for q in _quarantined(client) if q["reason"] == "dispatch_failed"]
    assert len(failed) == 1 and "RecursionError" in failed[0]["data"]["error"]
    assert _restarts(client) == {}


async def test_absurd_timestamps_are_quarantined_at_once_without_a_restart(
    aiohttp_client, make_settings, secrets
) -> None:
    client = await _gateway(aiohttp_client, make_settings, secrets)
    absurd = ["1e308", str(10**400), str(2**63), "-5"]
    for i in range(200):
        change = traffic.text_message(NUMBER_A, "6281300000004", f"#{i}")
        change["value"]["messages"][0]["timestamp"] = absurd[i % len(absurd)]
        assert await post(client, traffic.envelope(change)) == 200
    good = traffic.text_message(NUMBER_A, "6281300000004", "a real one", message_id="wamid.ok")
    assert await post(client, traffic.envelope(good)) == 200
    await _drained(client, timeout=15)
    assert _stored_order(client)["firm-a", "6281300000004"] == ["wamid.ok"]
    assert len([q for q in _quarantined(client) if q["reason"] == "bad_timestamp"]) == 200
    assert _restarts(client) == {}


@pytest.mark.timeout(180)
async def test_a_firm_is_not_held_up_by_another_firms_flood(
    aiohttp_client, make_settings, secrets
) -> None:
    client = await _gateway(aiohttp_client, make_settings, secrets)
    flood = [(NUMBER_A, "6281399999998", f"bagian {i}") for i in range(15_000)]
    await _post_batches(client, flood, per_post=1_000)
    behind_it = traffic.text_message(NUMBER_B, "6281300000005", "Selamat pagi",
                                     message_id="wamid.firm-b")
    assert await post(client, traffic.envelope(behind_it)) == 200
    store = client.app[STORE]
    await until(lambda: store.read(store_reads.count, "messages", tenant="firm-b") == 1,
                timeout=10, what="firm-b's message")
    assert store.read(store_reads.count, "messages", tenant="firm-a") < 15_000  # ahead of the flood
    await _drained(client, timeout=120)
    assert _restarts(client) == {}


async def test_a_backlog_that_does_not_move_fails_healthz_with_the_reason_while_readyz_stays(
    aiohttp_client, make_settings, secrets, monkeypatch
) -> None:
    import threading

    from lawhub_actors.actors.sessions import SessionShard

    release = threading.Event()
    handle = SessionShard._batch

    def stuck(self: SessionShard, items: Any) -> None:
        release.wait(20)  # a stage that hangs: nothing is settled
        handle(self, items)

    monkeypatch.setattr(SessionShard, "_batch", stuck)
    client = await _gateway(aiohttp_client, make_settings, secrets,
                            "[inbound]\nstall_after_s = 0.3\n")
    try:
        message = traffic.text_message(NUMBER_A, "6281300000006", "halo")
        assert await post(client, traffic.envelope(message)) == 200

        async def healthz() -> tuple[int, dict[str, Any]]:
            response = await client.get("/healthz")
            return response.status, await response.json()

        await until(lambda: client.app[RUNTIME].backlog()["stalled"] is not None, timeout=5,
                    what="the stall to be noticed")
        status, body = await healthz()
        assert status == 503 and body["status"] == "stalled"
        assert "1 journal entries wait" in body["reason"]
        assert (await client.get("/readyz")).status == 200
        backlog = client.app[RUNTIME].backlog()
        assert backlog["lag_entries"] == 1 and backlog["in_flight"] == 1
        assert backlog["oldest_unprocessed_s"] > 0
    finally:
        release.set()
    await _drained(client, timeout=10)
    assert (await healthz())[0] == 200
