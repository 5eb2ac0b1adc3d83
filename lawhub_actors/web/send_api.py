"""Lawyers' sends and consent changes (tenant token).

``POST /api/v1/messages`` checks the body, hands the send to its admission
(:func:`lawhub_actors.usecases.sends.admit_send`), which checks the rest in
the contract's order and stores the message ``pending``, and answers 202 —
sending happens later, at Meta's pace, by the outbound workers. What each
refusal is in HTTP:

1. the body (422 ``invalid_body``); the number is not the tenant's
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

from lawhub_actors.adapters import outbound_store
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core import consent
from lawhub_actors.core.accept import SendRefused
from lawhub_actors.core.templates import TemplateRefusal
from lawhub_actors.usecases.consent import change_consent
from lawhub_actors.usecases.sends import CircuitOpen, SendOrder
from lawhub_actors.web.api import customer_param, request_tenant
from lawhub_actors.web.auth import tenant_refusal
from lawhub_actors.web.bodies import json_body
from lawhub_actors.web.errors import error_response
from lawhub_actors.web.keys import RUNTIME, STORE
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
    runtime = request.app[RUNTIME]
    order = SendOrder(tenant, body.phone_number_id, body.to, body.content(), body.client_ref)
    try:
        message_id, new = await asyncio.to_thread(runtime.admit, order)
    except CircuitOpen as open_:
        return error_response(
            503, "circuit_open", str(open_),
            **{"Retry-After": str(max(1, math.ceil(open_.retry_after_s)))},
        )
    except (SendRefused, TemplateRefusal) as refused:
        return _refusal(refused.code, refused.message)
    if new:
        runtime.send(tenant, message_id, body.to)
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
        return change_consent(tx, tenant, wa_id, change, source=f"consent-api:{uuid.uuid4().hex}",
                              via="api", note=body.source).value

    written = await asyncio.to_thread(request.app[STORE].write, record)
    return web.json_response({"wa_id": wa_id, "consent": written.value})
