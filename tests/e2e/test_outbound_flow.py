"""Outbound end to end, on SQLite and on PostgreSQL: API → store (pending) →
worker → limiter → breaker → Meta's stand-in → status webhooks back → sent /
delivered / read, retries, the dead-letter queue."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import tomli_w

from lawhub_actors.actors.sessions import SessionShard
from lawhub_actors.adapters import store_reads
from lawhub_actors.settings import Secrets
from lawhub_actors.simulator import traffic
from lawhub_actors.simulator.graph import GraphStandIn, serve_in_thread
from lawhub_actors.usecases import sends
from lawhub_actors.web.app import build_app
from lawhub_actors.web.keys import RUNTIME, STORE
from tests.conftest import ADMIN_TOKEN, APP_SECRET, REPO, Storage, test_environment
from tests.e2e.gateway import Feed, auth, post
from tests.waits import until

NUMBER_A = "106540352242922"
TOKEN = "graph-access-token-for-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _walk(node: dict) -> list[dict]:
    return [node, *(n for child in node["children"] for n in _walk(child))]


@pytest.fixture
def meta():
    """Meta's stand-in on its own loop and thread, as Meta is a server of its
    own: on the test's loop, the gateway's work would delay its handlers and
    bunch the arrival times it measures rates by."""
    stand_in = GraphStandIn(TOKEN)
    with serve_in_thread(stand_in) as base_url:
        stand_in.base_url = base_url  # type: ignore[attr-defined]
        yield stand_in


@pytest.fixture
def start(aiohttp_client, make_settings, tmp_path: Path, meta, storage: Storage):
    async def start_gateway(extra: str = "") -> Any:
        secrets = Secrets.from_env(test_environment(
            tmp_path, LAWHUB_ACCESS_TOKEN=TOKEN, LAWHUB_GRAPH_BASE_URL=meta.base_url,
            **storage.environment))
        config = storage.config((REPO / "config" / "lawhub.toml").read_text()) + (
            "\n[retry]\nmax_attempts = 3\nbase_s = 0.05\nmax_s = 0.2\nsettle_grace_s = 0.3\n"
            "\n[breaker]\nfailure_threshold = 2\nwindow = 20\ncooldown_s = 0.5\n"
            "cooldown_max_s = 2.0\nhalf_open_probes = 1\n" + extra
        )
        app = build_app(make_settings(config), secrets, on_give_up=lambda r: None)
        client = await aiohttp_client(app)
        assert app[STORE].database.name == storage.backend
        meta.deliver_statuses_to(str(client.make_url("/webhook")), APP_SECRET.encode(),
                                 delay_s=0.01)
        return client

    return start_gateway


async def customer_wrote(client, wa_id: str) -> None:
    """The customer wrote just now (the 24-hour window is open once stored)."""
    change = traffic.text_message(NUMBER_A, wa_id, "halo", timestamp=int(time.time()))
    assert await post(client, traffic.envelope(change)) == 200
    url = f"/api/v1/conversations/{wa_id}/messages"
    for _ in range(500):
        if (await (await client.get(url, headers=auth("firm-a"))).json())["messages"]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the customer's message was never stored")


async def send_text(client, wa_id: str, body: str) -> str:
    response = await client.post("/api/v1/messages", headers=auth("firm-a"), json={
        "phone_number_id": NUMBER_A, "to": wa_id, "type": "text", "text": {"body": body}})
    assert response.status == 202, await response.text()
    return (await response.json())["id"]


SENT_OR_LATER = ("sent", "delivered", "read")


async def settled(client, message_id: str, status: str, timeout: float = 10.0) -> dict:
    """Wait until the message's status is ``status`` (``sent``: or beyond)."""
    wanted = SENT_OR_LATER if status == "sent" else (status,)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await (await client.get(f"/api/v1/messages/{message_id}",
                                      headers=auth("firm-a"))).json()
        if got["status"] in wanted:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still {got['status']} ({got['state']}): {got}")
        await asyncio.sleep(0.02)


