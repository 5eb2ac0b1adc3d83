"""Lawyers' sends and consent changes (tenant token).

``POST /api/v1/messages`` checks, in the contract's order, then stores the
message ``pending`` and answers 202 — sending happens later, at Meta's
pace, by the outbound workers:

1. the body (422 ``invalid_body``) and that the number is the tenant's
   (403 ``forbidden_number``);
2. the number's circuit breaker: open → 503 ``circuit_open`` with
   ``Retry-After`` (seconds until it half-opens);
3. the template (422: ``unknown_template``, ``template_not_approved``,
   ``wrong_param_count``, ``invalid_param``);
4. consent, the 24-hour window and the tier (``core.accept``: 409
   ``opted_out``, 403 ``no_consent``, 422 ``outside_window``, 429
   ``tier_limit``) — decided inside the store transaction that records
   the message, so concurrent requests cannot overrun a tier;
5. ``client_ref``: a repeat of a request returns the first one's id.
"""

from __future__ import annotations

import asyncio
import math
import uuid

from aiohttp import web
from pydantic import ValidationError

from lawhub_actors.actors.outbound import CircuitState, breaker_path
from lawhub_actors.adapters import outbound_store
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core import consent
from lawhub_actors.core.accept import SendRefused
from lawhub_actors.core.templates import TemplateRefusal
from lawhub_actors.sending import admit, check_content, number_of
from lawhub_actors.web.api import customer_param, request_tenant
from lawhub_actors.web.auth import tenant_refusal
from lawhub_actors.web.bodies import json_body
from lawhub_actors.web.errors import error_response
from lawhub_actors.web.keys import BRIDGE, RUNTIME, STORE
from lawhub_actors.web.schemas import ConsentRequest, SendRequest

REFUSAL_STATUS = {
    "forbidden_number": 403,
    "no_consent": 403,
    "opted_out": 409,
    "outside_window": 422,
    "unknown_template": 422,
    "template_not_approved": 422,
    "wrong_param_count": 422,
    "invalid_param": 422,
    "tier_limit": 429,
}
"""The one table from a refusal's code to its HTTP status."""
BREAKER_ASK_S = 2.0


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/messages", send)
    app.router.add_get("/api/v1/messages/{id}", message)
    app.router.add_put("/api/v1/contacts/{wa_id}/consent", set_consent)


def _refusal(code: str, message: str) -> web.Response:
    return error_response(REFUSAL_STATUS[code], code, message)


def _invalid(error: ValidationError | None) -> web.Response:
    if error is None:
        return error_response(422, "invalid_body", "the body is not a JSON object")
    problems = "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()
    )
    return error_response(422, "invalid_body", problems)


async def send(request: web.Request) -> web.Response:
    tenant = request_tenant(request)
    if tenant is None:
        return tenant_refusal()
    try:
        body = SendRequest.model_validate(await json_body(request))
    except ValidationError as error:
        return _invalid(error)
    settings = request.app[RUNTIME].settings
    number = number_of(settings, tenant, body.phone_number_id)
    if number is None:
        return _refusal("forbidden_number", "that phone number is not one of the tenant's")
    circuit, retry_after = await request.app[BRIDGE].ask(
        breaker_path(number.id), CircuitState(), timeout=BREAKER_ASK_S
    )
    if circuit == "open":
        return error_response(
            503, "circuit_open", "sends from this number are paused after repeated failures",
            **{"Retry-After": str(max(1, math.ceil(retry_after)))},
        )
    try:  # the template first (no store needed), as the contract orders the checks
        check_content(settings, tenant, body.content())
    except TemplateRefusal as refused:
        return _refusal(refused.code, refused.message)

    def accept(tx: Tx) -> tuple[str, bool]:
        return admit(tx, settings, tenant, number, recipient=body.to, content=body.content(),
                     client_ref=body.client_ref)

    store = request.app[STORE]
    try:
        written = await asyncio.to_thread(store.write, accept)
    except (SendRefused, TemplateRefusal) as refused:
        return _refusal(refused.code, refused.message)
    message_id, new = written.value
    if new:
        request.app[RUNTIME].send(message_id, body.to)
    return web.json_response({"id": message_id, "status": "pending"}, status=202)


async def message(request: web.Request) -> web.Response:
    tenant = request_tenant(request)
    if tenant is None:
        return tenant_refusal()
    message_id = request.match_info["id"]
    found = await asyncio.to_thread(
        request.app[STORE].read_tx, outbound_store.describe, tenant, message_id
    )
    if found is None:
        return error_response(404, "not_found", "no such message")
    return web.json_response(found)


async def set_consent(request: web.Request) -> web.Response:
    """Record a consent given or withdrawn outside WhatsApp (a signed form,
    a call), audited with its source."""
    tenant = request_tenant(request)
    if tenant is None:
        return tenant_refusal()
    try:
        body = ConsentRequest.model_validate(await json_body(request))
    except ValidationError as error:
        return _invalid(error)
    wa_id = customer_param(request)
    change = consent.ConsentChange.OPT_IN if body.granted else consent.ConsentChange.OPT_OUT

    def record(tx: Tx) -> str:
        customer = tx.customer(tenant, wa_id)
        if customer is None:
            tx.add_lead(tenant, wa_id, None)
        current = consent.ConsentState(customer.consent) if customer else (
            consent.ConsentState.UNKNOWN)
        new, changed = consent.apply(current, change)
        tx.audit(f"consent-api:{uuid.uuid4().hex}", tenant, "consent", tx.ref(tenant, wa_id), {
            "from": current.value, "to": new.value, "via": "api", "source": body.source,
        })
        if changed:
            tx.set_consent(tenant, wa_id, new.value)
        return new.value

    written = await asyncio.to_thread(request.app[STORE].write, record)
    return web.json_response({"wa_id": wa_id, "consent": written.value})
