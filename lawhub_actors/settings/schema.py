"""The schema of ``config/lawhub.toml``: its sections and :class:`Settings`, the whole.

Every table forbids unknown keys (a typo is an error, never a silently
ignored setting) and every top-level section is optional, so the minimal
config of CONTRACT.md runs. Tenants and templates are in
:mod:`~lawhub_actors.settings.tenants`; the rules spanning several entries
in :mod:`~lawhub_actors.settings.checks`.

Two ``[supervision]`` tables are named ``...Settings`` (:class:`BackoffSettings`,
:class:`MailboxSettings`) so as not to shadow the supervision runtime's own
``Backoff`` and ``Mailbox``, which they configure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from lawhub_actors.settings.checks import DEFER_CROSS_CHECKS, cross_issues
from lawhub_actors.settings.fields import Section, StrategyName, SupervisorPath
from lawhub_actors.settings.tenants import PhoneNumber, Template, Tenant


class Server(Section):
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=0, le=65535)  # 0: the OS picks a free port
    # Nodes this command runs on this machine, all on the one port
    # (SO_REUSEPORT: the kernel spreads connections); more than 1 needs
    # [storage] backend = "postgres" (nodes share the database).
    processes: int = Field(default=1, ge=1, le=64)
    webhook_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1)
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    # "process": the webhook's ack path (HTTP, HMAC, journal) runs in a process
    # of its own on the same port, so processing never slows Meta's acks
    # (where connections cannot be passed between processes: inline).
    ingest: Literal["inline", "process"] = "process"
    # The ack process's nice value relative to the processing's (-20..0; 0:
    # as the rest): ahead of the actors for a core when both want one, so
    # Meta's acks keep their latency while processing is saturated (measured
    # at twice the processing capacity: ack p99 ~60-130 ms at 0, 12-24 ms at
    # -10), at some processing throughput near capacity (~5-10 %). Needs the
    # privilege to raise a priority (CAP_SYS_NICE, which root has outside a
    # container, or an RLIMIT_NICE allowing it: systemd's LimitNICE=-10);
    # without it, it runs as the rest (logged as a warning with the fix).
    ingest_nice: int = Field(default=-10, ge=-20, le=0)
    # Connections one process holds; over it the one idle longest is closed
    # to make room, and when none is idle the new one is refused (503).
    max_connections: int = Field(default=10_000, ge=1)
    # Seconds a connection may send nothing (after it opened or was answered),
    # a request's headers may take from its first byte, and its body from its
    # headers (408 for the last two); see web/connections.py.
    idle_timeout_s: float = Field(default=30.0, gt=0)
    headers_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)


class Storage(Section):
    # "sqlite": one process, files under the data dir (the embedded default);
    # "postgres": the journal and the store in LAWHUB_DATABASE_URL's database,
    # shared by every node (LAWHUB_REDIS_URL then required too).
    backend: Literal["sqlite", "postgres"] = "sqlite"
    # PostgreSQL: bring the schema up to date at start (else only check it,
    # and leave upgrades to `python run.py migrate`).
    auto_migrate: bool = True
    sqlite_file: str = Field(default="lawhub.sqlite3", min_length=1)
    journal_batch_max: int = Field(default=256, ge=1)
    journal_tail_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    """Bytes of the newest webhook bodies the journal keeps in memory for the
    dispatcher (a body bigger than this is read back from the database)."""

    def sqlite_path(self, data_dir: Path) -> Path:
        """The database file: ``sqlite_file`` as is when absolute, else under ``data_dir``."""
        return data_dir / self.sqlite_file


class Cluster(Section):
    """Partitions of the conversations and their leases (see core/partitions.py).

    Every conversation falls in one of ``partitions``; each is owned by one
    live node at a time. A node that stops renewing its leases for
    ``lease_s`` loses them to the others (its writes are fenced from then
    on). One node (the embedded default) owns every partition."""

    # Fixed once a database has data (a node refuses another number).
    partitions: int = Field(default=64, ge=1, le=4096)
    lease_s: float = Field(default=10.0, ge=1.0, le=600.0)


class BackoffSettings(Section):
    min_s: float = Field(default=0.005, ge=0)
    max_s: float = Field(default=5.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    jitter: float = Field(default=0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min_s > self.max_s:
            raise ValueError(f"min_s ({self.min_s}) must be <= max_s ({self.max_s})")
        return self


class MailboxSettings(Section):
    capacity: int = Field(default=10_000, ge=1)
    overflow: Literal["block", "refuse"] = "block"
    block_timeout_s: float = Field(default=2.0, ge=0)


class Pools(Section):
    session_shards: int = Field(default=4, ge=1, le=1024)
    outbound_workers: int = Field(default=4, ge=1, le=1024)
    media_workers: int = Field(default=2, ge=1, le=1024)
    assist_workers: int = Field(default=2, ge=1, le=1024)
    passivate_after_s: float = Field(default=300.0, gt=0)


class SupervisorOverride(Section):
    """Tuning of one supervisor; unset fields fall back to ``[supervision]``."""

    max_restarts: int | None = Field(default=None, ge=0)
    period_s: float | None = Field(default=None, gt=0)
    strategy: StrategyName | None = None


class SupervisorTuning(Section):
    """The effective flags of one supervisor, overrides applied."""

    strategy: StrategyName
    max_restarts: int
    period_s: float


class Supervision(Section):
    max_restarts: int = Field(default=5, ge=0)
    period_s: float = Field(default=10.0, gt=0)
    shutdown_s: float = Field(default=5.0, gt=0)
    start_timeout_s: float = Field(default=5.0, gt=0)
    message_retries: int = Field(default=1, ge=0)
    # A tenant or number removed by a reload keeps its actors until its work in
    # flight is done (sends, slow steps), at most this long.
    retire_timeout_s: float = Field(default=600.0, gt=0)
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)
    mailbox: MailboxSettings = Field(default_factory=MailboxSettings)
    pools: Pools = Field(default_factory=Pools)
    overrides: dict[SupervisorPath, SupervisorOverride] = Field(default_factory=dict)

    def tuning_for(self, path: str, default_strategy: StrategyName) -> SupervisorTuning:
        """Flags for the supervisor at ``path`` (e.g. ``inbound/sessions``):
        its override where set, else these defaults and ``default_strategy``
        (the strategy is a property of the tree's shape, so the caller knows it)."""
        override = self.overrides.get(path, SupervisorOverride())
        return SupervisorTuning(
            strategy=override.strategy or default_strategy,
            max_restarts=(
                self.max_restarts if override.max_restarts is None else override.max_restarts
            ),
            period_s=self.period_s if override.period_s is None else override.period_s,
        )


class Limits(Section):
    # Meta's pair rate: 1 message per 6 s to one customer, bursts up to 45.
    pair_rate_per_6s: int = Field(default=1, ge=1)
    pair_burst: int = Field(default=45, ge=1)
    media_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    clamd_socket: str | None = Field(default=None, min_length=1)
    clamd_timeout_s: float = Field(default=10.0, gt=0)
    # Graph calls of outbound sends under way at once (coroutines on one loop, connections).
    send_in_flight: int = Field(default=32, ge=1, le=1024)
    # Fraction of a number's throughput left unused, so that calls leaving a
    # few milliseconds late never bunch up above Meta's limit on arrival.
    throughput_headroom: float = Field(default=0.02, ge=0, lt=0.5)
    # Meta retries a webhook for up to 7 days, so dedupe remembers wamids that long.
    dedupe_ttl_s: int = Field(default=7 * 24 * 3600, ge=1)
    dedupe_memory_entries: int = Field(default=100_000, ge=1)
    # Feed events queued per websocket client before it is dropped as too slow.
    feed_queue_max: int = Field(default=1000, ge=1)
    # ... and bytes of them (about: their text and a fixed overhead each).
    feed_queue_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    # Seconds a send to a feed client may wait (its buffers full: it stopped
    # reading) before it is dropped with 4008 and resumes with since.
    feed_send_timeout_s: float = Field(default=20.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.pair_burst < self.pair_rate_per_6s:
            raise ValueError(
                f"pair_burst ({self.pair_burst}) must be >= pair_rate_per_6s"
                f" ({self.pair_rate_per_6s})"
            )
        return self


class Inbound(Section):
    """Flow control from the journal to the session shards.

    The journal is the queue: the dispatcher hands shards at most these
    windows of unsettled updates and reads more as they are settled, so a
    backlog of any size waits on disk, never in mailboxes or memory. A
    conversation (or firm) without room is passed over and read again
    later, so its backlog never holds up another's."""

    conversation_window: int = Field(default=64, ge=1)
    tenant_window: int = Field(default=1024, ge=1)
    """At most half of ``[supervision.mailbox] capacity`` applies (a restarted
    dispatcher hands out again what the shards still hold), so the
    dispatcher never waits for room in a shard's mailbox."""
    window: int = Field(default=4096, ge=1)
    window_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    """Bytes of webhook body (each update's share) handed out and unsettled."""
    batch_max: int = Field(default=64, ge=1, le=4096)
    """Updates a shard gets in one message, and commits in one transaction."""
    max_behind: int = Field(default=500_000, ge=1)
    """Updates passed over (left in the journal; about 40 bytes of memory
    each for their positions) before the reader stops reading ahead."""
    parsed_cache_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    """Bodies' bytes of recently parsed entries kept, so entries read again
    for conversations passed over are not parsed again."""
    stall_after_s: float = Field(default=120.0, gt=0)
    """A backlog that has not moved for this long makes ``/healthz`` fail."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.conversation_window <= self.tenant_window <= self.window:
            raise ValueError(
                f"conversation_window ({self.conversation_window}) <= tenant_window"
                f" ({self.tenant_window}) <= window ({self.window}) must hold"
            )
        return self


class Breaker(Section):
    failure_threshold: int = Field(default=5, ge=1)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    window: int = Field(default=20, ge=1)
    cooldown_s: float = Field(default=5.0, gt=0)
    cooldown_max_s: float = Field(default=300.0, gt=0)
    half_open_probes: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.cooldown_s > self.cooldown_max_s:
            raise ValueError(
                f"cooldown_s ({self.cooldown_s}) must be <= cooldown_max_s ({self.cooldown_max_s})"
            )
        return self


class Retry(Section):
    max_attempts: int = Field(default=6, ge=1)
    base_s: float = Field(default=1.0, gt=0)
    max_s: float = Field(default=60.0, gt=0)
    # Seconds to wait for Meta's status webhook before sending again a message
    # whose outcome is unknown (a 5xx, a timeout, a crash mid-call).
    settle_grace_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.base_s > self.max_s:
            raise ValueError(f"base_s ({self.base_s}) must be <= max_s ({self.max_s})")
        return self


class Admin(Section):
    allow_fault_injection: bool = False


class Assist(Section):
    """The intake classifier: the built-in rules, or an HTTP endpoint that
    receives masked text only and falls back to the rules when it fails."""

    url: str | None = Field(default=None, pattern=r"^https?://")
    timeout_s: float = Field(default=2.0, gt=0)
    max_in_flight: int = Field(default=16, ge=1, le=256)
    """Remote calls under way at once (each on a thread of a bounded pool),
    so one slow answer holds up only its own conversation."""


class Security(Section):
    require_master_key: bool = False


class Logging(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class Settings(Section):
    tenants: list[Tenant] = Field(default_factory=list)
    templates: list[Template] = Field(default_factory=list)
    server: Server = Field(default_factory=Server)
    storage: Storage = Field(default_factory=Storage)
    cluster: Cluster = Field(default_factory=Cluster)
    supervision: Supervision = Field(default_factory=Supervision)
    limits: Limits = Field(default_factory=Limits)
    inbound: Inbound = Field(default_factory=Inbound)
    breaker: Breaker = Field(default_factory=Breaker)
    retry: Retry = Field(default_factory=Retry)
    admin: Admin = Field(default_factory=Admin)
    assist: Assist = Field(default_factory=Assist)
    security: Security = Field(default_factory=Security)
    logging: Logging = Field(default_factory=Logging)

    _tenants: dict[str, Tenant] = PrivateAttr(default_factory=dict)
    _numbers: dict[str, Tenant] = PrivateAttr(default_factory=dict)
    _templates: dict[tuple[str, str, str], Template] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Self:
        context = info.context or {}
        if not context.get(DEFER_CROSS_CHECKS):
            problems = cross_issues(self.model_dump())
            if problems:
                raise ValueError("; ".join(f"{key}: {reason}" for key, reason in problems))
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._tenants = {tenant.id: tenant for tenant in self.tenants}
        self._numbers = {
            number.id: tenant for tenant in self.tenants for number in tenant.phone_numbers
        }
        self._templates = {(t.tenant, t.name, t.language): t for t in self.templates}

    def public_dict(self) -> dict[str, Any]:
        """The running config as JSON-ready data. Settings hold no secrets
        (those come from the environment); tenants appear by token hash only."""
        return self.model_dump(mode="json")

    def tenant(self, tenant_id: str) -> Tenant:
        """The tenant with this id; ``KeyError`` when unknown."""
        return self._tenants[tenant_id]

    def tenant_for_phone_number(self, phone_number_id: str) -> Tenant | None:
        """The tenant owning Meta's ``phone_number_id``, ``None`` for an unknown number."""
        return self._numbers.get(phone_number_id)

    def tenant_id_for(self, phone_number_id: str) -> str | None:
        """The id of the tenant owning ``phone_number_id``, ``None`` for an unknown number."""
        tenant = self._numbers.get(phone_number_id)
        return None if tenant is None else tenant.id

    def phone_number(self, phone_number_id: str) -> PhoneNumber | None:
        """The configured number with this id, ``None`` when no tenant has it."""
        tenant = self._numbers.get(phone_number_id)
        if tenant is None:
            return None
        return next(n for n in tenant.phone_numbers if n.id == phone_number_id)

    def template(self, tenant_id: str, name: str, language: str) -> Template | None:
        return self._templates.get((tenant_id, name, language))

    def shards_for(self, tenant_id: str) -> int:
        """Session shards of a tenant: its own ``shards`` or the pool default."""
        return self.shards_of(self.tenant(tenant_id))

    def shards_of(self, tenant: Tenant) -> int:
        """``shards_for`` a tenant given whole (one that left the config too)."""
        return self.supervision.pools.session_shards if tenant.shards is None else tenant.shards
