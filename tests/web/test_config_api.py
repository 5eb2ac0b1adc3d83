"""GET/PUT /admin/config: one validation, applied live or not at all, audited."""

from __future__ import annotations

import hashlib
import tomllib
from typing import Any

from lawhub_actors.settings import parse_text
from lawhub_actors.web.app import build_app
from lawhub_actors.web.keys import RUNTIME
from tests.conftest import ADMIN_TOKEN, SHIPPED_CONFIG
from tests.waits import until

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BASE = SHIPPED_CONFIG.read_text()
FIRM_C_TOKEN = "demo-token-firm-c"


async def _client(aiohttp_client, secrets, text: str = BASE):
    app = build_app(parse_text(text), secrets, on_give_up=lambda reason: None, config_text=text)
    return await aiohttp_client(app)


async def _put(client, text: str, headers: dict[str, str] = ADMIN) -> tuple[int, Any]:
    response = await client.put("/admin/config", data=text.encode(), headers=headers)
    return response.status, await response.json()


def _nodes(client) -> dict[str, Any]:
    snapshot = client.app[RUNTIME].snapshot()
    return {node.path: node for node in snapshot.walk()}


def _tuned(**sections: str) -> str:
    """The shipped config plus extra TOML tables."""
    return BASE + "\n" + "\n".join(sections.values()) + "\n"


async def test_the_toml_form_is_the_text_the_config_came_from(aiohttp_client, secrets) -> None:
    client = await _client(aiohttp_client, secrets)
    response = await client.get("/admin/config?format=toml", headers=ADMIN)
    assert response.status == 200
    assert await response.text() == BASE
    assert (await client.get("/admin/config?format=yaml", headers=ADMIN)).status == 422


async def test_an_invalid_config_is_refused_with_every_error_and_nothing_changes(
    aiohttp_client, secrets
) -> None:
    client = await _client(aiohttp_client, secrets)
    before = await (await client.get("/admin/config", headers=ADMIN)).json()
    broken = _tuned(pools="[supervision.pools]\nsession_shards = 0\nworkerz = 2",
                    breaker="[breaker]\nfailure_rate = 2.0")

    status, body = await _put(client, broken)

    assert status == 422
    keys = {error["key"] for error in body["errors"]}
    assert keys == {"supervision.pools.session_shards", "supervision.pools.workerz",
                    "breaker.failure_rate"}
    assert all(error["reason"] for error in body["errors"])
    assert await (await client.get("/admin/config", headers=ADMIN)).json() == before
    assert len(_nodes(client)["inbound/sessions/firm-a"].children) == 4


async def test_a_syntax_error_is_refused_with_its_line(aiohttp_client, secrets) -> None:
    client = await _client(aiohttp_client, secrets)
    status, body = await _put(client, BASE + "\n[server\n")
    assert status == 422
    assert body["errors"][0]["key"] == "(syntax)" and "line" in body["errors"][0]["reason"]


async def test_keys_read_only_at_start_are_refused_by_name(aiohttp_client, secrets) -> None:
    client = await _client(aiohttp_client, secrets)
    changed = BASE.replace("port = 8080", "port = 9090").replace(
        "[server]", "[server]\nwebhook_max_bytes = 1000")

    status, body = await _put(client, changed)

    assert status == 422
    assert {e["key"] for e in body["errors"]} == {"server.port", "server.webhook_max_bytes"}
    assert all("restart" in e["reason"] for e in body["errors"])


async def test_admin_config_refuses_without_the_admin_token_and_a_tenant_token_is_not_one(
    aiohttp_client, secrets
) -> None:
    client = await _client(aiohttp_client, secrets)
    for headers in ({}, {"Authorization": "Bearer demo-token-firm-a"}):
        assert (await _put(client, BASE, headers))[0] == 401
        assert (await client.get("/admin/config/changes", headers=headers)).status == 401
        assert (await client.get("/admin/config?format=toml", headers=headers)).status == 401


async def test_a_valid_config_applies_live_without_restarting_anyone_and_is_audited(
    aiohttp_client, secrets
) -> None:
    client = await _client(aiohttp_client, secrets)
    dispatcher = client.app[RUNTIME].tree.registry.get("inbound/dispatcher")
    shard0 = client.app[RUNTIME].tree.registry.get("inbound/sessions/firm-a/0")
    tuned = _tuned(
        pools="[supervision.pools]\nsession_shards = 2\noutbound_workers = 6",
        supervision="[supervision]\nmax_restarts = 9\n[supervision.backoff]\nmax_s = 1.0\n"
                    "[supervision.mailbox]\ncapacity = 500",
        breaker="[breaker]\nfailure_threshold = 9",
        limits="[limits]\npair_burst = 30",
    )

    status, body = await _put(client, tuned)

    assert status == 200, body
    assert {c["key"] for c in body["changes"]} == {
        "supervision.pools.session_shards", "supervision.pools.outbound_workers",
        "supervision.mailbox.capacity", "breaker.failure_threshold", "limits.pair_burst",
        "supervision.max_restarts", "supervision.backoff.max_s"}
    assert body["not_adopted"] == []
    nodes = _nodes(client)
    assert len(nodes["outbound/workers"].children) == 6
    await until(lambda: len(_nodes(client)["inbound/sessions/firm-a"].children) == 2)
    assert dispatcher.restarts.total == 0 and shard0.restarts.total == 0
    assert dispatcher.mailbox.spec.capacity == 500
    assert nodes["inbound"].info["max_restarts"] == 9  # intensity retuned in place
    running = await (await client.get("/admin/config", headers=ADMIN)).json()
    assert running["breaker"]["failure_threshold"] == 9
    assert await (await client.get("/admin/config?format=toml", headers=ADMIN)).text() == tuned

    history = await (await client.get("/admin/config/changes", headers=ADMIN)).json()
    entry = history["entries"][0]
    assert entry["data"]["by"] == hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()[:16]
    assert entry["data"]["via"] == "api" and entry["at"] > 0
    assert {"key": "breaker.failure_threshold", "from": 5, "to": 9} in entry["data"]["changes"]
    assert ADMIN_TOKEN not in str(history)