async def test_a_reply_is_sent_once_and_moves_to_read_with_its_history(start, meta) -> None:
    client = await start()
    feed = await Feed.open(client, "firm-a")
    await customer_wrote(client, "6281234500301")
    message_id = await send_text(client, "6281234500301", "Berkas Anda sudah kami terima.")
    got = await settled(client, message_id, "read")
    assert [h["status"] for h in got["history"]] == ["accepted", "sent", "delivered", "read"]
    [request] = [s for s in meta.sends if s.callback == message_id]
    assert (request.to, request.body, request.status) == (
        "+6281234500301", "Berkas Anda sudah kami terima.", 200)
    await feed.until(lambda f: any(x["type"] == "outbound.sent" for x in f))
    assert feed.of_type("outbound.sent")[0]["data"]["wamid"] == got["wamid"]
    await feed.close()


async def test_retryable_errors_are_retried_then_sent(start, meta) -> None:
    client = await start()
    await customer_wrote(client, "6281234500302")
    meta.fail_sends_next(2, status=400, code=131000)  # "Something went wrong": retryable
    message_id = await send_text(client, "6281234500302", "coba lagi")
    got = await settled(client, message_id, "read")
    assert got["attempts"] == 3
    assert len([s for s in meta.sends if s.callback == message_id]) == 3


async def test_a_terminal_error_goes_straight_to_the_dead_letter_queue(start, meta) -> None:
    client = await start()
    feed = await Feed.open(client, "firm-a")
    await customer_wrote(client, "6281234500303")
    meta.fail_sends_next(1, status=400, code=131026)  # the recipient cannot receive
    message_id = await send_text(client, "6281234500303", "tidak sampai")
    await feed.until(lambda f: any(x["type"] == "outbound.failed" for x in f))
    failed = feed.of_type("outbound.failed")[0]["data"]
    assert (failed["id"], failed["reason"], failed["error"]["code"]) == (
        message_id, "terminal", 131026)
    assert len([s for s in meta.sends if s.callback == message_id]) == 1
    await feed.close()


async def _sent_once_after_a_5xx(client, meta, wa_id: str, body: str) -> None:
    """Meta sends ``body`` and answers 500: its status settles it, never a second send."""
    meta.accept_then_fail_next(1, status=500)  # Meta sent it, then answered 500
    message_id = await send_text(client, wa_id, body)
    got = await settled(client, message_id, "read")
    await asyncio.sleep(0.5)  # longer than the grace: a second send would have gone by now
    assert len([s for s in meta.sends if s.callback == message_id]) == 1
    assert got["wamid"] is not None


async def test_a_5xx_is_settled_by_the_status_webhook_and_never_sent_twice(start, meta) -> None:
    client = await start()
    await customer_wrote(client, "6281234500304")
    await _sent_once_after_a_5xx(client, meta, "6281234500304", "sekali saja")


async def test_a_5xx_whose_status_is_journaled_but_not_yet_processed_is_not_sent_again(
        start, meta, monkeypatch) -> None:
    """Meta sent it and answered 500; its status webhook is journaled at once
    but processed only after the grace (a backlog ahead of it, or a partition
    just taken over from a dead node): the send waits for the processing to
    catch up with what the journal held when the grace ended, and is settled
    by the status, never sent twice."""
    planned = SessionShard._status

    def behind(self: SessionShard, event: Any) -> Any:
        time.sleep(0.4)  # on the shard's thread, before the store: the journal waits
        return planned(self, event)

    client = await start()
    await customer_wrote(client, "6281234500320")
    monkeypatch.setattr(SessionShard, "_status", behind)
    await _sent_once_after_a_5xx(client, meta, "6281234500320", "status tertunda")


async def test_a_status_that_beats_a_5xx_answer_settles_the_send_and_crashes_nothing(
        start, meta, caplog) -> None:
    client = await start()
    await customer_wrote(client, "6281234500317")
    meta.send_latency_s = 0.3  # the status webhook arrives before the answer
    meta.accept_then_fail_next(1, status=500)
    message_id = await send_text(client, "6281234500317", "status lebih dulu")
    await settled(client, message_id, "read")
    await asyncio.sleep(0.8)  # the late 500 has come and gone, and any grace with it
    assert len([s for s in meta.sends if s.callback == message_id]) == 1
    assert "IllegalMove" not in caplog.text
    tree = await (await client.get("/admin/tree", headers=ADMIN)).json()
    assert sum(n["restarts"]["total"] for n in _walk(tree)) == 0


