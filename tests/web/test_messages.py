"""POST /api/v1/messages: every refusal of the accepting checks, in the
contract's order, and client_ref idempotency; GET the message; PUT consent."""

from __future__ import annotations

import asyncio
import time

import pytest

from lawhub_actors.adapters import store_reads
from lawhub_actors.simulator import traffic
from lawhub_actors.web.app import build_app
from lawhub_actors.web.keys import STORE
from tests.e2e.gateway import Feed, auth, post

NUMBER_A, SHARED_A, NUMBER_B = "106540352242922", "106540352242923", "107611463353033"
HOUR = 3600


@pytest.fixture
async def client(aiohttp_client, settings, secrets):
    return await aiohttp_client(build_app(settings, secrets, on_give_up=lambda reason: None))


async def wrote(client, wa_id: str, *, hours_ago: float = 0.0, text: str = "halo") -> None:
    """The customer wrote to firm-a ``hours_ago`` (opening the 24-hour window)."""
    change = traffic.text_message(NUMBER_A, wa_id, text,
                                  timestamp=int(time.time() - hours_ago * HOUR))
    assert await post(client, traffic.envelope(change)) == 200
    feed = await Feed.open(client, "firm-a")
    await feed.until(lambda f: any(x["data"].get("text") == text and x["data"]["customer"] == wa_id
                                   for x in f))
    await feed.close()


async def consent(client, wa_id: str, granted: bool, tenant: str = "firm-a") -> dict:
    response = await client.put(f"/api/v1/contacts/{wa_id}/consent", headers=auth(tenant),
                                json={"granted": granted, "source": "signed engagement letter"})
    assert response.status == 200
    return await response.json()


def text(to: str, body: str = "Selamat siang, berkas sudah kami terima.", **extra) -> dict:
    return {"phone_number_id": NUMBER_A, "to": to, "type": "text", "text": {"body": body}, **extra}


def template(to: str, name: str = "appointment_reminder", language: str = "id",
             params: list[str] | None = None, **extra) -> dict:
    return {"phone_number_id": NUMBER_A, "to": to, "type": "template",
            "template": {"name": name, "language": language,
                         "params": ["Ibu Siti", "Senin 10.00"] if params is None else params},
            **extra}


async def send(client, body: object, tenant: str = "firm-a") -> tuple[int, dict]:
    response = await client.post("/api/v1/messages", json=body, headers=auth(tenant))
    return response.status, await response.json()


async def test_a_reply_inside_the_window_is_accepted_pending_and_fed(client) -> None:
    await wrote(client, "6281234500201")
    feed = await Feed.open(client, "firm-a")
    status, answer = await send(client, text("6281234500201"))
    assert (status, answer["status"]) == (202, "pending")
    await feed.until(lambda f: any(x["type"] == "outbound.accepted" for x in f))
    accepted = feed.of_type("outbound.accepted")[0]["data"]
    assert (accepted["id"], accepted["to"], accepted["automatic"]) == (
        answer["id"], "6281234500201", False)
    got = await (await client.get(f"/api/v1/messages/{answer['id']}", headers=auth("firm-a"))).json()
    assert (got["status"], got["to"], got["history"][0]["status"]) == (
        "pending", "6281234500201", "accepted")
    assert (await client.get(f"/api/v1/messages/{answer['id']}", headers=auth("firm-b"))).status == 404
    await feed.close()


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"phone_number_id": NUMBER_A, "to": "6281234500299", "type": "text"}, 422, "invalid_body"),
    ({"phone_number_id": NUMBER_A, "to": "6281234500299", "type": "text", "text": {"body": ""}},
     422, "invalid_body"),
    ({"phone_number_id": NUMBER_A, "to": "6281234500299", "type": "video", "text": {"body": "x"}},
     422, "invalid_body"),
    ({**text("6281234500299"), "template": {"name": "x", "language": "id"}}, 422, "invalid_body"),
    ("not an object", 422, "invalid_body"),
    (text("6281234500299", phone_number_id=NUMBER_B), 403, "forbidden_number"),
    (template("6281234500299", name="no_such_template"), 422, "unknown_template"),
    (template("6281234500299", language="fr"), 422, "unknown_template"),
    (template("6281234500299", name="case_update", params=["x"]), 422, "template_not_approved"),
    (template("6281234500299", params=["only one"]), 422, "wrong_param_count"),
    (template("6281234500299", params=["Ibu Siti", "Senin\n10.00"]), 422, "invalid_param"),
    (template("6281234500299", params=["Ibu Siti", "   "]), 422, "invalid_param"),
    (text("62812"), 422, "invalid_body"),  # too short for any E.164 number
    (text("+6281234500299"), 422, "invalid_body"),
    (text("../../x"), 422, "invalid_body"),
    (text("1" * 5000), 422, "invalid_body"),
    (text("\U0001f600"), 422, "invalid_body"),
    (text("\u0666\u0662\u0668\u0661\u0662\u0663\u0664"), 422, "invalid_body"),  # Arabic digits
    ({**text("6281234500299"), "client_ref": 7}, 422, "invalid_body"),  # strict: not a string
])
async def test_bad_requests_are_refused_with_the_contracts_status_and_code(
    client, body, status, code
) -> None:
    got_status, answer = await send(client, body)
    assert (got_status, answer["error"]["code"]) == (status, code)
    assert "Senin" not in answer["error"]["message"]  # parameters are never echoed


