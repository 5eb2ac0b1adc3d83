"""``POST /admin/faults``: rehearse failures (game days), admin token only.

``{"path": "<actor path>", "kind": "crash"}`` makes that actor crash on its
next message, exactly as if its handler raised: its supervisor restarts it,
the message is handed again, and nothing is lost. Refused with 403 unless
the config says ``[admin] allow_fault_injection = true``. Audited with the
admin token's fingerprint.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from lawhub_actors.usecases import operator_audit
from lawhub_actors.web.auth import admin_refusal, fingerprint
from lawhub_actors.web.bodies import json_body
from lawhub_actors.web.errors import error_response
from lawhub_actors.web.keys import ADMIN_TOKEN, RUNTIME, STORE
from supervisors import NotRegistered


class FaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    path: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    kind: Literal["crash"]


def add_routes(app: web.Application) -> None:
    app.router.add_post("/admin/faults", inject)


async def inject(request: web.Request) -> web.Response:
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    runtime = request.app[RUNTIME]
    if not runtime.settings.admin.allow_fault_injection:
        return error_response(403, "fault_injection_disabled",
                              "set [admin] allow_fault_injection = true to rehearse failures")
    try:
        fault = FaultRequest.model_validate(await json_body(request))
    except ValidationError as error:
        return error_response(422, "invalid_body", str(error).splitlines()[0])
    try:
        runtime.tree.registry.inject_fault(fault.path)
    except NotRegistered:
        return error_response(404, "not_found", f"no actor at {fault.path!r}")
    who = fingerprint(request)
    await asyncio.to_thread(request.app[STORE].write, lambda tx: operator_audit.fault_injected(
        tx, path=fault.path, kind=fault.kind, by=who))
    return web.json_response({"path": fault.path, "kind": fault.kind, "armed": True},
                             status=202)
