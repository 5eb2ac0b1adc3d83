"""The dead-letter queue, for operators (admin token).

``GET /admin/dlq`` lists what could not be sent (newest first, with Meta's
error); ``POST /admin/dlq/{id}/replay`` runs every check again — consent,
window, template, as for a new send — and, if they pass, puts the message
back to ``pending`` for its worker; ``DELETE /admin/dlq/{id}`` drops it for
good. Every move is audited with the admin token's fingerprint.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from lawhub_actors.adapters import outbound_store
from lawhub_actors.core.accept import SendRefused
from lawhub_actors.core.operator_view import masked_number
from lawhub_actors.core.templates import TemplateRefusal
from lawhub_actors.usecases import dead_letters
from lawhub_actors.web.auth import admin_refusal, fingerprint
from lawhub_actors.web.errors import error_response
from lawhub_actors.web.keys import ADMIN_TOKEN, RUNTIME, STORE
from lawhub_actors.web.send_api import REFUSAL_STATUS


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/dlq", listing)
    app.router.add_post("/admin/dlq/{id}/replay", replay)
    app.router.add_delete("/admin/dlq/{id}", drop)


async def listing(request: web.Request) -> web.Response:
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    entries = await asyncio.to_thread(request.app[STORE].read_tx, outbound_store.dead_letters)
    for entry in entries:  # the firm's lawyers see the number (their API); operators do not
        entry["to"] = masked_number(entry["to"])
    return web.json_response({"entries": entries})


async def replay(request: web.Request) -> web.Response:
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    message_id, who = request.match_info["id"], fingerprint(request)
    settings = request.app[RUNTIME].settings
    try:
        written = await asyncio.to_thread(
            request.app[STORE].write,
            lambda tx: dead_letters.replay(tx, settings, message_id, who))
    except dead_letters.NotDead:
        return _not_dead()
    except (SendRefused, TemplateRefusal) as refused:
        return error_response(REFUSAL_STATUS.get(refused.code, 422), refused.code,
                              refused.message)
    tenant, recipient = written.value
    request.app[RUNTIME].send(tenant, message_id, recipient)
    return web.json_response({"id": message_id, "status": "pending"}, status=202)


async def drop(request: web.Request) -> web.Response:
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    message_id, who = request.match_info["id"], fingerprint(request)
    try:
        await asyncio.to_thread(request.app[STORE].write,
                                lambda tx: dead_letters.discard(tx, message_id, who))
    except dead_letters.NotDead:
        return _not_dead()
    return web.Response(status=204)


def _not_dead() -> web.Response:
    return error_response(404, "not_found", "no such message in the dead-letter queue")
