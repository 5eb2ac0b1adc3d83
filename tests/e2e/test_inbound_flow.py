"""Webhook → journal → dispatcher → shard → store → feed, in one process."""

from __future__ import annotations

import asyncio
import copy
import random

import pytest

from lawhub_actors.adapters import leases, store_reads
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.simulator import traffic
from lawhub_actors.web.app import build_app
from lawhub_actors.web.keys import STORE
from tests.conftest import REPO
from tests.e2e.gateway import Feed, auth, config_with_remote_classifier, post

NUMBER_A = "106540352242922"


@pytest.fixture
async def client(aiohttp_client, settings, secrets):
    number_ids = {n.id for t in settings.tenants for n in t.phone_numbers}
    assert NUMBER_A in number_ids, "config/lawhub.toml's firm-a number changed"
    return await aiohttp_client(build_app(settings, secrets, on_give_up=lambda reason: None))


async def test_a_text_message_is_stored_encrypted_and_fed_to_its_tenant(client, secrets) -> None:
    feed = await Feed.open(client, "firm-a")
    body = "Pak, suami saya ditangkap polisi tadi malam"
    message = traffic.text_message(NUMBER_A, "6281234500001", body, name="Siti Aminah")
    assert await post(client, traffic.envelope(message)) == 200

    frames = await feed.until(lambda f: any(x["type"] == "intake.urgent" for x in f))
    received = feed.of_type("message.received")[0]
    assert received["data"]["text"] == body
    assert received["data"]["customer"] == "6281234500001"
    assert received["data"]["lead"] is True
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    intake = feed.of_type("intake.updated")[0]["data"]
    assert intake["intent"] == "criminal" and intake["urgency"] == "critical"
    await feed.close()

    response = await client.get("/api/v1/conversations/6281234500001/messages", headers=auth("firm-a"))
    messages = (await response.json())["messages"]
    assert [m["text"] for m in messages] == [body]
    assert messages[0]["direction"] == "in" and messages[0]["wamid"].startswith("wamid.")

    for file in secrets.data_dir.iterdir():
        if file.is_file():
            raw = file.read_bytes()
            assert body.encode() not in raw and b"Siti Aminah" not in raw, file.name


async def test_twenty_concurrent_posts_of_one_payload_store_one_message_and_one_event(client) -> None:
    document = traffic.envelope(traffic.text_message(NUMBER_A, "6281234500002", "Halo, saya mau konsultasi"))
    statuses = await asyncio.gather(*(post(client, document) for _ in range(20)))
    assert statuses == [200] * 20
    feed = await Feed.open(client, "firm-a")
    await feed.until(lambda f: len([x for x in f if x["type"] == "message.received"]) >= 1)
    await _settle(client)
    store = client.app[STORE]
    assert store.read(store_reads.count, "messages", tenant="firm-a") == 1
    assert store.read(store_reads.count, "events", tenant="firm-a", type="message.received") == 1
    await feed.close()


async def test_each_conversation_is_stored_and_fed_in_the_order_it_was_posted(
    aiohttp_client, make_settings, secrets
) -> None:
    tenants = [f"firm-{i}" for i in range(5)]
    config = "\n".join(
        f'[[tenants]]\nid = "{t}"\napi_token_sha256 = "{_sha(f"demo-token-{t}")}"\n'
        f'[[tenants.phone_numbers]]\nid = "1000000000{i}"\ndisplay = "+62 811 {i}"\ntier = "2K"\n'
        for i, t in enumerate(tenants)
    )
    client = await aiohttp_client(build_app(make_settings(config), secrets, on_give_up=lambda r: None))
    conversations = [(i % 5, f"62812345{i:05d}") for i in range(100)]
    per_conversation = 20

    async def converse(tenant_index: int, wa_id: str) -> None:
        for n in range(per_conversation):
            change = traffic.text_message(f"1000000000{tenant_index}", wa_id, f"{wa_id} #{n}")
            assert await post(client, traffic.envelope(change)) == 200

    random.Random(3).shuffle(conversations)
    await asyncio.gather(*(converse(t, w) for t, w in conversations))
    feeds = {t: await Feed.open(client, t) for t in tenants}
    for feed in feeds.values():
        await feed.until(lambda f: len([x for x in f if x["type"] == "message.received"]) == 400, timeout=60)
    for tenant_index, wa_id in conversations:
        texts = [f["data"]["text"] for f in feeds[tenants[tenant_index]].of_type("message.received")
                 if f["data"]["customer"] == wa_id]
        assert texts == [f"{wa_id} #{n}" for n in range(per_conversation)]
        response = await client.get(f"/api/v1/conversations/{wa_id}/messages?limit=50",
                                    headers=auth(tenants[tenant_index]))
        stored = [m["text"] for m in (await response.json())["messages"]]
        assert stored == texts
    for feed in feeds.values():
        await feed.close()


