"""The application's supervision tree: child specs, and nothing else.

::

    root (one_for_one)
    └── inbound (one_for_one)
        ├── sessions (one_for_one)
        │   └── <tenant>        consistent-hash pool of session shards, keyed by customer
        ├── assist              round-robin pool of classifiers (masked text only)
        ├── media               least-busy pool of media-scan workers
        └── dispatcher          journal → dedupe → shards; started last, after its targets

Strategies are part of the shape; intensity, period, backoff, mailbox
bounds, retries and pool sizes come from ``[supervision]`` (per-path
overrides in ``[supervision.overrides."<path>"]``, ``root`` for the root).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

from lawhub_actors.actors.assist import AssistWorker
from lawhub_actors.actors.dispatcher import Dispatcher
from lawhub_actors.actors.media import MediaWorker
from lawhub_actors.actors.services import Services, Wakeup
from lawhub_actors.actors.sessions import SessionShard
from lawhub_actors.adapters.media_pipeline import MediaPipeline
from lawhub_actors.core.assist import Classifier
from lawhub_actors.settings import Settings
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

ROOT = "root"


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


def root_spec(
    settings: Settings,
    services: Services,
    wakeup: Wakeup,
    classifier: Classifier,
    *,
    media: MediaPipeline,
    offload: Executor | None = None,
) -> ChildSpec:
    """``offload`` runs a remote classifier's calls off the assist workers."""
    def flags(path: str, strategy: Strategy = Strategy.ONE_FOR_ONE) -> SupervisorFlags:
        return supervisor_flags(settings, path, strategy)

    tenants = [
        pool_spec(
            tenant.id,
            _worker(settings, "shard", lambda t=tenant.id: SessionShard(services, t), "session"),
            settings.shards_for(tenant.id),
            routing=Routing.HASH,
            flags=flags(f"inbound/sessions/{tenant.id}"),
        )
        for tenant in settings.tenants
    ]
    assist = pool_spec(
        "assist",
        _worker(settings, "worker", lambda: AssistWorker(services, classifier, offload), "assist"),
        settings.supervision.pools.assist_workers,
        routing=Routing.ROUND_ROBIN,
        flags=flags("inbound/assist"),
    )
    media_pool = pool_spec(
        "media",
        _worker(settings, "worker", lambda: MediaWorker(services, media), "media"),
        settings.supervision.pools.media_workers,
        routing=Routing.LEAST_BUSY,
        flags=flags("inbound/media"),
    )
    dispatcher = _worker(settings, "dispatcher", lambda: Dispatcher(services, wakeup), "dispatcher")
    inbound = supervisor_spec("inbound", flags("inbound"), [
        supervisor_spec("sessions", flags("inbound/sessions"), tenants),
        assist,
        media_pool,
        dispatcher,
    ])
    return supervisor_spec(ROOT, flags(ROOT), [inbound])
