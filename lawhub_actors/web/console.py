"""The operators' console: ``GET /console`` and the live view it runs on.

``GET /console`` serves a static page (``web/console_page/``: hand-written HTML,
JS and CSS, no build step, nothing from outside); it and every file under
``/console/static/`` carry :data:`PAGE_HEADERS` (its CSP, ``frame-ancestors
'none'``...). The page itself carries no secret: it asks for the admin token,
keeps it in the tab's sessionStorage and sends it with every call.

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
- ``{"type": "counts", "dlq": n, "quarantine": m, "lag": entries, "lag_s":
  age of the oldest unprocessed entry, "in_flight": updates handed to shards,
  "stalled": reason or null}`` at the start and when any changes (sampled
  every ``COUNTS_EVERY_S`` off the loop);
- ``{"type": "feed", "tenant": "<id>", "event": {"seq", "type", "at", "data"}}``
  for every committed feed event of every tenant, live only, stripped to
  what the page shows (:func:`console_event`): ``data`` keeps only the
  scalar :data:`FEED_KEYS` (for ``circuit.changed``: the number and the two
  circuit states), and customer and recipient numbers as their last four
  digits (``"…1234"``). Message text, captions, bodies, errors and full
  ``wa_id`` numbers never leave the server: the console stays open all day. A
  console that cannot keep up is closed with 4008, like a tenant's feed
  client; it reconnects and starts again from a full tree.

When the gateway stops every console is closed with 1001 (the feed hub's
``close_all``, as for tenants' feed clients), so none holds the shutdown
open; the page reconnects by itself.

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
from aiohttp import WSMsgType, web

from lawhub_actors.adapters import store_reads
from lawhub_actors.adapters.store import Store
from lawhub_actors.adapters.store_rows import FeedEvent
from lawhub_actors.core.operator_view import masked_number
from lawhub_actors.runtime import AppRuntime
from lawhub_actors.web.auth import admin_refusal, bearer
from lawhub_actors.web.errors import error_response
from lawhub_actors.web.feed import (
    SLOW_CONSUMER,
    Committed,
    Subscriber,
    close_socket,
    feed_socket,
    send_text,
)
from lawhub_actors.web.keys import ADMIN_TOKEN, FEED, RUNTIME, STORE
from lawhub_actors.web.render import iso

log = structlog.get_logger("lawhub.console")

PAGE_DIR = Path(__file__).with_name("console_page")
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

FEED_KEYS = ("id", "status", "verdict", "reason", "intent", "urgency", "phone_number_id")
"""What the page shows of a feed event's ``data`` (console.js has the same list)."""
NUMBER_KEYS = ("customer", "to")
"""Customers' and recipients' numbers: shown as their last four digits."""
CIRCUIT_KEYS = ("phone_number_id", "from", "to")
"""``circuit.changed``: the number and the circuit states (``to`` is a state)."""

NodeDict = dict[str, Any]
Flat = dict[str, NodeDict]


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console", page)
    app.router.add_get("/console/static/{name}", static_file)
    app.router.add_get("/admin/ws", admin_ws)


async def page(request: web.Request) -> web.FileResponse:
    """The console page; no token needed to load it (it asks for one)."""
    return web.FileResponse(PAGE_DIR / "index.html", headers=PAGE_HEADERS)


STATIC_FILES = frozenset(path.name for path in PAGE_DIR.iterdir() if path.is_file())


async def static_file(request: web.Request) -> web.StreamResponse:
    """The page's own files, with the page's headers (also on a 404)."""
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        return error_response(404, "not_found", "no such file", **PAGE_HEADERS)
    return web.FileResponse(PAGE_DIR / name, headers=PAGE_HEADERS)


async def admin_ws(request: web.Request) -> web.StreamResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    hub = request.app[FEED]
    # Before the first await: the gateway stopping from now on reaches it.
    subscriber = hub.subscribe_all()
    try:
        ws = feed_socket()
        await ws.prepare(request)
        await LiveView(ws, request.app[RUNTIME], subscriber, request.app[STORE]).run()
    finally:
        hub.unsubscribe(subscriber)
    return ws


