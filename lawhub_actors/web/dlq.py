"""The dead-letter queue, for operators (admin token).

``GET /admin/dlq`` lists what could not be sent (newest first, with Meta's
error); ``POST /admin/dlq/{id}/replay`` runs every check again — consent,
window, template, as for a new send — and, if they pass, puts the message
back to ``pending`` for its worker; ``DELETE /admin/dlq/{id}`` drops it for
good. Every move is audited with the admin token's fingerprint.
"""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import web

from lawhub_actors.adapters import outbound_store
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.accept import SendRefused
from lawhub_actors.core.templates import TemplateRefusal
from lawhub_actors.sending import recheck
from lawhub_actors.web.auth import admin_refusal, fingerprint
from lawhub_actors.web.errors import error_response
from lawhub_actors.web.keys import ADMIN_TOKEN, RUNTIME, STORE
from lawhub_actors.web.messages import REFUSAL_STATUS


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/dlq", listing)
    app.router.add_post("/admin/dlq/{id}/replay", replay)
    app.router.add_delete("/admin/dlq/{id}", drop)


async def listing(request: web.Request) -> web.Response:
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    entries = await asyncio.to_thread(request.app[STORE].read_tx, outbound_store.dead_letters)
    return web.json_response({"entries": entries})


class _NotDead(Exception):
    pass


async def replay(request: web.Request) -> web.Response:
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    message_id, who = request.match_info["id"], fingerprint(request)
    settings = request.app[RUNTIME].settings

    def back_to_pending(tx: Tx) -> str:
        message = outbound_store.load(tx, message_id)
        if message is None or not outbound_store.undead(tx, message_id):
            raise _NotDead
        recheck(tx, settings, message)
        outbound_store.set_state(tx, message_id, "pending")
        outbound_store.reset_attempts(tx, message_id)
        tx.audit(f"dlq:{uuid.uuid4().hex}", message.tenant, "dlq_replay", message_id,
                 {"by": who})
        tx.emit(message.tenant, "outbound.accepted", {
            "id": message_id, "to": message.recipient, "type": message.content["type"],
            "phone_number_id": message.phone_number_id, "automatic": message.automatic,
            "replayed": True,
        })
        return message.recipient

    try:
        written = await asyncio.to_thread(request.app[STORE].write, back_to_pending)
    except _NotDead:
        return error_response(404, "not_found", "no such message in the dead-letter queue")
    except (SendRefused, TemplateRefusal) as refused:
        return error_response(REFUSAL_STATUS.get(refused.code, 422), refused.code,
                              refused.message)
    request.app[RUNTIME].send(message_id, written.value)
    return web.json_response({"id": message_id, "status": "pending"}, status=202)


async def drop(request: web.Request) -> web.Response:
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    message_id, who = request.match_info["id"], fingerprint(request)

    def discard(tx: Tx) -> bool:
        message = outbound_store.load(tx, message_id)
        if message is None or not outbound_store.undead(tx, message_id):
            return False
        outbound_store.set_state(tx, message_id, "discarded")
        tx.audit(f"dlq:{uuid.uuid4().hex}", message.tenant, "dlq_delete", message_id,
                 {"by": who})
        return True

    if not (await asyncio.to_thread(request.app[STORE].write, discard)).value:
        return error_response(404, "not_found", "no such message in the dead-letter queue")
    return web.Response(status=204)
