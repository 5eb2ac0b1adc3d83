"""Meta → gateway: the subscription handshake and the webhook POST.

The POST does the least that makes an acknowledgement honest, in this
order, and nothing else on the hot path (no dedupe, no normalization —
the dispatcher does those from the journal):

1. ``415`` unless the content is JSON;
2. ``413`` over ``[server] webhook_max_bytes`` (checked on the declared
   length before reading, and while reading);
3. ``401`` unless ``X-Hub-Signature-256`` is a correct HMAC of the raw bytes;
4. ``400`` unless the body is JSON (``not_json``), nested no deeper than
   :data:`~lawhub_actors.core.limits.MAX_DEPTH` (``too_deep``: such a body
   would be journaled, then break every later ``orjson.dumps`` of it on every
   replay) and has ``object == "whatsapp_business_account"`` (``wrong_object``);
5. journal append (durable, group-committed) → ``200``; ``503`` if the
   journal cannot commit (Meta retries; nothing half-done).
"""

from __future__ import annotations

import orjson
import structlog
from aiohttp import web

from lawhub_actors.adapters.journal import JournalUnavailable
from lawhub_actors.core import limits, signature
from lawhub_actors.web.errors import error_response
from lawhub_actors.web.keys import APP_SECRET, JOURNAL, VERIFY_TOKEN, WEBHOOK_MAX_BYTES

log = structlog.get_logger("lawhub.webhook")

WABA_OBJECT = "whatsapp_business_account"


def add_routes(app: web.Application) -> None:
    app.router.add_get("/webhook", handshake)
    app.router.add_post("/webhook", receive)


async def handshake(request: web.Request) -> web.Response:
    challenge = signature.handshake(request.query, request.app.get(VERIFY_TOKEN))
    if challenge is None:
        return web.Response(status=403, text="forbidden", content_type="text/plain")
    return web.Response(text=challenge, content_type="text/plain")


async def receive(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        return error_response(415, "unsupported_media_type", "the body must be application/json")
    limit = request.app[WEBHOOK_MAX_BYTES]
    if request.content_length is not None and request.content_length > limit:
        return error_response(413, "too_large", f"the body is over {limit} bytes")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:  # a chunked body that grew past the limit
        return error_response(413, "too_large", f"the body is over {limit} bytes")
    secret = request.app.get(APP_SECRET)
    if secret is None:
        return error_response(503, "webhook_disabled", "LAWHUB_APP_SECRET is not configured")
    if not signature.verify(secret, body, request.headers.get("X-Hub-Signature-256")):
        return error_response(401, "bad_signature", "missing, malformed or wrong signature")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if limits.parser_depth_exceeded(error):
            return _too_deep()
        return error_response(400, "not_json", "the body is not JSON")
    if limits.too_deep(document, body):
        return _too_deep()
    if not isinstance(document, dict) or document.get("object") != WABA_OBJECT:
        return error_response(400, "wrong_object", f"object must be {WABA_OBJECT!r}")
    try:
        seq = await request.app[JOURNAL].append(body)
    except JournalUnavailable:
        return error_response(503, "journal_unavailable", "not stored; retry later")
    log.debug("webhook_journaled", seq=seq, size=len(body))
    return web.Response(text="ok", content_type="text/plain")



def _too_deep() -> web.Response:
    return error_response(
        400, "too_deep", f"the body nests more than {limits.MAX_DEPTH} levels of arrays and objects"
    )
