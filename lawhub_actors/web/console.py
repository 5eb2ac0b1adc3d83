"""The operators' console: ``GET /console`` and the live view it runs on.

``GET /console`` serves a static page (``web/console/``: hand-written HTML,
JS and CSS, no build step, nothing from outside). The page itself carries no
secret: it asks for the admin token, keeps it in the tab's sessionStorage and
sends it with every call.

``GET /admin/ws`` (admin token in ``Authorization: Bearer`` or ``?token=``;
refused before the upgrade) is a websocket of JSON frames:

- ``{"type": "tree", "tree": <the /admin/tree document>}`` once, first;
- ``{"type": "tree.delta", "changed": [<node>...], "removed": [<path>...]}``
  when a sample of the tree (every ``TREE_EVERY_S``) differs from the last
  one. A node is its ``/admin/tree`` dict without ``children``, plus
  ``parent`` (its parent's path, ``None`` for the root) and ``position``
  (its index among its siblings); ``changed`` lists new nodes and nodes whose
  state, restarts, mailbox depth, details or place changed, parents before
  their children;
- ``{"type": "counts", "dlq": n, "quarantine": m}`` at the start and when
  either changes (sampled every ``COUNTS_EVERY_S`` off the loop);
- ``{"type": "feed", "tenant": "<id>", "event": <the tenant's /ws frame>}``
  for every committed feed event of every tenant, live only. A console that
  cannot keep up is closed with 4008, like a tenant's feed client; it
  reconnects and starts again from a full tree.

Sampling the tree reads the registry (no actor is asked), so a console costs
the gateway a snapshot per half second, whatever the actors are doing.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import orjson
import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from lawhub_actors.adapters import store_reads
from lawhub_actors.adapters.sqlite_store import Store
from lawhub_actors.runtime import AppRuntime
from lawhub_actors.web.auth import admin_refusal, bearer
from lawhub_actors.web.feed import SLOW_CONSUMER, FeedHub, Subscriber
from lawhub_actors.web.keys import ADMIN_TOKEN, FEED, RUNTIME, STORE
from lawhub_actors.web.render import frame

log = structlog.get_logger("lawhub.console")

PAGE_DIR = Path(__file__).with_name("console")
TREE_EVERY_S = 0.5
COUNTS_EVERY_S = 2.0
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}

NodeDict = dict[str, Any]
Flat = dict[str, NodeDict]


CONSOLES: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("consoles")
"""Open consoles, closed when the gateway stops."""


def add_routes(app: web.Application) -> None:
    app[CONSOLES] = set()
    app.on_shutdown.append(_close_consoles)
    app.router.add_get("/console", page)
    app.router.add_static("/console/static", PAGE_DIR)
    app.router.add_get("/admin/ws", admin_ws)


async def _close_consoles(app: web.Application) -> None:
    """Stopping: say goodbye (1001) rather than keep the shutdown waiting on
    consoles that would never hang up; they reconnect once the gateway is back."""
    open_now = app[CONSOLES].copy()  # their handlers leave the set as they end
    for ws in open_now:
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"gateway stopping")


async def page(request: web.Request) -> web.FileResponse:
    """The console page; no token needed to load it (it asks for one)."""
    return web.FileResponse(PAGE_DIR / "index.html", headers=PAGE_HEADERS)


async def admin_ws(request: web.Request) -> web.StreamResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    consoles = request.app[CONSOLES]
    consoles.add(ws)
    try:
        await LiveView(ws, request.app[RUNTIME], request.app[FEED], request.app[STORE]).run()
    finally:
        consoles.discard(ws)
    return ws


def _refusal(request: web.Request) -> web.Response | None:
    """``admin_refusal``, also taking the token from ``?token=`` (a browser's
    websocket cannot set headers)."""
    token = request.query.get("token")
    if bearer(request) is None and token:
        request = request.clone(headers={**request.headers, "Authorization": f"Bearer {token}"})
    return admin_refusal(request, request.app.get(ADMIN_TOKEN))


def flatten(tree: NodeDict) -> Flat:
    """Every node of a snapshot dict by path, without its children, with its
    parent's path and its place among its siblings (where a new node goes)."""
    flat: Flat = {}

    def visit(node: NodeDict, parent: str | None, position: int) -> None:
        flat[node["path"]] = {
            **{key: value for key, value in node.items() if key != "children"},
            "parent": parent, "position": position,
        }
        for index, child in enumerate(node["children"]):
            visit(child, node["path"], index)

    visit(tree, None, 0)
    return flat


def delta(before: Flat, after: Flat) -> dict[str, Any] | None:
    """The ``tree.delta`` frame from one sample to the next; ``None`` if equal."""
    changed = [node for path, node in after.items() if before.get(path) != node]
    removed = [path for path in before if path not in after]
    if not changed and not removed:
        return None
    return {"type": "tree.delta", "changed": changed, "removed": removed}


class LiveView:
    """One console's websocket: the tree, then deltas, counts and the feed,
    each from its own task; sends are serialised by a lock."""

    def __init__(self, ws: web.WebSocketResponse, runtime: AppRuntime, hub: FeedHub,
                 store: Store) -> None:
        self._ws = ws
        self._runtime = runtime
        self._hub = hub
        self._store = store
        self._sending = asyncio.Lock()

    async def run(self) -> None:
        subscriber = self._hub.subscribe_all()
        tasks: list[asyncio.Task[None]] = []
        try:
            tree = self._runtime.snapshot().to_dict()
            await self._send({"type": "tree",
                              "tree": {**tree, "services": self._runtime.services()}})
            tasks = [asyncio.create_task(work) for work in (
                self._follow_tree(flatten(tree)), self._follow_counts(),
                self._follow_feed(subscriber), self._drain_incoming())]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                with contextlib.suppress(ConnectionError):
                    task.result()
        except ConnectionError:  # the console went away mid-send
            pass
        finally:
            self._hub.unsubscribe(subscriber)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._sending:
            await self._ws.send_str(orjson.dumps(message).decode())

    async def _follow_tree(self, last: Flat) -> None:
        while not self._ws.closed:
            await asyncio.sleep(TREE_EVERY_S)
            sample = flatten(self._runtime.snapshot().to_dict())
            change = delta(last, sample)
            if change is not None:
                await self._send(change)
            last = sample

    async def _follow_counts(self) -> None:
        last = None
        while not self._ws.closed:
            now = await asyncio.to_thread(self._store.read, store_reads.operator_counts)
            if now != last:
                await self._send({"type": "counts", **now})
                last = now
            await asyncio.sleep(COUNTS_EVERY_S)

    async def _follow_feed(self, subscriber: Subscriber) -> None:
        while not self._ws.closed:
            event = await subscriber.queue.get()
            # It overflows only when its queue is full, so a get never waits then.
            if subscriber.overflowed.is_set():
                log.warning("console_too_slow")
                await self._ws.close(code=SLOW_CONSUMER,
                                     message=b"too slow; reconnect for a fresh view")
                return
            await self._send({"type": "feed", "tenant": event.tenant, "event": frame(event)})

    async def _drain_incoming(self) -> None:
        """Consoles only listen; reading answers pings and notices a close."""
        async for message in self._ws:
            if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
