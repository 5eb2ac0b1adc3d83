"""Hostile or broken values in queries, paths and bodies get a clean 4xx with
the contract's error shape, never a 5xx, and change nothing."""

from __future__ import annotations

import pytest

from lawhub_actors.adapters import store_reads
from lawhub_actors.web.app import build_app
from lawhub_actors.web.keys import STORE
from tests.e2e.gateway import auth

CUSTOMER = "6281234500301"
ODD_NUMBERS = ["\u00b2", "\u0661\u0662", "\uff11", " 1", "+5", "1_0", "-1", "1e3", "0x10",
               str(2**63), "9" * 400, "NaN", "1.0", "%00"]
"""Every one of them: what Python's ``isdigit`` or ``int`` would take, or a
number no SQLite integer holds."""
BAD_CUSTOMERS = ["x" * 5000, "\U0001f600", "62812", "+6281234500301", "US.", "us.abc",
                 "6281234500301;DROP", "\u0666\u0662\u0668\u0661\u0662\u0663\u0664"]


@pytest.fixture
async def client(aiohttp_client, settings, secrets):
    return await aiohttp_client(build_app(settings, secrets, on_give_up=lambda reason: None))


async def _refused(response, status: int = 422) -> dict:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return body["error"]


@pytest.mark.parametrize("name", ["limit", "before"])
async def test_conversation_paging_refuses_every_odd_number_with_422(client, name) -> None:
    url = f"/api/v1/conversations/{CUSTOMER}/messages"
    for raw in ODD_NUMBERS:
        response = await client.get(url, params={name: raw}, headers=auth("firm-a"))
        assert (await _refused(response))["code"] == "invalid_parameter", raw
    ok = await client.get(url, params={name: "5"}, headers=auth("firm-a"))
    assert ok.status == 200


async def test_the_feed_refuses_an_odd_since_before_upgrading(client) -> None:
    for raw in ODD_NUMBERS:
        response = await client.get("/ws", params={"since": raw}, headers=auth("firm-a"))
        assert (await _refused(response))["code"] == "invalid_parameter", raw


@pytest.mark.parametrize("customer", BAD_CUSTOMERS)
async def test_a_path_that_names_no_customer_is_refused(client, customer) -> None:
    for response in (
        await client.get(f"/api/v1/conversations/{customer}/messages", headers=auth("firm-a")),
        await client.put(f"/api/v1/contacts/{customer}/consent", headers=auth("firm-a"),
                         json={"granted": True, "source": "signed engagement letter"}),
    ):
        assert (await _refused(response))["code"] == "invalid_parameter"
    assert client.app[STORE].read(store_reads.count, "audit") == 0


async def test_a_traversal_in_the_path_reaches_no_customer(client) -> None:
    response = await client.put("/api/v1/contacts/..%2F..%2Fx/consent", headers=auth("firm-a"),
                                json={"granted": True, "source": "form"})
    assert response.status in (404, 422)
    assert client.app[STORE].read(store_reads.count, "audit") == 0


@pytest.mark.parametrize("body", [
    {"granted": "yes", "source": "form"},
    {"granted": 1, "source": "form"},
    {"granted": "true", "source": "form"},
    {"granted": True, "source": ""},
    {"granted": True, "source": "x" * 201},
    {"granted": True, "source": "form\nforged log line"},
    {"granted": True, "source": "form", "extra": 1},
    {"granted": True},
])
async def test_consent_takes_a_strict_boolean_and_a_bounded_one_line_source(client, body) -> None:
    response = await client.put(f"/api/v1/contacts/{CUSTOMER}/consent", headers=auth("firm-a"),
                                json=body)
    assert (await _refused(response))["code"] == "invalid_body"
    assert client.app[STORE].read(store_reads.count, "audit") == 0


async def test_consent_for_a_bsuid_customer_is_taken(client) -> None:
    response = await client.put("/api/v1/contacts/ID.13491208655302741918/consent",
                                headers=auth("firm-a"), json={"granted": True, "source": "form"})
    assert response.status == 200
    assert (await response.json())["consent"] == "granted"


@pytest.mark.parametrize("depth", [40, 100_000])
async def test_a_deeply_nested_body_is_refused_with_422(client, depth) -> None:
    body = b"[" * depth + b"]" * depth
    for method, url in (("POST", "/api/v1/messages"),
                        ("PUT", f"/api/v1/contacts/{CUSTOMER}/consent")):
        response = await client.request(method, url, data=body, headers={
            **auth("firm-a"), "Content-Type": "application/json"})
        assert (await _refused(response))["code"] == "invalid_body"


SWEPT_PARAMS = ("limit", "before", "since", "format", "token", "id", "kind", "tenant")


def _fill(route_path: str, value: str) -> str:
    """``route_path`` with every ``{name}`` (or ``{name:regex}``) replaced by ``value``."""
    import re
    from urllib.parse import quote

    return re.sub(r"\{[^}]+\}", quote(value, safe=""), route_path)


async def test_every_route_answers_odd_paths_and_queries_without_a_5xx(client) -> None:
    """Every route the app has, every method it takes, with each odd value in
    its path and in every query parameter the API knows: never a 5xx."""
    from tests.conftest import ADMIN_TOKEN

    routes = {(route.method, route.resource.canonical)
              for route in client.app.router.routes()
              if route.method in ("GET", "PUT", "POST", "DELETE")
              and route.resource is not None and route.resource.canonical != "/ws"}
    assert len(routes) > 10
    odd = [*ODD_NUMBERS, *BAD_CUSTOMERS]
    headers_by = [auth("firm-a"), {"Authorization": f"Bearer {ADMIN_TOKEN}"}]
    for method, path in sorted(routes):
        for value in odd:
            for headers in headers_by:
                response = await client.request(
                    method, _fill(path, value), headers=headers,
                    params={name: value for name in SWEPT_PARAMS})
                assert response.status < 500, (method, path, value, await response.text())
                response.release()
