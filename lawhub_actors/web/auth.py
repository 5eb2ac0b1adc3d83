"""Bearer tokens, compared in constant time.

- Operators: ``LAWHUB_ADMIN_TOKEN`` itself.
- Tenants: the config holds only the SHA-256 of each tenant's API token; a
  request's token is hashed and compared with every tenant's hash (no early
  exit, so timing says nothing about which tenant was close). A tenant
  token is never an admin token and vice versa.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from aiohttp import web

from lawhub_actors.web.errors import error_response


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def fingerprint(request: web.Request) -> str:
    """Who made an admin request, for the audit log: a fingerprint of the
    bearer token (never the token)."""
    return hashlib.sha256((bearer(request) or "").encode()).hexdigest()[:16]


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


class TenantTokens:
    def __init__(self, hashes: Iterable[tuple[str, str]]) -> None:
        self.replace(hashes)

    def replace(self, hashes: Iterable[tuple[str, str]]) -> None:
        """Take the tenants of a reloaded config (one swap: a request sees
        the old list or the new one)."""
        self._hashes = [(tenant, bytes.fromhex(digest)) for tenant, digest in hashes]

    def tenant_for(self, token: str | None) -> str | None:
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for tenant, expected in self._hashes:
            if hmac.compare_digest(digest, expected):
                found = tenant
        return found


def tenant_refusal() -> web.Response:
    return error_response(
        401, "unauthorized", "a tenant API token is required", **{"WWW-Authenticate": "Bearer"}
    )