async def test_one_recipients_messages_leave_in_the_order_they_were_accepted(start, meta) -> None:
    client = await start()
    await customer_wrote(client, "6281234500305")
    meta.fail_sends_next(1, status=400, code=131000)  # the first one needs a retry
    ids = [await send_text(client, "6281234500305", f"bagian {n}") for n in range(5)]
    for message_id in ids:
        await settled(client, message_id, "read")
    accepted = [s.body for s in meta.sends if s.to == "+6281234500305" and s.status == 200]
    assert accepted == [f"bagian {n}" for n in range(5)]


async def test_an_earlier_message_heard_of_after_a_later_one_still_leaves_first(
        start, meta) -> None:
    """Several nodes: a message accepted elsewhere is told to its recipient's
    worker by a notice, which may come after a later message accepted here
    (both queued behind the one in flight). The earlier one leaves first."""
    client = await start()
    runtime = client.app[RUNTIME]
    to = "6281234500307"
    await customer_wrote(client, to)
    meta.send_latency_s = 0.5  # the first one is in flight while the others arrive
    first = await send_text(client, to, "bagian 0")
    await until(lambda: any(s.body == "bagian 0" for s in list(meta.sends)), timeout=5,
                what="the first call under way")
    settings = runtime.settings
    number = settings.phone_number(NUMBER_A)
    assert number is not None
    # Accepted "on another node": stored, its worker not told yet.
    earlier, _ = runtime.store.write(lambda tx: sends.admit(
        tx, settings, "firm-a", number, recipient=to,
        content={"type": "text", "text": "bagian 1"})).value
    later = await send_text(client, to, "bagian 2")  # told at once: queued behind the first
    runtime.send("firm-a", earlier, to)  # the notice, late: queued behind the later one
    for message_id in (first, earlier, later):
        await settled(client, message_id, "sent")
    order = [s.body for s in meta.sends if s.to == f"+{to}" and s.status == 200]
    assert order == ["bagian 0", "bagian 1", "bagian 2"]


async def test_a_broken_token_opens_the_breaker_the_api_answers_503_then_a_probe_closes_it(
    start, meta
) -> None:
    client = await start()
    feed = await Feed.open(client, "firm-a")
    await customer_wrote(client, "6281234500306")
    meta.fail_sends_next(1, status=401, code=190)  # the token is broken: trips at once
    await send_text(client, "6281234500306", "pertama")
    await feed.until(lambda f: any(x["type"] == "circuit.changed" for x in f))
    response = await client.post("/api/v1/messages", headers=auth("firm-a"), json={
        "phone_number_id": NUMBER_A, "to": "6281234500306", "type": "text",
        "text": {"body": "kedua"}})
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "circuit_open"
    assert 1 <= int(response.headers["Retry-After"]) <= 2
    tree = await (await client.get("/admin/tree", headers=ADMIN)).json()
    nodes = {n["path"]: n for n in _walk(tree)}
    assert nodes[f"outbound/breakers/{NUMBER_A}"]["info"]["circuit"] == "open"
    assert nodes[f"outbound/limiters/{NUMBER_A}"]["info"]["permits"] >= 1
    await asyncio.sleep(0.6)  # the cool-down: half-open now, one probe allowed
    probe = await send_text(client, "6281234500306", "ketiga")
    await settled(client, probe, "read")
    await feed.until(lambda f: [x["data"]["to"] for x in f if x["type"] == "circuit.changed"]
                     [-1:] == ["closed"])
    assert [x["data"]["to"] for x in feed.of_type("circuit.changed")] == [
        "open", "half_open", "closed"]
    await feed.close()


async def dead_letter(client, meta, wa_id: str, body: str) -> str:
    meta.fail_sends_next(1, status=400, code=131026)
    message_id = await send_text(client, wa_id, body)
    for _ in range(500):
        entries = (await (await client.get("/admin/dlq", headers=ADMIN)).json())["entries"]
        if any(e["id"] == message_id for e in entries):
            return message_id
        await asyncio.sleep(0.01)
    raise AssertionError("never dead-lettered")