async def test_a_tenant_never_sees_another_tenants_feed_or_messages(client) -> None:
    feed_b = await Feed.open(client, "firm-b")
    feed_a = await Feed.open(client, "firm-a")
    change = traffic.text_message(NUMBER_A, "6281234500003", "rahasia firma A")
    assert await post(client, traffic.envelope(change)) == 200
    await feed_a.until(lambda f: any(x["type"] == "message.received" for x in f))
    await _settle(client)
    assert feed_b.frames == []
    with pytest.raises(asyncio.TimeoutError):
        await feed_b.until(bool, timeout=0.3)
    response = await client.get("/api/v1/conversations/6281234500003/messages", headers=auth("firm-b"))
    assert (await response.json())["messages"] == []
    for headers in ({}, {"Authorization": "Bearer nope"}):
        assert (await client.get("/api/v1/conversations/6281234500003/messages", headers=headers)).status == 401
    await feed_a.close()
    await feed_b.close()


async def test_a_feed_client_resumes_after_since_without_loss(client) -> None:
    for n in range(5):
        change = traffic.text_message(NUMBER_A, "6281234500004", f"pesan {n}")
        assert await post(client, traffic.envelope(change)) == 200
    first = await Feed.open(client, "firm-a")
    await first.until(lambda f: len([x for x in f if x["type"] == "message.received"]) == 5)
    await first.close()
    cut = first.of_type("message.received")[2]["seq"]
    again = await Feed.open(client, "firm-a", since=cut)
    await again.until(lambda f: len([x for x in f if x["type"] == "message.received"]) == 2)
    assert again.frames[0]["seq"] == cut + 1
    await again.close()


async def test_stop_opts_out_and_start_opts_back_in_with_an_audit_trail(client) -> None:
    wa_id = "6281234500005"
    for text in ("Halo", "BERHENTI", "start"):
        assert await post(client, traffic.envelope(traffic.text_message(NUMBER_A, wa_id, text))) == 200
    feed = await Feed.open(client, "firm-a")
    await feed.until(lambda f: len([x for x in f if x["type"] == "message.received"]) == 3)
    await _settle(client)
    store = client.app[STORE]
    assert store.read_tx(Tx.customer, "firm-a", wa_id).consent == "granted"
    assert store.read(store_reads.count, "audit", tenant="firm-a", kind="consent") == 2
    await feed.close()


async def test_an_unknown_phone_number_is_acknowledged_and_quarantined(client) -> None:
    change = traffic.text_message("999999999999999", "6281234500006", "nyasar")
    assert await post(client, traffic.envelope(change)) == 200
    await _settle(client)
    store = client.app[STORE]
    assert store.read(store_reads.count, "messages") == 0
    quarantined = store.read_tx(store_reads.quarantined)
    assert quarantined and quarantined[0]["phone_number_id"] == "999999999999999"


async def test_a_status_is_fed_once_however_often_meta_sends_it(client) -> None:
    change = traffic.status_change(NUMBER_A, "6281234500007", "wamid.SENT1", "delivered")
    for _ in range(3):
        assert await post(client, traffic.envelope(change)) == 200
    feed = await Feed.open(client, "firm-a")
    await feed.until(lambda f: any(x["type"] == "message.status" for x in f))
    await _settle(client)
    assert client.app[STORE].read(store_reads.count, "statuses", tenant="firm-a") == 1
    assert len(feed.of_type("message.status")) == 1
    await feed.close()


async def _settle(client) -> None:
    """Wait until the dispatcher has nothing in flight (its cursor caught up)."""
    from lawhub_actors.web.keys import JOURNAL, STORE

    journal, store = client.app[JOURNAL], client.app[STORE]
    for _ in range(500):
        if store.read(leases.processed_upto) >= journal.last_committed:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the dispatcher never caught up with the journal")