async def test_the_same_config_again_changes_nothing_and_audits_nothing(
    aiohttp_client, secrets
) -> None:
    client = await _client(aiohttp_client, secrets)
    status, body = await _put(client, BASE)
    assert status == 200 and body["changes"] == []
    history = await (await client.get("/admin/config/changes", headers=ADMIN)).json()
    assert history["entries"] == []


async def test_a_tenant_added_live_works_at_once_and_a_removed_one_is_refused(
    aiohttp_client, secrets
) -> None:
    client = await _client(aiohttp_client, secrets)
    start, end = BASE.index('[[tenants]]\nid = "firm-b"'), BASE.index("[[templates]]")
    without_b = _drop_templates_of(BASE[:start] + BASE[end:], "firm-b")
    assert [t["id"] for t in tomllib.loads(without_b)["tenants"]] == ["firm-a"]
    firm_c = (
        '\n[[tenants]]\nid = "firm-c"\n'
        f'api_token_sha256 = "{hashlib.sha256(FIRM_C_TOKEN.encode()).hexdigest()}"\n'
        '[[tenants.phone_numbers]]\nid = "109999999999999"\ndisplay = "+62 813 3"\n'
        'tier = "250"\n'
    )

    status, body = await _put(client, without_b + firm_c)

    assert status == 200, body
    conversations = "/api/v1/conversations/6281234567890/messages"
    assert (await client.get(conversations,
                             headers={"Authorization": f"Bearer {FIRM_C_TOKEN}"})).status == 200
    assert (await client.get(conversations,
                             headers={"Authorization": "Bearer demo-token-firm-b"})).status == 401
    nodes = _nodes(client)
    assert "inbound/sessions/firm-c" in nodes and "outbound/limiters/109999999999999" in nodes
    # firm-b had nothing in flight: its actors retire at the next look.
    await until(lambda: not {"inbound/sessions/firm-b", "outbound/breakers/107611463353033",
                              "outbound/limiters/107611463353033"} & set(_nodes(client)))


def _drop_templates_of(text: str, tenant: str) -> str:
    blocks = text.split("[[templates]]")
    kept = [blocks[0]] + [b for b in blocks[1:] if f'tenant = "{tenant}"' not in b]
    return "[[templates]]".join(kept)


async def test_a_rotated_token_stops_at_once_and_its_open_feed_is_closed(
    aiohttp_client, secrets
) -> None:
    client = await _client(aiohttp_client, secrets)
    old_hash = hashlib.sha256(b"demo-token-firm-a").hexdigest()
    new_token = "rotated-token-firm-a"
    rotated = BASE.replace(old_hash, hashlib.sha256(new_token.encode()).hexdigest())
    feed_a = await client.ws_connect("/ws", headers={"Authorization": "Bearer demo-token-firm-a"})
    feed_b = await client.ws_connect("/ws", headers={"Authorization": "Bearer demo-token-firm-b"})

    status, body = await _put(client, rotated)

    assert status == 200, body
    closed = await feed_a.receive(timeout=5)
    assert feed_a.close_code == 4001, closed
    assert not feed_b.closed  # another tenant's feed goes on
    conversations = "/api/v1/conversations/6281234567890/messages"
    assert (await client.get(conversations,
                             headers={"Authorization": "Bearer demo-token-firm-a"})).status == 401
    assert (await client.get(conversations,
                             headers={"Authorization": f"Bearer {new_token}"})).status == 200
    await feed_b.close()


async def test_a_template_added_live_can_be_sent_at_once_and_a_removed_one_is_refused(
    aiohttp_client, secrets
) -> None:
    client = await _client(aiohttp_client, secrets)
    firm_a = {"Authorization": "Bearer demo-token-firm-a"}

    async def send(name: str) -> tuple[int, str | None]:
        response = await client.post("/api/v1/messages", headers=firm_a, json={
            "phone_number_id": "106540352242922", "to": "6281234500777", "type": "template",
            "template": {"name": name, "language": "id", "params": ["Budi"]}})
        body = await response.json()
        return response.status, body.get("error", {}).get("code")

    consent = await client.put("/api/v1/contacts/6281234500777/consent", headers=firm_a,
                               json={"granted": True, "source": "signed engagement letter"})
    assert consent.status == 200

    added = BASE + ('\n[[templates]]\ntenant = "firm-a"\nname = "hearing_notice"\nlanguage = "id"\n'
                    'category = "utility"\nstatus = "approved"\nparams = 1\n')
    unknown = await send("hearing_notice")
    assert unknown[0] == 422  # not in the config yet

    assert (await _put(client, added))[0] == 200
    assert (await send("hearing_notice"))[0] == 202

    assert (await _put(client, BASE))[0] == 200
    assert await send("hearing_notice") == unknown


async def test_a_limiter_shows_a_new_tier_without_waiting_for_a_send(
    aiohttp_client, secrets
) -> None:
    client = await _client(aiohttp_client, secrets)
    lowered = BASE.replace('tier = "2K"', 'tier = "250"', 1)

    assert (await _put(client, lowered))[0] == 200

    limiter = "outbound/limiters/106540352242922"
    await until(lambda: _nodes(client)[limiter].info.get("tier") == "250", timeout=10)
    assert _nodes(client)[limiter].info["tier_limit"] == 250