async def test_an_operator_replays_a_dead_letter_and_it_is_sent_once(start, meta) -> None:
    client = await start()
    await customer_wrote(client, "6281234500307")
    message_id = await dead_letter(client, meta, "6281234500307", "ulang")
    listing = await (await client.get("/admin/dlq", headers=ADMIN)).text()
    assert "6281234500307" not in listing  # operators see the last four digits only
    [entry] = orjson.loads(listing)["entries"]
    assert (entry["reason"], entry["error"]["code"], entry["to"]) == (
        "terminal", 131026, "\u20260307")
    assert (await client.get("/admin/dlq", headers=auth("firm-a"))).status == 401
    response = await client.post(f"/admin/dlq/{message_id}/replay", headers=ADMIN)
    assert response.status == 202
    await settled(client, message_id, "read")
    assert [s.status for s in meta.sends if s.callback == message_id] == [400, 200]
    assert (await (await client.get("/admin/dlq", headers=ADMIN)).json())["entries"] == []
    store = client.app[STORE]
    moves = {kind: await asyncio.to_thread(store.read, store_reads.count, "audit", kind=kind)
             for kind in ("dlq_in", "dlq_replay")}
    assert moves == {"dlq_in": 1, "dlq_replay": 1}  # every move audited
    again = await client.post(f"/admin/dlq/{message_id}/replay", headers=ADMIN)
    assert again.status == 404


async def test_a_replay_for_a_customer_who_opted_out_since_is_refused(start, meta) -> None:
    client = await start()
    await customer_wrote(client, "6281234500308")
    message_id = await dead_letter(client, meta, "6281234500308", "nanti")
    stop = traffic.text_message(NUMBER_A, "6281234500308", "STOP", timestamp=int(time.time()))
    assert await post(client, traffic.envelope(stop)) == 200
    url = "/api/v1/conversations/6281234500308/messages"
    for _ in range(500):  # until the STOP is stored (with its opt-out, in one transaction)
        texts = [m["text"] for m in (await (await client.get(url, headers=auth("firm-a"))).json())
                 ["messages"]]
        if "STOP" in texts:
            break
        await asyncio.sleep(0.01)
    response = await client.post(f"/admin/dlq/{message_id}/replay", headers=ADMIN)
    assert (response.status, (await response.json())["error"]["code"]) == (409, "opted_out")
    assert await (await client.delete(f"/admin/dlq/{message_id}", headers=ADMIN)).read() == b""
    assert (await (await client.get("/admin/dlq", headers=ADMIN)).json())["entries"] == []
    assert (await client.delete(f"/admin/dlq/{message_id}", headers=ADMIN)).status == 404
    assert [s.status for s in meta.sends if s.callback == message_id] == [400]


AUTO_REPLIES = """
[tenants.auto_replies]
timezone = "Asia/Jakarta"
office_hours = "08:00-17:00"
office_days = ["mon", "tue", "wed", "thu", "fri"]
greeting = { text = "Terima kasih telah menghubungi Firma Hukum A." }
after_hours = { text = "Kantor kami sedang tutup; kami membalas besok pagi." }
urgent = { text = "Pesan mendesak Anda sudah kami terima; advokat jaga akan menelepon." }
"""


def _auto_config(office_hours: str = "00:00-24:00") -> str:
    """The shipped config with automatic replies for firm-a (its first tenant)."""
    shipped = (REPO / "config" / "lawhub.toml").read_text()
    first_number_end = shipped.index("[[tenants.phone_numbers]]")
    rules = AUTO_REPLIES.replace('"08:00-17:00"', f'"{office_hours}"').replace(
        '["mon", "tue", "wed", "thu", "fri"]', '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]')
    return shipped[:first_number_end] + rules + "\n" + shipped[first_number_end:]


