"""POST /admin/faults: a rehearsed crash restarts the actor and loses nothing;
refused unless the config allows it; admin token only."""

from __future__ import annotations

import asyncio

import pytest

from lawhub_actors.simulator import traffic
from lawhub_actors.web.app import build_app
from tests.conftest import ADMIN_TOKEN, REPO
from tests.e2e.gateway import Feed, auth, post

NUMBER_A = "106540352242922"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ALLOWED = (REPO / "config" / "lawhub.toml").read_text().replace(
    "allow_fault_injection = false", "allow_fault_injection = true")


def _node_or_none(tree: dict, path: str) -> dict | None:
    if tree["path"] == path:
        return tree
    for child in tree["children"]:
        if (found := _node_or_none(child, path)) is not None:
            return found
    return None


@pytest.mark.parametrize("path", ["inbound/dispatcher", "inbound/sessions/firm-a/0"])
async def test_a_crash_rehearsed_under_load_is_restarted_and_loses_nothing(
    aiohttp_client, make_settings, secrets, path
) -> None:
    client = await aiohttp_client(build_app(make_settings(ALLOWED), secrets,
                                            on_give_up=lambda r: None))
    feed = await Feed.open(client, "firm-a")
    customers = [f"628123456{i:04d}" for i in range(40)]
    first = [traffic.text_message(NUMBER_A, c, f"satu {c}") for c in customers]
    assert {await post(client, traffic.envelope(m)) for m in first} == {200}
    response = await client.post("/admin/faults", headers=ADMIN,
                                 json={"path": path, "kind": "crash"})
    assert response.status == 202
    second = [traffic.text_message(NUMBER_A, c, f"dua {c}") for c in customers]
    assert set(await asyncio.gather(*(post(client, traffic.envelope(m)) for m in second))) == {200}
    await feed.until(lambda f: len(feed.of_type("message.received")) == 80, timeout=20)
    texts = [x["data"]["text"] for x in feed.of_type("message.received")]
    assert sorted(texts) == sorted([f"satu {c}" for c in customers] + [f"dua {c}" for c in customers])
    tree = await (await client.get("/admin/tree", headers=ADMIN)).json()
    assert _node_or_none(tree, path)["restarts"]["total"] == 1
    await feed.close()


async def test_fault_injection_is_refused_unless_allowed_and_needs_the_admin_token(
    aiohttp_client, settings, make_settings, secrets
) -> None:
    body = {"path": "inbound/dispatcher", "kind": "crash"}
    off = await aiohttp_client(build_app(settings, secrets, on_give_up=lambda r: None))
    response = await off.post("/admin/faults", headers=ADMIN, json=body)
    assert (response.status, (await response.json())["error"]["code"]) == (
        403, "fault_injection_disabled")
    assert (await off.post("/admin/faults", headers=auth("firm-a"), json=body)).status == 401
    await off.close()
    on = await aiohttp_client(build_app(make_settings(ALLOWED), secrets,
                                        on_give_up=lambda r: None))
    assert (await on.post("/admin/faults", headers=ADMIN,
                          json={"path": "no/such", "kind": "crash"})).status == 404
    assert (await on.post("/admin/faults", headers=ADMIN,
                          json={"path": "inbound/dispatcher", "kind": "hang"})).status == 422
    deep = b"[" * 100_000 + b"]" * 100_000  # a 422, not the parser's RecursionError as a 500
    assert (await on.post("/admin/faults", headers={**ADMIN, "Content-Type": "application/json"},
                          data=deep)).status == 422
