"""``GET /metrics``: Prometheus text (admin token), via prometheus_client.

Two kinds of series:

- counted as things happen: webhook requests by status and the ack latency
  histogram (a middleware around ``/webhook``), config reloads by outcome;
- read at scrape time from what already keeps them (the supervision tree's
  snapshot, the store, the journal, the feed hub), so nothing is counted
  twice and a restarted actor cannot lose a figure: journal lag, mailbox
  depths, restarts, breaker states, limiter permits and waits, outbound
  messages by state, the dead-letter queue, feed clients.

Each application gets its own registry (no process-global state). Every
sample carries a ``node`` label (the node's name: ``embedded`` alone), so
one Prometheus scraping several nodes keeps their series apart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lawhub_actors.actors import paths
from lawhub_actors.adapters import store_reads
from lawhub_actors.core.send_lifecycle import SendState
from lawhub_actors.web.auth import admin_refusal
from lawhub_actors.web.keys import ADMIN_TOKEN, FEED, RUNTIME, STORE
from supervisors import NodeSnapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CIRCUITS = ("closed", "open", "half_open")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metrics:
    """The application's registry and the series counted as requests come."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhook_requests = Counter(
            "lawhub_webhook_requests", "POST /webhook answers, by HTTP status",
            ["status"], registry=self.registry,
        )
        self.config_reloads = Counter(
            "lawhub_config_reloads", "Config reloads (PUT /admin/config, SIGHUP), by outcome",
            ["via", "result"], registry=self.registry,
        )
        self.webhook_ack_seconds = Histogram(
            "lawhub_webhook_ack_seconds", "Time to answer POST /webhook (journaled before 200)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )

    def watch(self, app: web.Application) -> None:
        self.registry.register(_Live(app))


METRICS = web.AppKey("metrics", Metrics)


WebhookAnswered = Callable[[web.Request, int, float], None]
"""Told of each ``POST /webhook`` answer: (request, status, seconds to answer)."""


def timing_webhooks(answered: WebhookAnswered) -> Middleware:
    """A middleware that times every ``POST /webhook`` and tells ``answered``
    (the ack path's process has its own, which reports to the main one)."""

    @web.middleware
    async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/webhook" or request.method != "POST":
            return await handler(request)
        began = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            answered(request, status, time.perf_counter() - began)

    return timed


def _count(request: web.Request, status: int, seconds: float) -> None:
    metrics = request.app[METRICS]
    metrics.webhook_requests.labels(str(status)).inc()
    metrics.webhook_ack_seconds.observe(seconds)


count_webhooks = timing_webhooks(_count)


class _Live(Collector):
    """The series read at scrape time."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        runtime = self._app.get(RUNTIME)
        if runtime is None:  # not started yet
            return
        store = self._app[STORE]
        yield from _inbound(runtime.backlog())
        yield from _tree(runtime.snapshot())
        outbound = GaugeMetricFamily("lawhub_outbound_messages",
                                     "Outbound messages by sending state", labels=["state"])
        for state in SendState:
            outbound.add_metric([state.value],
                               store.read(store_reads.count, "outbound", state=state.value))
        yield outbound
        dlq = GaugeMetricFamily("lawhub_dlq_size", "Messages in the dead-letter queue")
        dlq.add_metric([], store.read(store_reads.count, "outbound", state=SendState.DEAD.value))
        yield dlq
        feed = GaugeMetricFamily("lawhub_feed_clients", "Live websocket feed clients")
        feed.add_metric([], self._app[FEED].count())
        yield feed


def _inbound(backlog: dict[str, Any]) -> Iterator[Metric]:
    for name, key, text in (
        ("lawhub_journal_lag_entries", "lag_entries",
         "Journal entries committed but not yet processed"),
        ("lawhub_journal_lag_seconds", "oldest_unprocessed_s",
         "Age of the oldest journal entry not yet processed"),
        ("lawhub_inbound_in_flight", "in_flight",
         "Updates handed to session shards and not settled yet (the window)"),
        ("lawhub_inbound_in_flight_bytes", "in_flight_bytes",
         "Body bytes of the updates in flight"),
        ("lawhub_inbound_left_behind", "left_behind",
         "Conversations passed over for lack of room, to be read again from the journal"),
    ):
        gauge = GaugeMetricFamily(name, text)
        gauge.add_metric([], backlog[key])
        yield gauge
    stalled = GaugeMetricFamily("lawhub_inbound_stalled",
                                "1 while a backlog has not moved for [inbound] stall_after_s")
    stalled.add_metric([], float(backlog["stalled"] is not None))
    yield stalled


def _tree(root: NodeSnapshot) -> Iterator[Metric]:
    depth = GaugeMetricFamily("lawhub_mailbox_depth", "Messages queued for an actor",
                              labels=["path"])
    restarts = GaugeMetricFamily("lawhub_actor_restarts", "Restarts of an actor since start",
                                 labels=["path"])
    escalations = GaugeMetricFamily(
        "lawhub_supervisor_restarts_in_period",
        "Restarts within the current intensity period (escalation beyond max_restarts)",
        labels=["path"])
    circuit = GaugeMetricFamily("lawhub_breaker_state", "1 for the state a breaker is in",
                                labels=["phone_number_id", "state"])
    permits = GaugeMetricFamily("lawhub_limiter_permits", "Throughput permits granted",
                                labels=["phone_number_id"])
    waited = GaugeMetricFamily("lawhub_limiter_wait_seconds",
                               "Seconds sends waited for throughput permits",
                               labels=["phone_number_id"])
    for node in root.walk():
        path = node.path or "root"
        depth.add_metric([path], node.mailbox_depth)
        restarts.add_metric([path], node.restarts_total)
        escalations.add_metric([path], node.restarts_in_period)
        number = paths.number_of(node.path, paths.BREAKERS)
        if number is not None and "circuit" in node.info:
            for state in CIRCUITS:
                circuit.add_metric([number, state], float(node.info["circuit"] == state))
        number = paths.number_of(node.path, paths.LIMITERS)
        if number is not None and "permits" in node.info:
            permits.add_metric([number], node.info["permits"])
            waited.add_metric([number], node.info["waited_s"])
    yield from (depth, restarts, escalations, circuit, permits, waited)


def add_routes(app: web.Application) -> None:
    """``GET /metrics``, and the counting of webhook answers."""
    collected = Metrics()
    collected.watch(app)
    app[METRICS] = collected
    app.middlewares.append(count_webhooks)
    app.router.add_get("/metrics", metrics)


class _Labelled:
    """``registry``'s metrics with ``node`` added to every sample's labels."""

    def __init__(self, registry: CollectorRegistry, node: str) -> None:
        self._registry = registry
        self._node = node

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            labelled = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            for sample in metric.samples:
                labelled.add_sample(sample.name, {**sample.labels, "node": self._node},
                                    sample.value, sample.timestamp, sample.exemplar)
            yield labelled


async def metrics(request: web.Request) -> web.Response:
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    labelled = _Labelled(request.app[METRICS].registry, request.app[RUNTIME].ownership.node)
    body = await asyncio.to_thread(generate_latest, labelled)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
