"""The dashboards' REST API (tenant token) and the live feed endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from lawhub_actors.adapters import store_reads
from lawhub_actors.adapters.store_rows import MediaRecord
from lawhub_actors.core.crypto import CryptoError
from lawhub_actors.core.customers import DESCRIPTION, valid_customer
from lawhub_actors.core.limits import INT64_MAX, non_negative_int
from lawhub_actors.web import feed
from lawhub_actors.web.auth import bearer, tenant_refusal
from lawhub_actors.web.errors import InvalidParameter, error_response
from lawhub_actors.web.keys import FEED, RUNTIME, STORE, TENANT_TOKENS
from lawhub_actors.web.render import iso

MAX_PAGE = 200


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ws", websocket)
    app.router.add_get("/api/v1/conversations/{wa_id}/messages", conversation)
    app.router.add_get("/api/v1/media/{ref}", media)


def request_tenant(request: web.Request, *, allow_query: bool = False) -> str | None:
    token = bearer(request)
    if token is None and allow_query:
        token = request.query.get("token")
    return request.app[TENANT_TOKENS].tenant_for(token)


def _int_param(request: web.Request, name: str, default: int | None) -> int | None:
    """A query parameter of ASCII digits within the store's range (422 else:
    ``²`` is a digit to Python, and 2^63 fits no SQLite integer)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    value = non_negative_int(raw)
    if value is None:
        raise InvalidParameter("invalid_parameter",
                               f"{name} must be an integer from 0 to {INT64_MAX}")
    return value


def customer_param(request: web.Request) -> str:
    """The customer named in the path (422 unless it is one)."""
    customer = request.match_info["wa_id"]
    if not valid_customer(customer):
        raise InvalidParameter("invalid_parameter", f"the customer must be {DESCRIPTION}")
    return customer


async def websocket(request: web.Request) -> web.StreamResponse:
    tenant = request_tenant(request, allow_query=True)
    if tenant is None:
        return tenant_refusal()
    since = _int_param(request, "since", 0) or 0
    hub = request.app[FEED]
    # Before the first await: a revocation or a shutdown from now on reaches it.
    subscriber = hub.subscribe(tenant)
    try:
        ws = feed.feed_socket()
        await ws.prepare(request)
        await feed.stream(ws, subscriber, request.app[STORE], since)
    finally:
        hub.unsubscribe(subscriber)
    return ws


async def conversation(request: web.Request) -> web.Response:
    tenant = request_tenant(request)
    if tenant is None:
        return tenant_refusal()
    limit = _int_param(request, "limit", 50) or 50
    if limit > MAX_PAGE:
        return error_response(422, "invalid_parameter", f"limit must be at most {MAX_PAGE}")
    before = _int_param(request, "before", None)
    messages = await asyncio.to_thread(
        request.app[STORE].read_tx, store_reads.conversation, tenant, customer_param(request),
        limit=limit, before=before,
    )
    return web.json_response({
        "messages": [
            {
                "id": m.id, "position": m.conv_seq, "direction": m.direction, "wamid": m.wamid,
                "type": m.type, "status": m.status, "time": iso(m.created_at),
                "text": m.content.get("text"), "media": _media(m.content.get("media"), m.media),
            }
            for m in messages
        ],
        "next_before": messages[0].conv_seq if messages else None,
    })


def _media(announced: dict[str, Any] | None, checked: MediaRecord | None) -> dict[str, Any] | None:
    """What the webhook announced, and the verdict of the checks once known
    (``ref`` only when clean: nothing else is ever served)."""
    if announced is None:
        return None
    verdict = None if checked is None else {
        "verdict": checked.verdict, "reason": checked.reason,
        "ref": checked.ref if checked.verdict == "clean" else None,
        "mime_type": checked.mime_type, "size": checked.size,
    }
    return {"mime_type": announced.get("mime_type"), "caption": announced.get("caption"),
            "filename": announced.get("filename"), "voice": announced.get("voice"),
            "checked": verdict}


async def media(request: web.Request) -> web.StreamResponse:
    """A clean media file of the tenant's, decrypted, with its sniffed type;
    404 for anything else (another tenant's, quarantined, unknown)."""
    tenant = request_tenant(request)
    if tenant is None:
        return tenant_refusal()
    ref = request.match_info["ref"]
    record = await asyncio.to_thread(request.app[STORE].read, store_reads.media, tenant, ref)
    if record is None or record.verdict != "clean" or record.shelf != "clean":
        return error_response(404, "not_found", "no such media")
    frames = request.app[RUNTIME].media_files.read("clean", tenant, ref)
    response = web.StreamResponse(headers={
        "Content-Type": record.mime_type or "application/octet-stream",
        "Content-Disposition": "attachment",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    })
    if record.size is not None:
        response.content_length = record.size
    await response.prepare(request)
    try:
        while (frame := await asyncio.to_thread(next, frames, None)) is not None:
            await response.write(frame)
    except CryptoError:  # tampered on disk: cut the answer short rather than serve it
        if request.transport is not None:
            request.transport.close()
        raise
    await response.write_eof()
    return response
