"""Health, readiness and /admin/tree over HTTP, against the live tree."""

from __future__ import annotations

from lawhub_actors.web.app import build_app
from tests.conftest import ADMIN_TOKEN, test_environment


async def _client(aiohttp_client, settings, secrets):
    return await aiohttp_client(build_app(settings, secrets, on_give_up=lambda reason: None))


async def test_healthz_answers_while_the_process_runs(aiohttp_client, settings, secrets) -> None:
    client = await _client(aiohttp_client, settings, secrets)
    response = await client.get("/healthz")
    assert response.status == 200 and await response.json() == {"status": "ok"}


async def test_readyz_is_ready_once_the_tree_runs(aiohttp_client, settings, secrets) -> None:
    client = await _client(aiohttp_client, settings, secrets)
    response = await client.get("/readyz")
    assert response.status == 200 and (await response.json())["status"] == "ready"


async def test_admin_tree_refuses_without_or_with_a_wrong_token(aiohttp_client, settings, secrets) -> None:
    client = await _client(aiohttp_client, settings, secrets)
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": ADMIN_TOKEN}):
        response = await client.get("/admin/tree", headers=headers)
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthorized"


async def test_a_tenant_token_is_not_an_admin_token(aiohttp_client, settings, secrets) -> None:
    client = await _client(aiohttp_client, settings, secrets)
    response = await client.get("/admin/tree", headers={"Authorization": "Bearer demo-token-firm-a"})
    assert response.status == 401


async def test_admin_tree_shows_the_live_tree_with_every_tenant(aiohttp_client, settings, secrets) -> None:
    client = await _client(aiohttp_client, settings, secrets)
    response = await client.get("/admin/tree", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status == 200
    root = await response.json()
    assert root["id"] == "root" and root["state"] == "running"
    assert [child["path"] for child in root["children"]] == ["inbound", "outbound"]
    sessions = root["children"][0]["children"][0]
    numbers = [n.id for t in settings.tenants for n in t.phone_numbers]
    outbound = {child["path"]: child for child in root["children"][1]["children"]}
    assert set(outbound) == {"outbound/limiters", "outbound/breakers", "outbound/workers"}
    assert [c["path"] for c in outbound["outbound/breakers"]["children"]] == [
        f"outbound/breakers/{n}" for n in numbers
    ]
    assert [t["path"] for t in sessions["children"]] == [
        f"inbound/sessions/{tenant.id}" for tenant in settings.tenants
    ]
    for node in (root, sessions):
        assert set(node) >= {"path", "kind", "state", "restarts", "mailbox_depth", "children"}
    assert root["counts"] == {"dlq": 0, "quarantine": 0}
    limiter = outbound["outbound/limiters"]["children"][0]
    assert limiter["info"].items() >= {"tier": "2K", "tier_limit": 2000, "tier_users": 0}.items()


async def test_admin_endpoints_are_off_when_no_admin_token_is_set(aiohttp_client, settings, tmp_path) -> None:
    from lawhub_actors.settings import Secrets

    env = test_environment(tmp_path)
    del env["LAWHUB_ADMIN_TOKEN"]
    secrets = Secrets.from_env(env)
    client = await _client(aiohttp_client, settings, secrets)
    response = await client.get("/admin/tree", headers={"Authorization": "Bearer anything"})
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "admin_disabled"


async def test_admin_config_shows_the_running_config_and_never_a_secret(
    aiohttp_client, settings, secrets
) -> None:
    client = await _client(aiohttp_client, settings, secrets)
    assert (await client.get("/admin/config", headers={"Authorization": "Bearer demo-token-firm-a"})
            ).status == 401
    response = await client.get("/admin/config", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status == 200
    shown = await response.json()
    assert [t["id"] for t in shown["tenants"]] == [t.id for t in settings.tenants]
    assert shown["supervision"]["pools"]["session_shards"] == settings.supervision.pools.session_shards
    text = await response.text()
    for secret in secrets.values():
        assert secret not in text


async def test_admin_cluster_shows_the_embedded_node_holding_every_partition(
        aiohttp_client, settings, secrets) -> None:
    client = await _client(aiohttp_client, settings, secrets)
    assert (await client.get("/admin/cluster")).status == 401
    response = await client.get("/admin/cluster",
                                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status == 200
    view = await response.json()
    assert view["this_node"] == "embedded"
    (node,) = view["nodes"]
    assert node["id"] == "embedded" and node["heartbeat_at"].endswith("Z")
    assert node["partitions"] == list(range(settings.cluster.partitions))
    assert {(p["owner"], p["epoch"], p["lag"]) for p in view["partitions"]} == {("embedded", 1, 0)}