def _closed_now() -> str:
    """Office hours that exclude this very hour in Jakarta (a window not open now)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    start = (datetime.now(ZoneInfo("Asia/Jakarta")).hour + 2) % 24
    return f"{start:02d}:00-{start + 1:02d}:00"


async def wrote_at(client, wa_id: str, text: str, at: int) -> None:
    change = traffic.text_message(NUMBER_A, wa_id, text, timestamp=at)
    assert await post(client, traffic.envelope(change)) == 200


def automatic(meta, wa_id: str) -> list[str]:
    return [s.body for s in meta.sends if s.to == f"+{wa_id}" and s.status == 200]


async def test_a_new_lead_gets_the_greeting_once_and_an_urgent_intake_an_acknowledgement(
    aiohttp_client, make_settings, tmp_path, meta
) -> None:
    secrets = Secrets.from_env(test_environment(
        tmp_path, LAWHUB_ACCESS_TOKEN=TOKEN, LAWHUB_GRAPH_BASE_URL=meta.base_url))
    client = await aiohttp_client(build_app(make_settings(_auto_config()), secrets,
                                            on_give_up=lambda r: None))
    feed = await Feed.open(client, "firm-a")
    now = int(time.time())
    await wrote_at(client, "6281234500501", "Selamat pagi, saya mau konsultasi", now)
    await wrote_at(client, "6281234500501", "soal warisan tanah", now + 1)
    await until(lambda: len(automatic(meta, "6281234500501")) >= 1)
    await wrote_at(client, "6281234500502", "Tolong, suami saya ditangkap polisi semalam", now)
    await until(lambda: len(automatic(meta, "6281234500502")) >= 2)
    await feed.until(lambda f: any(x["type"] == "intake.urgent" for x in f))
    await asyncio.sleep(0.3)  # nothing more may follow
    greeting = "Terima kasih telah menghubungi Firma Hukum A."
    assert automatic(meta, "6281234500501") == [greeting]  # once, not per message
    assert automatic(meta, "6281234500502") == [
        greeting, "Pesan mendesak Anda sudah kami terima; advokat jaga akan menelepon."]
    accepted = [x["data"] for x in feed.of_type("outbound.accepted")]
    assert accepted and all(a["automatic"] for a in accepted)
    await feed.close()


async def test_nothing_automatic_goes_to_an_opted_out_customer_and_after_hours_is_noticed_once(
    aiohttp_client, make_settings, tmp_path, meta
) -> None:
    secrets = Secrets.from_env(test_environment(
        tmp_path, LAWHUB_ACCESS_TOKEN=TOKEN, LAWHUB_GRAPH_BASE_URL=meta.base_url))
    client = await aiohttp_client(build_app(make_settings(_auto_config(_closed_now())), secrets,
                                            on_give_up=lambda r: None))
    now = int(time.time())
    await wrote_at(client, "6281234500503", "STOP", now)  # a new lead whose first word is STOP
    await wrote_at(client, "6281234500504", "halo, masih buka?", now)
    await wrote_at(client, "6281234500504", "halo?", now + 60)
    await until(lambda: len(automatic(meta, "6281234500504")) >= 2)
    await asyncio.sleep(0.3)
    assert automatic(meta, "6281234500503") == []
    assert automatic(meta, "6281234500504") == [
        "Terima kasih telah menghubungi Firma Hukum A.",
        "Kantor kami sedang tutup; kami membalas besok pagi."]


async def test_a_message_still_failing_after_the_last_retry_is_dead_lettered(start, meta) -> None:
    client = await start()  # [retry] max_attempts = 3
    feed = await Feed.open(client, "firm-a")
    await customer_wrote(client, "6281234500309")
    meta.fail_sends_next(3, status=400, code=131000)
    message_id = await send_text(client, "6281234500309", "tiga kali gagal")
    await feed.until(lambda f: any(x["type"] == "outbound.failed" for x in f))
    failed = feed.of_type("outbound.failed")[0]["data"]
    assert (failed["id"], failed["reason"]) == (message_id, "retries_exhausted")
    assert [s.code for s in meta.sends if s.callback == message_id] == [131000] * 3
    await feed.close()


async def test_metas_unknown_error_code_1_is_tried_again_once_then_dead_lettered(
        start, meta) -> None:
    client = await start()  # [retry] max_attempts = 3: a third attempt would be allowed
    feed = await Feed.open(client, "firm-a")
    await customer_wrote(client, "6281234500315")
    meta.fail_sends_next(3, status=400, code=1)  # "An unknown error occurred", three times
    message_id = await send_text(client, "6281234500315", "kode satu")
    await feed.until(lambda f: any(x["type"] == "outbound.failed" for x in f))
    failed = feed.of_type("outbound.failed")[0]["data"]
    assert (failed["id"], failed["reason"], failed["error"]["code"]) == (
        message_id, "retries_exhausted", 1)
    assert [s.code for s in meta.sends if s.callback == message_id] == [1, 1]  # not a third
    await feed.close()


async def test_code_1_after_another_retryable_error_still_gets_its_one_retry(start, meta) -> None:
    client = await start()  # [retry] max_attempts = 3
    await customer_wrote(client, "6281234500316")
    meta.fail_sends_next(1, status=400, code=131000)
    meta.fail_sends_next(1, status=400, code=1)
    message_id = await send_text(client, "6281234500316", "lalu kode satu")
    got = await settled(client, message_id, "sent")
    assert got["attempts"] == 3
    assert [s.code for s in meta.sends if s.callback == message_id][:2] == [131000, 1]


async def test_the_pair_rate_error_retries_that_recipient_only(start, meta) -> None:
    client = await start()
    await customer_wrote(client, "6281234500310")
    await customer_wrote(client, "6281234500311")
    meta.fail_sends_next(1, status=400, code=131056)  # this pair: wait 1 s, then again
    held = await send_text(client, "6281234500310", "ditahan sebentar")
    other = await send_text(client, "6281234500311", "tidak ikut menunggu")
    await settled(client, other, "sent")
    first = next(s.at for s in meta.sends if s.callback == held)
    passed = next(s.at for s in meta.sends if s.callback == other and s.status == 200)
    assert passed - first < 0.5  # the other recipient did not wait for the 1 s backoff
    got = await settled(client, held, "sent")
    retried = [s.at for s in meta.sends if s.callback == held]
    assert len(retried) == 2 and retried[1] - retried[0] >= 0.9
    assert got["attempts"] == 2


async def test_a_failed_status_from_meta_marks_the_message_failed_on_the_feed(start, meta) -> None:
    client = await start()
    feed = await Feed.open(client, "firm-a")
    await customer_wrote(client, "6281234500312")
    meta.fail_status_for_next(1, code=131047)  # sent, then failed (re-engagement needed)
    message_id = await send_text(client, "6281234500312", "tidak terkirim")
    got = await settled(client, message_id, "failed")
    assert got["error"]["code"] == 131047
    await feed.until(lambda f: any(x["type"] == "outbound.failed" for x in f))
    failed = feed.of_type("outbound.failed")[0]["data"]
    assert (failed["id"], failed["reason"], failed["error"]["code"]) == (
        message_id, "meta_failed", 131047)
    await feed.close()


async def test_with_a_remote_classifier_an_urgent_intake_is_acknowledged_too(
    aiohttp_client, aiohttp_server, make_settings, tmp_path, meta
) -> None:
    from aiohttp import web

    async def classify(request: web.Request) -> web.Response:
        return web.json_response({"intent": "criminal", "urgency": "critical", "confidence": 0.9})

    remote = web.Application()
    remote.router.add_post("/classify", classify)
    server = await aiohttp_server(remote)
    config = _auto_config() + (
        f'\n[assist]\nurl = "http://127.0.0.1:{server.port}/classify"\ntimeout_s = 5.0\n')
    secrets = Secrets.from_env(test_environment(
        tmp_path, LAWHUB_ACCESS_TOKEN=TOKEN, LAWHUB_GRAPH_BASE_URL=meta.base_url))
    client = await aiohttp_client(build_app(make_settings(config), secrets,
                                            on_give_up=lambda r: None))
    await wrote_at(client, "6281234500505", "anak saya ditahan polisi", int(time.time()))
    await until(lambda: len(automatic(meta, "6281234500505")) >= 2)
    await asyncio.sleep(0.3)
    assert automatic(meta, "6281234500505") == [
        "Terima kasih telah menghubungi Firma Hukum A.",
        "Pesan mendesak Anda sudah kami terima; advokat jaga akan menelepon."]


async def test_an_unknown_outcome_with_no_status_webhook_is_sent_again_after_the_grace(
    start, meta
) -> None:
    client = await start()
    await customer_wrote(client, "6281234500313")
    meta.fail_sends_next(1, status=503, code=None)  # Meta did not send it, but we cannot know
    message_id = await send_text(client, "6281234500313", "sekali lagi")
    got = await settled(client, message_id, "sent")
    assert [s.status for s in meta.sends if s.callback == message_id] == [503, 200]
    assert got["attempts"] == 2


async def test_a_number_removed_live_keeps_its_actors_until_its_send_in_flight_is_done(
    start, meta
) -> None:
    client = await start()
    await customer_wrote(client, "6281234500901")
    meta.send_latency_s = 2.5  # Meta takes its time: the send is in flight across the reload
    message_id = await send_text(client, "6281234500901", "Jadwal sidang sudah kami kirim.")
    response = await client.put("/admin/config", data=await _config_without(client, NUMBER_A),
                                headers=ADMIN)

    assert response.status == 200, await response.text()
    paths = {n["path"] for n in _walk(await (await client.get("/admin/tree", headers=ADMIN)).json())}
    assert f"outbound/limiters/{NUMBER_A}" in paths  # retiring, not gone: a send is in flight
    got = await settled(client, message_id, "sent")
    assert got["wamid"]
    refused = await client.post("/api/v1/messages", headers=auth("firm-a"), json={
        "phone_number_id": NUMBER_A, "to": "6281234500901", "type": "text",
        "text": {"body": "lagi"}})
    assert refused.status == 403  # the number is no longer the tenant's: nothing new goes out
    retired = {f"outbound/limiters/{NUMBER_A}", f"outbound/breakers/{NUMBER_A}"}
    for _ in range(200):  # one adoption stops the limiter, then the breaker: wait for both
        tree = await (await client.get("/admin/tree", headers=ADMIN)).json()
        if not retired & {n["path"] for n in _walk(tree)}:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the removed number's limiter and breaker never both retired")



async def test_a_send_still_unfinished_when_its_number_retires_goes_to_the_dlq_as_removed(
    start, meta
) -> None:
    client = await start("\n[supervision]\nretire_timeout_s = 0.5\n")
    await customer_wrote(client, "6281234500902")
    meta.send_latency_s = 2.0  # the first call outlasts the retirement; the second waits behind it
    first = await send_text(client, "6281234500902", "Mohon tanda tangani surat kuasa.")
    second = await send_text(client, "6281234500902", "Terima kasih.")

    response = await client.put("/admin/config", data=await _config_without(client, NUMBER_A),
                                headers=ADMIN)

    assert response.status == 200
    for _ in range(300):
        entries = (await (await client.get("/admin/dlq", headers=ADMIN)).json())["entries"]
        if entries:
            break
        await asyncio.sleep(0.05)
    [entry] = entries
    assert (entry["id"], entry["reason"]) == (second, "number_removed")
    assert (await settled(client, first, "sent"))["wamid"]  # the call under way was recorded


async def _config_without(client, number_id: str, **limits: int) -> bytes:
    """The running config, as TOML, with one phone number removed (and
    ``limits`` set)."""
    running = await (await client.get("/admin/config", headers=ADMIN)).json()
    running["limits"].update(limits)
    for tenant in running["tenants"]:
        tenant["phone_numbers"] = [n for n in tenant["phone_numbers"] if n["id"] != number_id]
    return tomli_w.dumps(_without_nulls(running)).encode()


def _without_nulls(value: Any) -> Any:
    """JSON config as TOML can hold it (TOML has no null: an unset key is absent)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


async def test_later_reloads_do_not_postpone_a_retirement(start, meta) -> None:
    client = await start("\n[supervision]\nretire_timeout_s = 1.0\n")
    await customer_wrote(client, "6281234500903")
    meta.send_latency_s = 6.0  # in flight far longer than the retirement may wait
    await send_text(client, "6281234500903", "Dokumen sudah lengkap.")
    without_a = await _config_without(client, NUMBER_A)
    assert (await client.put("/admin/config", data=without_a, headers=ADMIN)).status == 200
    began = asyncio.get_running_loop().time()

    gone = False
    for n in range(40):  # a reload every 0.1 s, each changing something
        tuned = await _config_without(client, NUMBER_A, pair_burst=45 + n % 2)
        assert (await client.put("/admin/config", data=tuned, headers=ADMIN)).status == 200
        tree = await (await client.get("/admin/tree", headers=ADMIN)).json()
        if f"outbound/limiters/{NUMBER_A}" not in {node["path"] for node in _walk(tree)}:
            gone = True
            break
        await asyncio.sleep(0.1)

    assert gone and asyncio.get_running_loop().time() - began < 3.0
