"""The application's supervision tree: child specs, and nothing else.

Its shape and every path in it are drawn in :mod:`lawhub_actors.actors.paths`.
Strategies are part of the shape; intensity, period, backoff, mailbox
bounds, retries and pool sizes come from ``[supervision]`` (per-path
overrides in ``[supervision.overrides."<path>"]``, ``root`` for the root).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial

from lawhub_actors.actors import paths
from lawhub_actors.actors.assist import AssistWorker
from lawhub_actors.actors.dispatcher import Dispatcher
from lawhub_actors.actors.media import MediaWorker
from lawhub_actors.actors.number_breaker import NumberBreaker
from lawhub_actors.actors.number_limiter import NumberLimiter
from lawhub_actors.actors.outbound_worker import OutboundWorker
from lawhub_actors.actors.services import Services, Wakeup
from lawhub_actors.actors.sessions import SessionShard
from lawhub_actors.adapters.call_loop import CallLoop
from lawhub_actors.adapters.graph_send import GraphSend
from lawhub_actors.adapters.media_pipeline import MediaPipeline
from lawhub_actors.adapters.rate_store import RateStore
from lawhub_actors.core.assist import Classifier
from lawhub_actors.settings import PhoneNumber, Settings, Tenant
from supervisors import (
    Actor,
    Backoff,
    ChildSpec,
    MailboxSpec,
    Overflow,
    Routing,
    Strategy,
    SupervisorFlags,
    pool_spec,
    supervisor_spec,
)


def supervisor_flags(settings: Settings, path: str, strategy: Strategy) -> SupervisorFlags:
    supervision = settings.supervision
    tuning = supervision.tuning_for(path, strategy.value)
    backoff = supervision.backoff
    return SupervisorFlags(
        strategy=Strategy(tuning.strategy),
        max_restarts=tuning.max_restarts,
        period_s=tuning.period_s,
        backoff=Backoff(
            min_s=backoff.min_s, max_s=backoff.max_s,
            multiplier=backoff.multiplier, jitter=backoff.jitter,
        ),
        start_timeout_s=supervision.start_timeout_s,
    )


def _worker(settings: Settings, spec_id: str, factory: Callable[[], Actor], kind: str) -> ChildSpec:
    supervision = settings.supervision
    mailbox = supervision.mailbox
    return ChildSpec(
        id=spec_id,
        factory=factory,
        shutdown_s=supervision.shutdown_s,
        mailbox=MailboxSpec(
            capacity=mailbox.capacity,
            overflow=Overflow(mailbox.overflow),
            block_timeout_s=mailbox.block_timeout_s,
        ),
        message_retries=supervision.message_retries,
        kind=kind,
    )


@dataclass(frozen=True)
class Retiring:
    """What left the config but still has work in flight: its actors stay
    (as they were) until that work is done (see ``AppRuntime.reconfigure``)."""

    tenants: tuple[Tenant, ...] = ()
    numbers: tuple[tuple[str, PhoneNumber], ...] = ()
    """(tenant id, number) of numbers no tenant has now."""

    def routes(self) -> dict[str, str]:
        """Number id → tenant id of every retiring number."""
        return {**{n.id: t.id for t in self.tenants for n in t.phone_numbers},
                **{n.id: tenant for tenant, n in self.numbers}}


def root_spec(
    settings: Settings,
    services: Services,
    wakeup: Wakeup,
    classifier: Classifier,
    *,
    media: MediaPipeline,
    sending: Sending,
    offload: Executor | None = None,
    retiring: Retiring = Retiring(),
) -> ChildSpec:
    """The whole tree for ``settings`` (plus what is ``retiring``). Built
    again on every reload and adopted by the running tree, so it must be a
    pure function of its arguments. ``offload`` runs a remote classifier's
    calls off the assist workers."""

    def flags(path: str, strategy: Strategy = Strategy.ONE_FOR_ONE) -> SupervisorFlags:
        return supervisor_flags(settings, path, strategy)

    tenants = [
        pool_spec(
            tenant.id,
            _worker(settings, "shard", partial(SessionShard, services, tenant.id), "session"),
            settings.shards_of(tenant),
            routing=Routing.HASH,
            flags=flags(paths.sessions_of(tenant.id)),
        )
        for tenant in (*settings.tenants, *retiring.tenants)
    ]
    assist = pool_spec(
        paths.ASSIST_ID,
        _worker(settings, "worker", lambda: AssistWorker(services, classifier, offload), "assist"),
        settings.supervision.pools.assist_workers,
        routing=Routing.ROUND_ROBIN,
        flags=flags(paths.ASSIST),
    )
    media_pool = pool_spec(
        paths.MEDIA_ID,
        _worker(settings, "worker", lambda: MediaWorker(services, media), "media"),
        settings.supervision.pools.media_workers,
        routing=Routing.LEAST_BUSY,
        flags=flags(paths.MEDIA),
    )
    dispatcher = _worker(settings, paths.DISPATCHER_ID, lambda: Dispatcher(services, wakeup),
                         "dispatcher")
    inbound = supervisor_spec(paths.INBOUND, flags(paths.INBOUND), [
        supervisor_spec(paths.SESSIONS_ID, flags(paths.SESSIONS), tenants),
        assist,
        media_pool,
        dispatcher,
    ])
    outbound = _outbound(settings, services, sending, retiring)
    return supervisor_spec(paths.ROOT, flags(paths.ROOT), [inbound, outbound])


@dataclass(frozen=True)
class Sending:
    """What the outbound actors use: where limits live, the Graph client
    (None without an access token), and the loop its calls run on."""

    rates: RateStore
    graph: GraphSend | None
    calls: CallLoop
    clock: Callable[[], float] = time.monotonic


def _outbound(settings: Settings, services: Services, sending: Sending,
              retiring: Retiring) -> ChildSpec:
    def flags(path: str) -> SupervisorFlags:
        return supervisor_flags(settings, path, Strategy.ONE_FOR_ONE)

    numbers: dict[str, tuple[str, PhoneNumber]] = {}  # the config's first: a number may move
    for tenant_id, number in [
        *((t.id, n) for t in (*settings.tenants, *retiring.tenants) for n in t.phone_numbers),
        *retiring.numbers,
    ]:
        numbers.setdefault(number.id, (tenant_id, number))
    limiters = [
        _worker(settings, number.id,
                partial(NumberLimiter, services, number, sending.rates), "limiter")
        for _, number in numbers.values()
    ]
    breakers = [
        _worker(settings, number.id,
                partial(NumberBreaker, services, tenant, number.id, sending.clock),
                "breaker")
        for tenant, number in numbers.values()
    ]
    workers = pool_spec(
        paths.WORKERS_ID,
        _worker(settings, "worker",
                lambda: OutboundWorker(services, sending.graph, sending.calls), "outbound"),
        settings.supervision.pools.outbound_workers,
        routing=Routing.HASH,
        flags=flags(paths.WORKERS),
    )
    return supervisor_spec(paths.OUTBOUND, flags(paths.OUTBOUND), [
        supervisor_spec(paths.LIMITERS_ID, flags(paths.LIMITERS), limiters),
        supervisor_spec(paths.BREAKERS_ID, flags(paths.BREAKERS), breakers),
        workers,
    ])
