"""Bearer tokens: the operators' admin token (compared in constant time)."""

from __future__ import annotations

import hmac

from aiohttp import web

from lawhub_actors.web.errors import error_response


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def admin_refusal(request: web.Request, admin_token: str | None) -> web.Response | None:
    """``None`` when the request carries the admin token, else the refusal."""
    if admin_token is None:
        return error_response(
            503, "admin_disabled", "no admin token is configured (set LAWHUB_ADMIN_TOKEN)"
        )
    given = bearer(request)
    if given is None or not hmac.compare_digest(given.encode(), admin_token.encode()):
        return error_response(
            401, "unauthorized", "admin token required", **{"WWW-Authenticate": "Bearer"}
        )
    return None
