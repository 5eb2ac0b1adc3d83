"""GET /admin/ws: the operators' live view (the tree, then deltas, counts and
every tenant's feed), admin token only; and the pieces it is made of."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from lawhub_actors.adapters.store_rows import FeedEvent
from lawhub_actors.simulator import traffic
from lawhub_actors.web.app import build_app
from lawhub_actors.web.console import (
    FEED_KEYS,
    NUMBER_KEYS,
    PAGE_DIR,
    console_event,
    delta,
    flatten,
)
from lawhub_actors.web.feed import FeedHub
from tests.conftest import ADMIN_TOKEN, REPO
from tests.e2e.gateway import Feed, post

NUMBER_A = "106540352242922"
NUMBER_B = "107611463353033"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ALLOWED = (REPO / "config" / "lawhub.toml").read_text().replace(
    "allow_fault_injection = false", "allow_fault_injection = true")

Frame = dict[str, Any]


class Console:
    """An /admin/ws client, collecting frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[Frame] = []

    async def until(self, found: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        """The first frame (seen or still to come) for which ``found`` holds."""
        async def read() -> Frame:
            for frame in self.frames:
                if found(frame):
                    return frame
            while True:
                frame = await self.ws.receive_json()
                self.frames.append(frame)
                if found(frame):
                    return frame

        return await asyncio.wait_for(read(), timeout)


async def _console(client, **kwargs) -> Console:
    return Console(await client.ws_connect("/admin/ws", **kwargs))


@pytest.fixture
async def client(aiohttp_client, settings, secrets):
    return await aiohttp_client(build_app(settings, secrets, on_give_up=lambda r: None))


@pytest.mark.parametrize("how", [
    {},
    {"headers": {"Authorization": "Bearer demo-token-firm-a"}},
    {"params": {"token": "demo-token-firm-a"}},
    {"params": {"token": "not-the-admin-token"}},
])
async def test_it_is_refused_before_the_upgrade_without_the_admin_token(client, how) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/admin/ws", **how)
    assert refused.value.status == 401


@pytest.mark.parametrize("how", [{"headers": ADMIN}, {"params": {"token": ADMIN_TOKEN}}])
async def test_the_first_frame_is_the_whole_tree_then_the_counts(client, how) -> None:
    console = await _console(client, **how)
    first = await console.ws.receive_json(timeout=5)
    assert first["type"] == "tree"
    tree = first["tree"]
    assert (tree["id"], tree["state"]) == ("root", "running")
    assert [child["path"] for child in tree["children"]] == ["inbound", "outbound"]
    assert "malware_scanning" in tree["services"]
    assert await console.ws.receive_json(timeout=5) == {
        "type": "counts", "dlq": 0, "quarantine": 0,
        "lag": 0, "lag_s": 0.0, "in_flight": 0, "stalled": None,  # the inbound backlog
    }
    await console.ws.close()


async def test_a_rehearsed_crash_arrives_as_a_delta_with_the_restart_counted(
    aiohttp_client, make_settings, secrets
) -> None:
    client = await aiohttp_client(build_app(make_settings(ALLOWED), secrets,
                                            on_give_up=lambda r: None))
    console = await _console(client, headers=ADMIN)
    first = await console.until(lambda f: f["type"] == "tree")
    before = flatten(first["tree"])["inbound/dispatcher"]
    assert before["restarts"]["total"] == 0
    response = await client.post("/admin/faults", headers=ADMIN,
                                 json={"path": "inbound/dispatcher", "kind": "crash"})
    assert response.status == 202
    # The dispatcher crashes on the next message it is sent: a webhook nudges it.
    assert await post(client, traffic.envelope(
        traffic.text_message(NUMBER_A, "6281234560001", "halo"))) == 200

    def restarted(frame: Frame) -> bool:
        return frame["type"] == "tree.delta" and any(
            node["path"] == "inbound/dispatcher" and node["restarts"]["total"] == 1
            for node in frame["changed"])

    frame = await console.until(restarted)
    [node] = [n for n in frame["changed"] if n["path"] == "inbound/dispatcher"]
    assert (node["parent"], node["kind"]) == ("inbound", before["kind"])
    assert "children" not in node
    await console.ws.close()


async def test_every_tenants_feed_arrives_without_text_or_full_numbers(client) -> None:
    console = await _console(client, headers=ADMIN)
    await console.until(lambda f: f["type"] == "tree")
    tenant = await Feed.open(client, "firm-a")
    assert await post(client, traffic.envelope(
        traffic.text_message(NUMBER_A, "6281234560002", "halo dari A"))) == 200
    assert await post(client, traffic.envelope(
        traffic.text_message(NUMBER_B, "6281234560003", "halo dari B"))) == 200

    def received(tenant_id: str) -> Callable[[Frame], bool]:
        return lambda f: (f["type"] == "feed" and f["tenant"] == tenant_id
                          and f["event"]["type"] == "message.received")

    from_a = await console.until(received("firm-a"))
    from_b = await console.until(received("firm-b"))
    await tenant.until(lambda frames: any(x["type"] == "message.received" for x in frames))
    whole = tenant.of_type("message.received")[0]
    assert whole["data"]["text"] == "halo dari A"  # the tenant sees it all
    assert from_a["event"] == {
        "seq": whole["seq"], "type": "message.received", "at": whole["at"],
        "data": {"id": whole["data"]["id"], "customer": "\u20260002"},
    }
    assert from_b["event"]["data"]["customer"] == "\u20260003"
    sent = json.dumps(console.frames, ensure_ascii=False)
    for secret in ("halo dari", "628123456000", whole["data"]["wamid"]):
        assert secret not in sent
    await tenant.close()
    await console.ws.close()


async def test_counts_follow_the_quarantine(client) -> None:
    console = await _console(client, headers=ADMIN)
    await console.until(lambda f: f["type"] == "counts")
    unknown = traffic.text_message("999000111222333", "6281234560004", "nomor tak dikenal")
    assert await post(client, traffic.envelope(unknown)) == 200
    frame = await console.until(lambda f: f["type"] == "counts" and f["quarantine"] == 1)
    assert (frame["dlq"], frame["quarantine"]) == (0, 1)
    await console.ws.close()


async def test_a_stopping_gateway_says_goodbye_instead_of_waiting_for_consoles(client) -> None:
    console = await _console(client, headers=ADMIN)
    await console.until(lambda f: f["type"] == "counts")
    await client.app.shutdown()  # what stopping the server runs first
    goodbye = await console.ws.receive(timeout=5)
    while goodbye.type is aiohttp.WSMsgType.TEXT:  # a frame sent just before
        goodbye = await console.ws.receive(timeout=5)
    assert (goodbye.type, goodbye.data) == (aiohttp.WSMsgType.CLOSE, 1001)


# -- the pieces --------------------------------------------------------------------------


def _node(path: str, children: list[dict[str, Any]] = (), **fields: Any) -> dict[str, Any]:
    return {"path": path, "id": path.rpartition("/")[2] or "root", "kind": "worker",
            "state": "running", "restarts": {"total": 0, "in_period": 0}, "mailbox_depth": 0,
            **fields, "children": list(children)}


def test_a_delta_lists_new_and_changed_nodes_parents_first_and_the_removed() -> None:
    before = flatten(_node("", [_node("a", [_node("a/x"), _node("a/y")]), _node("b")]))
    after = flatten(_node("", [
        _node("a", [_node("a/y", state="restarting"), _node("a/z", [_node("a/z/1")])]),
        _node("b"),
    ]))
    change = delta(before, after)
    assert change is not None and change["type"] == "tree.delta"
    assert [(n["path"], n["parent"], n["position"]) for n in change["changed"]] == [
        ("a/y", "a", 0), ("a/z", "a", 1), ("a/z/1", "a/z", 0)]
    assert change["changed"][0]["state"] == "restarting"
    assert change["removed"] == ["a/x"]
    assert delta(after, after) is None


class _NowBridge:
    """Runs the hub's fan-out at once (the test is its only thread)."""

    def call_soon(self, callback: Callable[..., None], *args: Any) -> None:
        callback(*args)


def _event(tenant: str, seq: int) -> FeedEvent:
    return FeedEvent(tenant, seq, "message.received", 0.0, {})


async def test_an_all_tenants_subscriber_gets_every_tenant_and_overflows_alone() -> None:
    hub = FeedHub(_NowBridge(), queue_size=3)  # type: ignore[arg-type]
    everyone, firm_a = hub.subscribe_all(), hub.subscribe("firm-a")
    assert hub.count() == 2
    hub.publish([_event("firm-a", 1), _event("firm-b", 1), _event("firm-b", 2)])
    assert [(e.tenant, e.seq) for e in _drain(everyone)] == [
        ("firm-a", 1), ("firm-b", 1), ("firm-b", 2)]
    assert [(e.tenant, e.seq) for e in _drain(firm_a)] == [("firm-a", 1)]
    hub.publish([_event("firm-b", n) for n in range(3, 7)])  # one more than its queue holds
    assert everyone.overflowed and not firm_a.overflowed
    hub.unsubscribe(everyone)
    hub.publish([_event("firm-a", 2)])
    assert everyone.queue.qsize() == 3 and [e.seq for e in _drain(firm_a)] == [2]
    assert hub.count() == 1


def _drain(subscriber) -> list[FeedEvent]:
    found = []
    while not subscriber.queue.empty():
        found.append(subscriber.queue.get_nowait())
    return found


def _shown(type_: str, **data: Any) -> dict[str, Any]:
    return console_event(FeedEvent("firm-a", 7, type_, 0.0, data))["data"]


def test_a_console_gets_only_what_its_page_shows_of_each_event() -> None:
    assert _shown("message.received", id="m1", customer="6281234567890", wamid="wamid.X",
                  type="image", text="rahasia", lead=True) == {"id": "m1", "customer": "\u20267890"}
    assert _shown("outbound.accepted", id="o1", to="+62 812-3456-7891", type="text",
                  client_ref="mine", phone_number_id=NUMBER_A, automatic=False) == {
        "id": "o1", "to": "\u20267891", "phone_number_id": NUMBER_A}
    assert _shown("outbound.failed", id="o1", to="6281234567892", reason="meta_failed",
                  error={"code": 131026, "message": "undeliverable", "details": "to 62812..."},
                  wamid="wamid.Y") == {"id": "o1", "to": "\u20267892", "reason": "meta_failed"}
    assert _shown("message.status", wamid="wamid.Z", status="failed", id="o1", state="failed",
                  errors=[{"title": "Message undeliverable"}]) == {"id": "o1", "status": "failed"}
    assert _shown("media.scanned", id="m2", customer="6281234567893", wamid="wamid.W",
                  verdict="infected", reason="Eicar-Test-Signature", ref=None, caption="ktp saya",
                  mime_type="image/jpeg", size=68, scanner="clamd") == {
        "id": "m2", "customer": "\u20267893", "verdict": "infected",
        "reason": "Eicar-Test-Signature"}
    assert _shown("intake.urgent", customer="6281234567894", wamid="wamid.V", id="m3",
                  intent="criminal", urgency="critical", confidence=0.9,
                  reasons=["ditangkap"]) == {
        "id": "m3", "customer": "\u20267894", "intent": "criminal", "urgency": "critical"}
    assert _shown("circuit.changed", phone_number_id=NUMBER_A, to="open", retry_after_s=30.0,
                  **{"from": "closed"}) == {"phone_number_id": NUMBER_A, "from": "closed",
                                           "to": "open"}


def test_the_page_shows_the_keys_the_server_sends() -> None:
    script = (PAGE_DIR / "console.js").read_text()

    def listed(name: str) -> tuple[str, ...]:
        found = re.search(rf"const {name} = \[([^\]]*)\];", script)
        assert found, name
        return tuple(re.findall(r'"([^"]+)"', found.group(1)))

    assert listed("FEED_KEYS") == FEED_KEYS
    assert listed("NUMBER_KEYS") == NUMBER_KEYS