def _sha(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


async def test_with_redis_configured_dedupe_marks_live_in_redis(
    aiohttp_client, settings, tmp_path, redis_url
) -> None:
    import redis

    from lawhub_actors.settings import Secrets
    from tests.conftest import test_environment

    secrets = Secrets.from_env(test_environment(tmp_path, LAWHUB_REDIS_URL=redis_url))
    client = await aiohttp_client(build_app(settings, secrets, on_give_up=lambda reason: None))
    wamid = traffic.wamid()
    document = traffic.envelope(traffic.text_message(NUMBER_A, "6281234500008", "Halo", message_id=wamid))
    assert await post(client, document) == 200
    await _settle(client)
    server = redis.Redis.from_url(redis_url)
    assert server.exists(f"lawhub:dedupe:{wamid}") == 1
    assert 0 < server.ttl(f"lawhub:dedupe:{wamid}") <= 7 * 24 * 3600
    assert await post(client, document) == 200  # Meta retries
    await _settle(client)
    assert client.app[STORE].read(store_reads.count, "messages", tenant="firm-a") == 1
    server.close()


async def test_operators_see_quarantined_updates_and_tenants_do_not(client) -> None:
    from tests.conftest import ADMIN_TOKEN

    change = traffic.text_message("999999999999999", "6281234500010", "salah nomor")
    assert await post(client, traffic.envelope(change)) == 200
    await _settle(client)
    assert (await client.get("/admin/quarantine", headers=auth("firm-a"))).status == 401
    response = await client.get("/admin/quarantine", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    entries = (await response.json())["entries"]
    assert entries[0]["phone_number_id"] == "999999999999999"
    assert entries[0]["reason"] == "unknown_phone_number"
    assert entries[0]["data"]["change"]["messages"][0]["type"] == "text"
    shown = await response.text()  # ids, types, sizes: never the client's words, name, number
    for private in ("salah nomor", "Budi Santoso", "6281234500010"):
        assert private not in shown


async def test_a_slow_feed_client_is_dropped_when_its_bounded_queue_overflows(
    aiohttp_client, make_settings, secrets, settings
) -> None:
    from lawhub_actors.web.keys import FEED

    config = (REPO / "config" / "lawhub.toml").read_text() + "\n[limits]\nfeed_queue_max = 2\n"
    client = await aiohttp_client(build_app(make_settings(config), secrets, on_give_up=lambda r: None))
    feed = await Feed.open(client, "firm-a")
    await asyncio.sleep(0.05)  # let the server subscribe the client
    burst = [_event("firm-a", seq) for seq in range(1, 50)]
    client.app[FEED].publish(burst)  # one fan-out: far more than the queue holds
    from aiohttp import WSMsgType

    delivered = []
    while (message := await asyncio.wait_for(feed.ws.receive(), 5)).type == WSMsgType.TEXT:
        delivered.append(message.json()["seq"])
    assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert feed.ws.close_code == 4008
    assert delivered == [1, 2]  # what the bounded queue held, in order; then dropped
    again = await Feed.open(client, "firm-a", since=2)  # a dropped client may come back
    assert not again.ws.closed
    await again.close()


def _event(tenant: str, seq: int):
    from lawhub_actors.adapters.store_rows import FeedEvent

    return FeedEvent(tenant, seq, "message.received", 0.0, {})


async def test_an_http_classifier_only_ever_receives_masked_text(
    aiohttp_client, aiohttp_server, make_settings, secrets
) -> None:
    from aiohttp import web

    received: list[str] = []

    async def classify(request: web.Request) -> web.Response:
        received.append((await request.json())["text"])
        return web.json_response({"intent": "family", "urgency": "high", "confidence": 0.9})

    config = await config_with_remote_classifier(aiohttp_server, classify, timeout_s=5.0)
    client = await aiohttp_client(build_app(make_settings(config), secrets, on_give_up=lambda r: None))
    feed = await Feed.open(client, "firm-a")
    text = "Saya Siti Aminah, hubungi 0812-3456-7890 atau siti@mail.id soal cerai"
    change = traffic.text_message(NUMBER_A, "6281234500011", text, name="Siti Aminah")
    assert await post(client, traffic.envelope(change)) == 200
    await feed.until(lambda f: any(x["type"] == "intake.urgent" for x in f))
    assert feed.of_type("intake.updated")[0]["data"]["intent"] == "family"
    assert len(received) == 1
    for secret in ("Siti", "Aminah", "0812", "3456-7890", "siti@mail.id"):
        assert secret not in received[0]
    await feed.close()


async def test_meta_user_preferences_stop_opts_out_and_resume_opts_back_in(client) -> None:
    from tests import payloads

    stop = payloads.load("user_preferences_stop")
    resume = copy.deepcopy(stop)
    preference = resume["entry"][0]["changes"][0]["value"]["user_preferences"][0]
    preference.update(value="resume", timestamp=preference["timestamp"] + 60)
    wa_id = preference["wa_id"]
    assert await post(client, stop) == 200
    await _settle(client)
    store = client.app[STORE]
    assert store.read_tx(Tx.customer, "firm-a", wa_id).consent == "opted_out"
    assert await post(client, resume) == 200
    assert await post(client, stop) == 200  # Meta's retry of the first: changes nothing
    await _settle(client)
    assert store.read_tx(Tx.customer, "firm-a", wa_id).consent == "granted"
    assert store.read(store_reads.count, "audit", tenant="firm-a", kind="consent") == 2


async def test_the_feed_takes_the_token_in_the_query_and_refuses_a_wrong_one(client) -> None:
    from tests.conftest import TENANT_TOKENS

    change = traffic.text_message(NUMBER_A, "6281234500012", "lewat query")
    assert await post(client, traffic.envelope(change)) == 200
    ws = await client.ws_connect(f"/ws?since=0&token={TENANT_TOKENS['firm-a']}")
    frame = await asyncio.wait_for(ws.receive_json(), 10)
    assert frame["type"] == "message.received" and frame["data"]["text"] == "lewat query"
    await ws.close()
    response = await client.get("/ws?token=not-a-token")
    assert response.status == 401


async def test_a_conversation_pages_back_with_limit_and_before(client) -> None:
    wa_id = "6281234500013"
    for n in range(7):
        change = traffic.text_message(NUMBER_A, wa_id, f"halaman {n}")
        assert await post(client, traffic.envelope(change)) == 200
    await _settle(client)
    url = f"/api/v1/conversations/{wa_id}/messages"
    pages, before = [], ""
    while True:
        page = await (await client.get(f"{url}?limit=3{before}", headers=auth("firm-a"))).json()
        if not page["messages"]:
            break
        pages.append([m["text"] for m in page["messages"]])
        before = f"&before={page['next_before']}"
    assert pages == [["halaman 4", "halaman 5", "halaman 6"], ["halaman 1", "halaman 2", "halaman 3"],
                     ["halaman 0"]]
    for bad in ("limit=abc", "limit=201", "before=-1"):
        assert (await client.get(f"{url}?{bad}", headers=auth("firm-a"))).status == 422


async def test_after_a_key_rotation_old_messages_still_open_and_new_ones_use_the_new_key(
    aiohttp_client, settings, tmp_path
) -> None:
    import base64
    import sqlite3

    from lawhub_actors.settings import Secrets
    from tests.conftest import MASTER_KEY, test_environment

    wa_id = "6281234500014"
    first = Secrets.from_env(test_environment(tmp_path))
    client = await aiohttp_client(build_app(settings, first, on_give_up=lambda r: None))
    assert await post(client, traffic.envelope(traffic.text_message(NUMBER_A, wa_id, "lama"))) == 200
    await _settle(client)
    await client.close()

    rotated = Secrets.from_env(test_environment(
        tmp_path,
        LAWHUB_MASTER_KEY=base64.b64encode(bytes(range(100, 132))).decode(),
        LAWHUB_MASTER_KEY_VERSION="2",
        LAWHUB_RETIRED_MASTER_KEYS=f"1:{MASTER_KEY}",
    ))
    client = await aiohttp_client(build_app(settings, rotated, on_give_up=lambda r: None))
    assert await post(client, traffic.envelope(traffic.text_message(NUMBER_A, wa_id, "baru"))) == 200
    await _settle(client)
    page = await (await client.get(f"/api/v1/conversations/{wa_id}/messages",
                                   headers=auth("firm-a"))).json()
    assert [m["text"] for m in page["messages"]] == ["lama", "baru"]
    with sqlite3.connect(settings.storage.sqlite_path(tmp_path)) as db:
        key_ids = [row[0] for row in db.execute(
            "SELECT key_id FROM messages WHERE tenant='firm-a' ORDER BY conv_seq")]
    assert key_ids == ["v1", "v2"]