async def test_an_opted_out_customer_is_refused_with_409_even_inside_the_window(client) -> None:
    await wrote(client, "6281234500202")
    await wrote(client, "6281234500202", text="BERHENTI")
    status, answer = await send(client, text("6281234500202"))
    assert (status, answer["error"]["code"]) == (409, "opted_out")
    status, answer = await send(client, template("6281234500202"))
    assert (status, answer["error"]["code"]) == (409, "opted_out")


async def test_outside_the_window_a_template_needs_consent_and_text_is_refused(client) -> None:
    await wrote(client, "6281234500203", hours_ago=25)
    status, answer = await send(client, template("6281234500203"))
    assert (status, answer["error"]["code"]) == (403, "no_consent")
    assert (await consent(client, "6281234500203", True))["consent"] == "granted"
    status, answer = await send(client, text("6281234500203"))
    assert (status, answer["error"]["code"]) == (422, "outside_window")
    status, answer = await send(client, template("6281234500203"))
    assert status == 202


async def test_business_initiated_templates_stop_at_the_numbers_tier(client) -> None:
    """firm-a's shared number is on the 250 tier: the 251st new user is refused,
    a user already counted is not counted again."""
    store = client.app[STORE]

    def grant(tx, n: int) -> None:
        for i in range(n):
            tx.add_lead("firm-a", f"62899{i:07d}", None)
            tx.set_consent("firm-a", f"62899{i:07d}", "granted")

    await asyncio.to_thread(store.write, lambda tx: grant(tx, 251))
    for i in range(250):
        status, _ = await send(client, template(f"62899{i:07d}", phone_number_id=SHARED_A))
        assert status == 202, i
    status, answer = await send(client, template("628990000250", phone_number_id=SHARED_A))
    assert (status, answer["error"]["code"]) == (429, "tier_limit")
    status, _ = await send(client, template("628990000007", phone_number_id=SHARED_A))
    assert status == 202


async def test_ten_concurrent_identical_requests_with_a_client_ref_make_one_message(client) -> None:
    await wrote(client, "6281234500204")
    body = text("6281234500204", client_ref="dashboard-7f3a")
    answers = await asyncio.gather(*(send(client, body) for _ in range(10)))
    assert {status for status, _ in answers} == {202}
    assert len({answer["id"] for _, answer in answers}) == 1
    store = client.app[STORE]
    assert await asyncio.to_thread(store.read, store_reads.count, "outbound", tenant="firm-a") == 1


async def test_consent_changes_through_the_api_are_audited_with_their_source_once_each(
        client) -> None:
    assert (await consent(client, "6281234500205", True))["consent"] == "granted"
    assert (await consent(client, "6281234500205", False))["consent"] == "opted_out"
    assert (await consent(client, "6281234500205", False))["consent"] == "opted_out"  # no change
    store = client.app[STORE]
    audited = await asyncio.to_thread(
        store.read, store_reads.count, "audit", tenant="firm-a", kind="consent")
    assert audited == 2
    response = await client.put("/api/v1/contacts/6281234500205/consent", headers=auth("firm-a"),
                                json={"granted": "yes"})
    assert response.status == 422


async def test_sends_need_a_tenant_token(client) -> None:
    assert (await client.post("/api/v1/messages", json=text("62812"))).status == 401
    assert (await client.post("/api/v1/messages", json=text("62812"),
                              headers={"Authorization": "Bearer nope"})).status == 401
