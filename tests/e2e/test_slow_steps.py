"""Slow steps park only their own conversation; a poison update cannot wedge one."""

from __future__ import annotations

import asyncio

from aiohttp import web

from lawhub_actors import runtime
from lawhub_actors.adapters import store_reads
from lawhub_actors.core.assist import Classification, RuleClassifier
from lawhub_actors.core.masking import MaskedText
from lawhub_actors.simulator import traffic
from lawhub_actors.web.app import build_app
from lawhub_actors.web.keys import STORE
from tests.conftest import ADMIN_TOKEN
from tests.e2e.gateway import Feed, config_with_remote_classifier, post

NUMBER_A = "106540352242922"
SLOW, OTHER = "6281234500031", "6281234500032"


def _received(feed: Feed, customer: str) -> list[str]:
    return [f["data"]["text"] for f in feed.of_type("message.received")
            if f["data"]["customer"] == customer]


async def test_a_slow_classification_parks_only_its_own_conversation(
    aiohttp_client, aiohttp_server, make_settings, secrets
) -> None:
    gate = asyncio.Event()

    async def classify(request: web.Request) -> web.Response:
        if "tunggu" in (await request.json())["text"]:
            await gate.wait()  # this conversation's first message is slow to classify
        return web.json_response({"intent": "land", "urgency": "low", "confidence": 0.5})

    config = await config_with_remote_classifier(aiohttp_server, classify, timeout_s=20.0)
    client = await aiohttp_client(build_app(make_settings(config), secrets, on_give_up=lambda r: None))
    feed = await Feed.open(client, "firm-a")
    for customer, text in ((SLOW, "tunggu satu"), (SLOW, "dua"), (OTHER, "lain satu"),
                           (OTHER, "lain dua")):
        assert await post(client, traffic.envelope(traffic.text_message(NUMBER_A, customer, text))) == 200

    # The other conversation goes on, classified and all, while the slow one waits.
    await feed.until(lambda f: len([x for x in f if x["type"] == "intake.updated"]) == 2)
    assert _received(feed, OTHER) == ["lain satu", "lain dua"]
    assert _received(feed, SLOW) == ["tunggu satu"]
    store = client.app[STORE]
    stored = await asyncio.to_thread(store.read_tx, lambda tx: store_reads.count(
        tx.conn, "messages", tenant="firm-a", customer=tx.ref("firm-a", SLOW)))
    assert stored == 1

    gate.set()
    await feed.until(lambda f: len(_received(feed, SLOW)) == 2)
    await feed.until(lambda f: len([x for x in f if x["type"] == "intake.updated"]) == 4)
    slow = [(f["type"], f["data"].get("text")) for f in feed.frames
            if f["data"].get("customer") == SLOW and f["type"] != "intake.urgent"]
    assert slow == [("message.received", "tunggu satu"), ("intake.updated", None),
                    ("message.received", "dua"), ("intake.updated", None)]
    await feed.close()


class _Poisoned:
    """Crashes on one text, every time: a poison message for the assist pool."""

    def __init__(self) -> None:
        self._rules = RuleClassifier()

    def classify(self, text: MaskedText) -> Classification:
        if "racun" in text.text:
            raise RuntimeError("the classifier cannot take this message")
        return self._rules.classify(text)


async def test_an_update_its_handler_keeps_crashing_on_is_quarantined_and_its_conversation_goes_on(
    aiohttp_client, settings, secrets, monkeypatch
) -> None:
    monkeypatch.setattr(runtime, "_classifier", lambda _settings: _Poisoned())
    client = await aiohttp_client(build_app(settings, secrets, on_give_up=lambda r: None))
    feed = await Feed.open(client, "firm-a")
    for text in ("racun", "sesudahnya"):
        assert await post(client, traffic.envelope(traffic.text_message(NUMBER_A, SLOW, text))) == 200

    # The built-in rules run in the shard, in the message's transaction: the
    # poisoned update stores nothing, and the next one goes on.
    await feed.until(lambda f: _received(feed, SLOW) == ["sesudahnya"])
    await feed.until(lambda f: len(feed.of_type("intake.updated")) == 1)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for _ in range(200):
        entries = (await (await client.get("/admin/quarantine", headers=admin)).json())["entries"]
        if entries:
            break
        await asyncio.sleep(0.02)
    assert [e["reason"] for e in entries] == ["processing_failed"]
    assert entries[0]["data"]["error"] == "RuntimeError"  # never its message: it may quote input
    await feed.close()
