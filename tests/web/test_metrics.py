"""GET /metrics: Prometheus text that prometheus_client's own parser reads,
with the series operators watch; admin token only."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lawhub_actors.simulator import traffic
from lawhub_actors.web.app import build_app
from tests.conftest import ADMIN_TOKEN, SHIPPED_CONFIG
from tests.e2e.gateway import Feed, auth, post

NUMBER_A = "106540352242922"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SERIES = {
    "lawhub_webhook_requests", "lawhub_webhook_ack_seconds", "lawhub_journal_lag_entries",
    "lawhub_mailbox_depth", "lawhub_actor_restarts", "lawhub_supervisor_restarts_in_period",
    "lawhub_breaker_state", "lawhub_limiter_permits", "lawhub_limiter_wait_seconds",
    "lawhub_outbound_messages", "lawhub_dlq_size", "lawhub_feed_clients",
    "lawhub_config_reloads", "lawhub_journal_lag_seconds", "lawhub_inbound_in_flight",
    "lawhub_inbound_in_flight_bytes", "lawhub_inbound_left_behind", "lawhub_inbound_stalled",
}


@pytest.fixture
async def client(aiohttp_client, settings, secrets):
    return await aiohttp_client(build_app(settings, secrets, on_give_up=lambda reason: None))


async def scrape(client) -> dict:
    response = await client.get("/metrics", headers=ADMIN)
    assert response.status == 200
    assert response.content_type == "text/plain"
    return {family.name: family for family in text_string_to_metric_families(await response.text())}


async def test_metrics_parse_and_carry_every_series_operators_watch(client) -> None:
    change = traffic.text_message(NUMBER_A, "6281234500601", "halo")
    assert await post(client, traffic.envelope(change)) == 200
    bad = await client.post("/webhook", data=b"{}", headers={"Content-Type": "application/json"})
    assert bad.status == 401
    feed = await Feed.open(client, "firm-a")
    families = await scrape(client)
    assert set(families) >= SERIES
    answers = {s.labels["status"]: s.value for s in families["lawhub_webhook_requests"].samples
               if s.name == "lawhub_webhook_requests_total"}
    assert answers == {"200": 1.0, "401": 1.0}
    count = next(s.value for s in families["lawhub_webhook_ack_seconds"].samples
                 if s.name == "lawhub_webhook_ack_seconds_count")
    assert count == 2.0
    assert [s.value for s in families["lawhub_feed_clients"].samples] == [1.0]
    depths = {s.labels["path"] for s in families["lawhub_mailbox_depth"].samples}
    assert {"root", "inbound/dispatcher", f"outbound/breakers/{NUMBER_A}"} <= depths
    closed = {(s.labels["phone_number_id"], s.labels["state"]): s.value
              for s in families["lawhub_breaker_state"].samples}
    assert closed[(NUMBER_A, "closed")] == 1.0 and closed[(NUMBER_A, "open")] == 0.0
    nodes = {s.labels.get("node") for family in families.values() for s in family.samples}
    assert nodes == {"embedded"}  # every sample names its node
    await feed.close()


async def test_metrics_need_the_admin_token(client) -> None:
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers=auth("firm-a"))).status == 401


async def test_config_reloads_are_counted_by_outcome(client) -> None:
    text = SHIPPED_CONFIG.read_text()
    for body in (text, text + "\n[breaker]\nfailure_threshold = 0\n",
                 text + "\n[breaker]\nfailure_threshold = 7\n"):
        await (await client.put("/admin/config", data=body.encode(), headers=ADMIN)).release()
    reloads = {(s.labels["via"], s.labels["result"]): s.value
               for s in (await scrape(client))["lawhub_config_reloads"].samples
               if s.name == "lawhub_config_reloads_total"}
    assert reloads == {("api", "unchanged"): 1.0, ("api", "refused"): 1.0,
                       ("api", "applied"): 1.0}
