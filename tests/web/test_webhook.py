"""GET /webhook and POST /webhook: every status code of CONTRACT.md."""

from __future__ import annotations

import sqlite3

import pytest

from lawhub_actors.adapters.databases import JOURNAL_FILE
from lawhub_actors.core.limits import MAX_DEPTH
from lawhub_actors.core.signature import sign
from lawhub_actors.simulator import traffic
from lawhub_actors.web.app import build_app
from tests.conftest import APP_SECRET, VERIFY_TOKEN

SECRET = APP_SECRET.encode()


@pytest.fixture
async def client(aiohttp_client, settings, secrets):
    return await aiohttp_client(build_app(settings, secrets, on_give_up=lambda reason: None))


def _post_headers(body: bytes, **extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(SECRET, body), **extra}


def _message(settings) -> bytes:
    number = settings.tenants[0].phone_numbers[0].id
    return traffic.encode(traffic.envelope(traffic.text_message(number, "6281234500001", "Halo")))


async def test_handshake_echoes_the_challenge_as_plain_text(client) -> None:
    response = await client.get("/webhook", params={
        "hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444",
    })
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == "1158201444"


@pytest.mark.parametrize("params", [
    {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
    {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
    {},
])
async def test_handshake_refuses_a_wrong_token_or_mode(client, params) -> None:
    assert (await client.get("/webhook", params=params)).status == 403


async def test_a_signed_post_is_journaled_before_it_is_acknowledged(client, settings) -> None:
    body = _message(settings)
    response = await client.post("/webhook", data=body, headers=_post_headers(body))
    assert response.status == 200
    from lawhub_actors.web.keys import JOURNAL

    entries = client.app[JOURNAL].read_after(0)
    assert [entry.body for entry in entries] == [body]


@pytest.mark.parametrize("signature", [
    None,                                   # missing
    "sha256=not-hex",                       # malformed
    "sha1=" + "0" * 40,                     # wrong scheme
    "sha256=" + "0" * 64,                   # wrong
])
async def test_a_bad_signature_is_refused_and_nothing_is_stored(client, settings, signature) -> None:
    body = _message(settings)
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    response = await client.post("/webhook", data=body, headers=headers)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "bad_signature"
    from lawhub_actors.web.keys import JOURNAL

    assert client.app[JOURNAL].read_after(0) == []


async def test_a_tampered_body_is_refused(client, settings) -> None:
    body = _message(settings)
    headers = _post_headers(body)
    tampered = body.replace(b"Halo", b"Hala")
    assert (await client.post("/webhook", data=tampered, headers=headers)).status == 401


async def test_a_body_over_the_limit_is_refused_with_413(client, settings) -> None:
    body = b'{"object":"whatsapp_business_account","pad":"' + b"x" * (4 * 1024 * 1024) + b'"}'
    response = await client.post("/webhook", data=body, headers=_post_headers(body))
    assert response.status == 413


@pytest.mark.parametrize(("body", "code"), [
    (b"", "not_json"),
    (b"{not json", "not_json"),
    (b'{"object":"page","entry":[]}', "wrong_object"),
    (b'["whatsapp_business_account"]', "wrong_object"),
])
async def test_non_json_or_a_wrong_object_is_refused_with_400(client, body, code) -> None:
    response = await client.post("/webhook", data=body, headers=_post_headers(body))
    assert response.status == 400
    assert (await response.json())["error"]["code"] == code


async def test_non_json_content_is_refused_with_415(client, settings) -> None:
    body = _message(settings)
    headers = _post_headers(body, **{"Content-Type": "text/plain"})
    assert (await client.post("/webhook", data=body, headers=headers)).status == 415


async def test_a_journal_that_cannot_write_answers_503_and_stores_nothing(
    client, settings, secrets
) -> None:
    from lawhub_actors.web.keys import JOURNAL

    journal = client.app[JOURNAL]
    blocker = sqlite3.connect(secrets.data_dir / JOURNAL_FILE, isolation_level=None, timeout=0.1)
    journal._writer.execute("PRAGMA busy_timeout=50")  # fail fast instead of waiting 5 s
    body = _message(settings)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        response = await client.post("/webhook", data=body, headers=_post_headers(body))
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "journal_unavailable"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert journal.read_after(0) == []
    assert (await client.post("/webhook", data=body, headers=_post_headers(body))).status == 200


def _nested_waba_body(depth: int) -> bytes:
    """A WABA envelope whose ``entry`` nests arrays to ``depth`` levels in all (the root is 1)."""
    inner = depth - 1
    return (b'{"object":"whatsapp_business_account","entry":' + b"[" * inner + b"]" * inner + b"}")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 1_000, 100_000])
async def test_a_body_nested_past_metas_shapes_is_refused_before_the_journal(
    client, depth
) -> None:
    from lawhub_actors.web.keys import JOURNAL

    body = _nested_waba_body(depth)
    response = await client.post("/webhook", data=body, headers=_post_headers(body))
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "too_deep"
    assert client.app[JOURNAL].read_after(0) == []


async def test_a_body_nested_up_to_the_limit_is_journaled(client) -> None:
    from lawhub_actors.web.keys import JOURNAL

    body = _nested_waba_body(MAX_DEPTH)
    response = await client.post("/webhook", data=body, headers=_post_headers(body))
    assert response.status == 200
    assert [entry.body for entry in client.app[JOURNAL].read_after(0)] == [body]
