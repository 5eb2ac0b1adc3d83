"""Health, readiness and the operators' view of the live tree."""

from __future__ import annotations

from aiohttp import web

from lawhub_actors.web.auth import admin_refusal
from lawhub_actors.web.keys import ADMIN_TOKEN, RUNTIME


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/admin/tree", tree)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the supervision tree is up and its root has not given up."""
    runtime = request.app.get(RUNTIME)
    if runtime is None or not runtime.ready():
        return web.json_response({"status": "starting_or_failed"}, status=503)
    return web.json_response({"status": "ready"})


async def tree(request: web.Request) -> web.Response:
    """The supervision tree as it is now (read from the registry: no actor
    is asked, so a busy or restarting actor cannot stall this answer)."""
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    return web.json_response(request.app[RUNTIME].snapshot().to_dict())