def console_event(event: FeedEvent) -> dict[str, Any]:
    """What a console is sent of a feed event: what its page shows, no more."""
    data = event.data
    if event.type == "circuit.changed":
        shown = {key: data[key] for key in CIRCUIT_KEYS if _scalar(data.get(key))}
    else:
        shown = {key: data[key] for key in FEED_KEYS if _scalar(data.get(key))}
        shown.update({key: masked_number(data[key]) for key in NUMBER_KEYS
                      if isinstance(data.get(key), str) and data[key]})
    return {"seq": event.seq, "type": event.type, "at": iso(event.at), "data": shown}


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


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

    def __init__(self, ws: web.WebSocketResponse, runtime: AppRuntime, subscriber: Subscriber,
                 store: Store) -> None:
        self._ws = ws
        self._runtime = runtime
        self._subscriber = subscriber
        self._store = store
        self._sending = asyncio.Lock()

    async def run(self) -> None:
        """Until the console leaves or its subscriber is ended (the caller
        subscribed, and unsubscribes)."""
        subscriber = self._subscriber
        reader = asyncio.create_task(self._drain_incoming())
        tasks: list[asyncio.Task[None]] = [reader, asyncio.create_task(self._until_ended())]
        try:
            tree = self._runtime.snapshot().to_dict()
            await self._send({"type": "tree",
                              "tree": {**tree, "services": self._runtime.services()}})
            tasks += [asyncio.create_task(work) for work in (
                self._follow_tree(flatten(tree)), self._follow_counts(),
                self._follow_feed(subscriber))]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                with contextlib.suppress(ConnectionError):
                    task.result()
        except ConnectionError:  # the console went away mid-send, or stopped reading
            pass
        finally:
            # Whatever ended it, every task stops: even a send stuck on a console
            # that stopped reading.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        # Closed once nothing else sends or reads (the closing handshake).
        if subscriber.ended.is_set() and not self._ws.closed:
            await self._close(reader, subscriber)

    async def _until_ended(self) -> None:
        await self._subscriber.ended.wait()

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._sending:
            await send_text(self._ws, orjson.dumps(message).decode(), self._subscriber)

    async def _follow_tree(self, last: Flat) -> None:
        while not self._ws.closed:
            await asyncio.sleep(TREE_EVERY_S)
            sample = flatten(self._runtime.snapshot().to_dict())
            change = delta(last, sample)
            if change is not None:
                await self._send(change)
            last = sample

    def _counts(self) -> dict[str, Any]:
        backlog = self._runtime.backlog()
        return {**self._store.read(store_reads.operator_counts),
                "lag": backlog["lag_entries"], "lag_s": backlog["oldest_unprocessed_s"],
                "in_flight": backlog["in_flight"], "stalled": backlog["stalled"]}

    async def _follow_counts(self) -> None:
        last = None
        while not self._ws.closed:
            now = await asyncio.to_thread(self._counts)
            if now != last:
                await self._send({"type": "counts", **now})
                last = now
            await asyncio.sleep(COUNTS_EVERY_S)

    async def _follow_feed(self, subscriber: Subscriber) -> None:
        """The feed, until :meth:`run` stops it as the subscriber is ended
        (live only: what is still queued then is dropped; a reconnect starts
        afresh)."""
        while not self._ws.closed:
            event = await subscriber.get()
            if isinstance(event, Committed):  # never offered to a console: live only
                continue
            await self._send({"type": "feed", "tenant": event.tenant,
                              "event": console_event(event)})

    async def _close(self, reader: asyncio.Task[None], subscriber: Subscriber) -> None:
        code, reason = subscriber.close_code, subscriber.close_reason
        assert code is not None
        if code == SLOW_CONSUMER:
            log.warning("console_too_slow")
            reason = f"{reason}; reconnect for a fresh view"
        await close_socket(self._ws, reader, code, reason)

    async def _drain_incoming(self) -> None:
        """Consoles only listen; reading answers pings and notices a close."""
        async for message in self._ws:
            if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
