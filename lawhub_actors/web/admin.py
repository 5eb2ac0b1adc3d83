"""Health, readiness and the operators' view of the live tree."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from lawhub_actors.adapters import leases, store_reads
from lawhub_actors.core.partitions import Lease
from lawhub_actors.web.auth import admin_refusal
from lawhub_actors.web.keys import ADMIN_TOKEN, INGEST, JOURNAL, RUNTIME, STORE
from lawhub_actors.web.render import iso


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/admin/tree", tree)
    app.router.add_get("/admin/quarantine", quarantine)
    app.router.add_get("/admin/cluster", cluster)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers HTTP and its inbound processing moves.
    A backlog that has not moved for ``[inbound] stall_after_s`` answers 503
    with the reason, so an orchestrator and an operator both notice (a
    backlog that drains is fine: ``/readyz`` stays green meanwhile)."""
    runtime = request.app.get(RUNTIME)
    reason = None if runtime is None else runtime.backlog()["stalled"]
    if reason is not None:
        return web.json_response({"status": "stalled", "reason": reason}, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the supervision tree is up and its root has not given up."""
    runtime = request.app.get(RUNTIME)
    if runtime is None or not runtime.ready():
        return web.json_response({"status": "starting_or_failed"}, status=503)
    return web.json_response({"status": "ready"})


async def tree(request: web.Request) -> web.Response:
    """The supervision tree as it is now (read from the registry: no actor
    is asked, so a busy or restarting actor cannot stall this answer), and
    ``services``: which optional parts run (``malware_scanning``: ``clamd``,
    or ``off`` when only the built-in checks run), ``counts``: what waits
    for operators (``dlq``, ``quarantine``), and ``inbound``: the backlog and
    the in-flight window (:meth:`AppRuntime.backlog`)."""
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    runtime = request.app[RUNTIME]
    counts = await asyncio.to_thread(request.app[STORE].read, store_reads.operator_counts)
    backlog = await asyncio.to_thread(runtime.backlog)
    services: dict[str, Any] = {**runtime.services()}
    if INGEST in request.app:
        services["ingest"] = request.app[INGEST].to_dict()
    return web.json_response({**runtime.snapshot().to_dict(), "services": services,
                              "counts": counts, "inbound": backlog})


async def cluster(request: web.Request) -> web.Response:
    """The nodes (last heartbeat, partitions held) and every partition's
    owner, epoch and lag (journal entries after its cursor). A lease that
    ran out shows no owner; ``this_node`` names the node that answered."""
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    store, runtime = request.app[STORE], request.app[RUNTIME]

    def read() -> tuple[list[leases.NodeRow], list[Lease], dict[int, int]]:
        return (store.read(leases.nodes), store.read(leases.read_leases),
                store.read(leases.cursors))

    rows, held, cursors = await asyncio.to_thread(read)
    now, top = time.time(), request.app[JOURNAL].last_committed
    owner = {lease.partition: lease.owner if lease.held(now) else None for lease in held}
    return web.json_response({
        "this_node": runtime.ownership.node,
        "nodes": [{"id": row.id, "address": row.address, "heartbeat_at": iso(row.heartbeat_at),
                   "partitions": sorted(p for p, o in owner.items() if o == row.id)}
                  for row in rows],
        "partitions": [{"id": lease.partition, "owner": owner[lease.partition],
                        "epoch": lease.epoch,
                        "lag": max(0, top - cursors.get(lease.partition, 0))}
                       for lease in held],
    })


async def quarantine(request: web.Request) -> web.Response:
    """Webhook data that belongs to no tenant (unknown numbers, bad shapes)
    and updates given up after their handler kept crashing, newest first:
    their ids, types, sizes and reasons, never a client's words (the data
    stays sealed for its firm); and media that did not pass its checks (ids,
    verdicts and reasons: the files stay sealed on the quarantine shelf)."""
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    store = request.app[STORE]
    entries = await asyncio.to_thread(store.read_tx, store_reads.quarantined, 200)
    media = await asyncio.to_thread(store.read, store_reads.quarantined_media, 200)
    return web.json_response({"entries": entries, "media": media})
