"""The gateway's configuration: ``config/lawhub.toml`` plus secrets from the environment.

Every table forbids unknown keys (a typo is an error, never a silently
ignored setting) and every top-level section is optional, so the minimal
config of CONTRACT.md runs. Values are strict: ``port = "8080"`` is refused
rather than coerced. The exceptions are numbers where TOML users naturally
write them: a tier of ``250`` and a ``phone_number_id`` as an integer.

``check`` and ``check_text`` report every problem at once as
:class:`ConfigIssue` values (file, dotted key, reason); ``load`` and
``parse_text`` return :class:`Settings` or raise :class:`ConfigError`
carrying the same list. The cross-field rules (unique ids, templates of
known tenants) run on the raw table too, so they are reported alongside
field errors, not only once those are fixed.

Secrets never live in config files: :class:`Secrets` reads them from the
environment and keeps them in ``SecretStr``/``SecretBytes`` so no repr shows
them.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretBytes,
    SecretStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

ENV_FILE = "environment"
DEFAULT_GRAPH_BASE_URL = "https://graph.facebook.com/v21.0"
DEFAULT_DATA_DIR = "var"
MASTER_KEY_BYTES = 32

# Keys of file-level issues, which have no dotted path.
FILE_KEY = "(file)"
SYNTAX_KEY = "(syntax)"

# Skips the cross-field validator of Settings; check_text runs those rules on
# the raw table itself so they are reported together with field errors.
_DEFER_CROSS_CHECKS = "defer_cross_checks"


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem with a config: where (file, dotted key) and why."""

    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.reason}"


class ConfigError(Exception):
    """A config (or the environment) is invalid; ``issues`` lists every problem."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _matching(pattern: str, description: str) -> AfterValidator:
    """A string constraint whose error says what is expected in words, not as a regex."""
    compiled = re.compile(pattern)

    def validate(value: str) -> str:
        if not compiled.fullmatch(value):
            raise PydanticCustomError("string_format", f"must be {description}")
        return value

    return AfterValidator(validate)


def _int_to_str(value: object) -> object:
    """TOML users write ids and tiers as numbers; accept those as their digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Slug = Annotated[
    str,
    _matching(
        r"[a-z0-9]+(?:-[a-z0-9]+)*",
        "a slug: lowercase letters, digits and single dashes, not at either end",
    ),
    StringConstraints(max_length=63),
]
PhoneNumberId = Annotated[
    str,
    BeforeValidator(_int_to_str),
    _matching(r"[0-9]{1,32}", "Meta's phone_number_id: digits only"),
]
Sha256Hex = Annotated[str, _matching(r"[0-9a-f]{64}", "a SHA-256 digest: 64 lowercase hex digits")]
Tier = Annotated[
    Literal["250", "2K", "10K", "100K", "unlimited"],
    BeforeValidator(_int_to_str),
]
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SupervisorPath = Annotated[
    str,
    _matching(
        r"[a-z0-9][a-z0-9_-]*(?:/[a-z0-9][a-z0-9_-]*)*",
        "a supervisor path such as 'inbound' or 'inbound/sessions'",
    ),
]

# Unique customers a number may start conversations with per moving 24 hours.
TIER_UNIQUE_USERS: dict[str, int | None] = {
    "250": 250,
    "2K": 2_000,
    "10K": 10_000,
    "100K": 100_000,
    "unlimited": None,
}


class PhoneNumber(_Section):
    id: PhoneNumberId
    display: str = Field(min_length=1)
    tier: Tier
    throughput_mps: int = Field(default=80, ge=1, le=1000)

    @property
    def unique_users_per_24h(self) -> int | None:
        """The tier as a number (``None``: unlimited)."""
        return TIER_UNIQUE_USERS[self.tier]


class AutoReply(_Section):
    """One automatic reply: freeform ``text`` (it answers a message, so the
    24-hour window is open), or an approved ``template``."""

    text: str | None = Field(default=None, min_length=1, max_length=4096)
    template: str | None = Field(default=None, min_length=1)
    language: str | None = None
    params: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.text is None) == (self.template is None):
            raise ValueError("give exactly one of text or template")
        if self.template is not None and self.language is None:
            raise ValueError("a template needs its language")
        return self

    def content(self) -> dict[str, object]:
        if self.text is not None:
            return {"type": "text", "text": self.text}
        return {"type": "template", "template": {
            "name": self.template, "language": self.language, "params": list(self.params)}}


def _working_week() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri"]


class AutoReplies(_Section):
    """A tenant's automatic replies (each optional) and its office hours."""

    timezone: str = "Asia/Jakarta"
    office_hours: Annotated[
        str, _matching(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]-(?:[01][0-9]|2[0-4]):[0-5][0-9]",
                       "HH:MM-HH:MM, such as 08:00-17:00")
    ] = "08:00-17:00"
    office_days: list[Weekday] = Field(default_factory=_working_week)
    greeting: AutoReply | None = None
    after_hours: AutoReply | None = None
    urgent: AutoReply | None = None

    @model_validator(mode="after")
    def _zone(self) -> Self:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self


class Tenant(_Section):
    id: Slug
    api_token_sha256: Sha256Hex
    name: str | None = None
    shards: int | None = Field(default=None, ge=1, le=1024)
    phone_numbers: list[PhoneNumber] = Field(default_factory=list)
    auto_replies: AutoReplies | None = None


class Template(_Section):
    tenant: Slug
    name: Annotated[
        str, _matching(r"[a-z0-9_]{1,512}", "a Meta template name: lowercase letters, digits, _")
    ]
    language: Annotated[
        str, _matching(r"[a-z]{2,3}(?:_[A-Z]{2})?", "a language code such as 'id', 'en' or 'en_US'")
    ]
    category: Literal["marketing", "utility", "authentication"]
    status: Literal["approved", "pending", "rejected", "paused"]
    params: int = Field(ge=0)


class Server(_Section):
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=0, le=65535)  # 0: the OS picks a free port
    webhook_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1)
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    # "process": the webhook's ack path (HTTP, HMAC, journal) runs in a process
    # of its own on the same port, so processing never slows Meta's acks
    # (where connections cannot be passed between processes: inline).
    ingest: Literal["inline", "process"] = "process"
    # The ack process's nice value (-20..0; 0: as the rest): ahead of the
    # actors for a core when both want one, at the feed's expense (measured:
    # -5 halves the median ack under overload and doubles the feed's at
    # 1,000/s). Needs the privilege to raise a priority (root, CAP_SYS_NICE,
    # systemd's LimitNICE=); without it, it runs as it is (logged).
    ingest_nice: int = Field(default=0, ge=-20, le=0)
    # Connections one process holds; over it the one idle longest is closed
    # to make room, and when none is idle the new one is refused (503).
    max_connections: int = Field(default=10_000, ge=1)
    # Seconds a connection may send nothing (after it opened or was answered),
    # a request's headers may take from its first byte, and its body from its
    # headers (408 for the last two); see web/connections.py.
    idle_timeout_s: float = Field(default=30.0, gt=0)
    headers_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)


class Storage(_Section):
    sqlite_file: str = Field(default="lawhub.sqlite3", min_length=1)
    journal_batch_max: int = Field(default=256, ge=1)
    journal_tail_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    """Bytes of the newest webhook bodies the journal keeps in memory for the
    dispatcher (a body bigger than this is read back from the database)."""

    def sqlite_path(self, data_dir: Path) -> Path:
        """The database file: ``sqlite_file`` as is when absolute, else under ``data_dir``."""
        return data_dir / self.sqlite_file


class Backoff(_Section):
    min_s: float = Field(default=0.005, ge=0)
    max_s: float = Field(default=5.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    jitter: float = Field(default=0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min_s > self.max_s:
            raise ValueError(f"min_s ({self.min_s}) must be <= max_s ({self.max_s})")
        return self


class Mailbox(_Section):
    capacity: int = Field(default=10_000, ge=1)
    overflow: Literal["block", "refuse"] = "block"
    block_timeout_s: float = Field(default=2.0, ge=0)


class Pools(_Section):
    session_shards: int = Field(default=4, ge=1, le=1024)
    outbound_workers: int = Field(default=4, ge=1, le=1024)
    media_workers: int = Field(default=2, ge=1, le=1024)
    assist_workers: int = Field(default=2, ge=1, le=1024)
    passivate_after_s: float = Field(default=300.0, gt=0)


class SupervisorOverride(_Section):
    """Tuning of one supervisor; unset fields fall back to ``[supervision]``."""

    max_restarts: int | None = Field(default=None, ge=0)
    period_s: float | None = Field(default=None, gt=0)
    strategy: Strategy | None = None


class SupervisorTuning(_Section):
    """The effective flags of one supervisor, overrides applied."""

    strategy: Strategy
    max_restarts: int
    period_s: float


class Supervision(_Section):
    max_restarts: int = Field(default=5, ge=0)
    period_s: float = Field(default=10.0, gt=0)
    shutdown_s: float = Field(default=5.0, gt=0)
    start_timeout_s: float = Field(default=5.0, gt=0)
    message_retries: int = Field(default=1, ge=0)
    # A tenant or number removed by a reload keeps its actors until its work in
    # flight is done (sends, slow steps), at most this long.
    retire_timeout_s: float = Field(default=600.0, gt=0)
    backoff: Backoff = Field(default_factory=Backoff)
    mailbox: Mailbox = Field(default_factory=Mailbox)
    pools: Pools = Field(default_factory=Pools)
    overrides: dict[SupervisorPath, SupervisorOverride] = Field(default_factory=dict)

    def tuning_for(self, path: str, default_strategy: Strategy) -> SupervisorTuning:
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


class Limits(_Section):
    # Meta's pair rate: 1 message per 6 s to one customer, bursts up to 45.
    pair_rate_per_6s: int = Field(default=1, ge=1)
    pair_burst: int = Field(default=45, ge=1)
    media_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    clamd_socket: str | None = Field(default=None, min_length=1)
    clamd_timeout_s: float = Field(default=10.0, gt=0)
    # Graph calls of outbound sends under way at once (threads and connections).
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


class Inbound(_Section):
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


class Breaker(_Section):
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


class Retry(_Section):
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


class Admin(_Section):
    allow_fault_injection: bool = False


class Assist(_Section):
    """The intake classifier: the built-in rules, or an HTTP endpoint that
    receives masked text only and falls back to the rules when it fails."""

    url: str | None = Field(default=None, pattern=r"^https?://")
    timeout_s: float = Field(default=2.0, gt=0)
    max_in_flight: int = Field(default=16, ge=1, le=256)
    """Remote calls under way at once (each on a thread of a bounded pool),
    so one slow answer holds up only its own conversation."""


class Security(_Section):
    require_master_key: bool = False


class Logging(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class Settings(_Section):
    tenants: list[Tenant] = Field(default_factory=list)
    templates: list[Template] = Field(default_factory=list)
    server: Server = Field(default_factory=Server)
    storage: Storage = Field(default_factory=Storage)
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
        if not context.get(_DEFER_CROSS_CHECKS):
            problems = _cross_issues(self.model_dump())
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


def _cross_issues(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rules spanning several entries, as (dotted key, reason) pairs.

    Works on the raw TOML table, tolerating entries of the wrong shape
    (those are reported by field validation), so that these problems show up
    in the same report as field errors.
    """
    tenant_ids = _FirstSeen()
    problems = _tenant_issues(data.get("tenants"), tenant_ids)
    problems += _template_issues(data.get("templates"), tenant_ids)
    return problems



class _FirstSeen:
    """Where each value was first seen, to report the duplicates that follow."""

    def __init__(self) -> None:
        self.at: dict[object, str] = {}

    def clash(self, value: object, where: str) -> str | None:
        """Where ``value`` was seen before (``None``: first time, now recorded)."""
        if value in self.at:
            return self.at[value]
        self.at[value] = where
        return None


def _tenant_issues(tenants: object, tenant_ids: _FirstSeen) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    tokens, numbers = _FirstSeen(), _FirstSeen()
    for i, tenant in _entries(tenants):
        where = f"tenants[{i}]"
        tenant_id = tenant.get("id")
        if isinstance(tenant_id, str) and (first := tenant_ids.clash(tenant_id, where)):
            problems.append(
                (f"{where}.id", f"duplicate tenant id {tenant_id!r} (first at {first})")
            )
        token = tenant.get("api_token_sha256")
        if isinstance(token, str) and (first := tokens.clash(token, where)):
            problems.append((f"{where}.api_token_sha256", f"same API token as {first}"))
        for j, number in _entries(tenant.get("phone_numbers")):
            number_id = _int_to_str(number.get("id"))
            number_where = f"{where}.phone_numbers[{j}]"
            if isinstance(number_id, str) and (first := numbers.clash(number_id, number_where)):
                reason = f"duplicate phone_number_id {number_id!r} (first at {first})"
                problems.append((f"{number_where}.id", reason))
    return problems


def _template_issues(templates: object, tenant_ids: _FirstSeen) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    identities = _FirstSeen()
    for k, template in _entries(templates):
        where = f"templates[{k}]"
        owner = template.get("tenant")
        if isinstance(owner, str) and owner not in tenant_ids.at:
            known = ", ".join(sorted(map(str, tenant_ids.at))) or "none"
            problems.append((f"{where}.tenant", f"unknown tenant {owner!r} (known: {known})"))
        identity = (owner, template.get("name"), template.get("language"))
        if all(isinstance(part, str) for part in identity) and (
            first := identities.clash(identity, where)
        ):
            reason = "duplicate (tenant, name, language) " + f"{identity} (first at {first})"
            problems.append((where, reason))
    return problems


def _entries(value: object) -> list[tuple[int, Mapping[str, Any]]]:
    if not isinstance(value, list):
        return []
    return [(i, entry) for i, entry in enumerate(value) if isinstance(entry, Mapping)]


def check_text(text: str, file: str) -> list[ConfigIssue]:
    """Every problem of a TOML document; empty when it is a valid config."""
    return _parse(text, file)[1]


def parse_text(text: str, file: str = "<text>") -> Settings:
    """Settings from a TOML document; ``ConfigError`` with every problem otherwise."""
    settings, issues = _parse(text, file)
    if settings is None:
        raise ConfigError(issues)
    return settings


def check(path: str | os.PathLike[str]) -> list[ConfigIssue]:
    """Every problem of the config file at ``path``; empty when valid."""
    text, issues = _read(path)
    if text is None:
        return issues
    return check_text(text, str(path))


def load(path: str | os.PathLike[str]) -> Settings:
    """Settings from the file at ``path``; ``ConfigError`` with every problem otherwise."""
    return load_with_text(path)[0]


def load_with_text(path: str | os.PathLike[str]) -> tuple[Settings, str]:
    """``load``, with the text it read (kept for operators to edit)."""
    text, issues = _read(path)
    if text is None:
        raise ConfigError(issues)
    return parse_text(text, str(path)), text


def _read(path: str | os.PathLike[str]) -> tuple[str | None, list[ConfigIssue]]:
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None, [ConfigIssue(file, FILE_KEY, "file not found")]
    except IsADirectoryError:
        return None, [ConfigIssue(file, FILE_KEY, "is a directory, not a file")]
    except OSError as exc:
        return None, [ConfigIssue(file, FILE_KEY, f"cannot read: {exc.strerror or exc}")]
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        reason = f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at line {line} (offset {exc.start})"
        return None, [ConfigIssue(file, FILE_KEY, reason)]


def _parse(text: str, file: str) -> tuple[Settings | None, list[ConfigIssue]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message carries "(at line L, column C)".
        return None, [ConfigIssue(file, SYNTAX_KEY, f"TOML syntax error: {exc}")]
    issues = [ConfigIssue(file, key, reason) for key, reason in _cross_issues(data)]
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data, context={_DEFER_CROSS_CHECKS: True})
    except ValidationError as exc:
        issues = [_issue(file, error) for error in exc.errors()] + issues
    if issues:
        return None, issues
    return settings, []


def _issue(file: str, error: ErrorDetails) -> ConfigIssue:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    if loc and loc[-1] == "[key]":  # the error is about a table's key itself
        loc = loc[:-1]
    kind: str = error["type"]
    if kind == "extra_forbidden":
        reason = "unknown key"
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        if close:
            reason += f"; did you mean {close[0]!r}?"
        elif known:
            reason += f" (expected one of: {', '.join(known)})"
    elif kind == "missing":
        reason = "required key is missing"
    else:
        reason = str(error["msg"]).removeprefix("Value error, ")
        if not kind.startswith("value_error") and isinstance(error["input"], str | int | float):
            reason += f" (got {error['input']!r})"
    return ConfigIssue(file, _dotted(loc) or "(root)", reason)


def _dotted(loc: tuple[str | int, ...]) -> str:
    """``('tenants', 0, 'phone_numbers', 1, 'tier')`` -> ``tenants[0].phone_numbers[1].tier``;
    keys that are not bare TOML keys are quoted, as in the file."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if part.replace("_", "").replace("-", "").isalnum() else f'"{part}"'
        out += f".{name}" if out else name
    return out


def _known_keys(loc: tuple[str | int, ...]) -> list[str]:
    """The keys the table at ``loc`` accepts, by walking the schema's annotations."""
    node: Any = Settings
    for part in loc:
        node = _unwrap(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            if field is None:
                return []
            node = field.annotation
        else:
            args = typing.get_args(node)
            node = args[-1] if args else None
    node = _unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return []


def _unwrap(node: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the type that matters."""
    while True:
        origin = typing.get_origin(node)
        if origin is Annotated:
            node = typing.get_args(node)[0]
        elif origin in (typing.Union, types.UnionType):
            node = next(arg for arg in typing.get_args(node) if arg is not type(None))
        else:
            return node


class Secrets(BaseModel):
    """What the environment provides (CONTRACT.md); reprs never show a secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_secret: SecretStr | None = None
    verify_token: SecretStr | None = None
    access_token: SecretStr | None = None
    graph_base_url: str = DEFAULT_GRAPH_BASE_URL
    master_key: SecretBytes | None = None
    master_key_version: int = 1
    """The version of ``master_key``: new data is sealed with it, and each
    sealed value records it, so keys can rotate."""
    retired_master_keys: dict[int, SecretBytes] = Field(default_factory=dict)
    """Earlier master keys by version: they only open what they sealed."""
    admin_token: SecretStr | None = None
    redis_url: SecretStr | None = None
    data_dir: Path = Path(DEFAULT_DATA_DIR)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Secrets:
        """Read the ``LAWHUB_*`` variables (``os.environ`` by default). Empty
        values count as unset. ``ConfigError`` lists every malformed one."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        issues: list[ConfigIssue] = []
        graph = (get("LAWHUB_GRAPH_BASE_URL") or DEFAULT_GRAPH_BASE_URL).rstrip("/")
        parts = urlsplit(graph)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            issues.append(ConfigIssue(ENV_FILE, "LAWHUB_GRAPH_BASE_URL", "must be an http(s) URL"))
        master_key: bytes | None = None
        encoded = get("LAWHUB_MASTER_KEY")
        if encoded is not None:
            master_key, problem = _decode_master_key(encoded)
            if problem:
                issues.append(ConfigIssue(ENV_FILE, "LAWHUB_MASTER_KEY", problem))
        version, retired = _key_versions(
            get("LAWHUB_MASTER_KEY_VERSION"), get("LAWHUB_RETIRED_MASTER_KEYS"), issues
        )
        redis_url = get("LAWHUB_REDIS_URL")
        if redis_url is not None and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
            issues.append(
                ConfigIssue(
                    ENV_FILE, "LAWHUB_REDIS_URL", "must be a redis://, rediss:// or unix:// URL"
                )
            )
        if issues:
            raise ConfigError(issues)
        return cls(
            app_secret=_secret(get("LAWHUB_APP_SECRET")),
            verify_token=_secret(get("LAWHUB_VERIFY_TOKEN")),
            access_token=_secret(get("LAWHUB_ACCESS_TOKEN")),
            graph_base_url=graph,
            master_key=None if master_key is None else SecretBytes(master_key),
            master_key_version=version,
            retired_master_keys={v: SecretBytes(key) for v, key in retired.items()},
            admin_token=_secret(get("LAWHUB_ADMIN_TOKEN")),
            redis_url=_secret(redis_url),
            data_dir=Path(get("LAWHUB_DATA_DIR") or DEFAULT_DATA_DIR),
        )

    def values(self) -> list[str]:
        """Every secret as text, as it could appear in a log line (for redaction):
        the tokens, the master key in both base64 alphabets, the Redis URL and
        its password."""
        out = [
            secret.get_secret_value()
            for secret in (
                self.app_secret,
                self.verify_token,
                self.access_token,
                self.admin_token,
                self.redis_url,
            )
            if secret is not None
        ]
        master_keys = [*self.retired_master_keys.values()]
        if self.master_key is not None:
            master_keys.append(self.master_key)
        for secret in master_keys:
            key = secret.get_secret_value()
            out += [base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode()]
        if self.redis_url is not None:
            password = urlsplit(self.redis_url.get_secret_value()).password
            if password:
                out.append(password)
        return out


def _secret(value: str | None) -> SecretStr | None:
    return None if value is None else SecretStr(value)


def _key_versions(
    version_text: str | None, retired_text: str | None, issues: list[ConfigIssue]
) -> tuple[int, dict[int, bytes]]:
    """``LAWHUB_MASTER_KEY_VERSION`` (default 1) and ``LAWHUB_RETIRED_MASTER_KEYS``
    (``"<version>:<base64>,..."``); problems go to ``issues``, never with a key."""
    version, valid = 1, True
    if version_text is not None:
        valid = version_text.isdigit() and 1 <= int(version_text) <= 2**31
        if valid:
            version = int(version_text)
        else:
            issues.append(ConfigIssue(ENV_FILE, "LAWHUB_MASTER_KEY_VERSION",
                                      "must be a whole number from 1"))
    retired: dict[int, bytes] = {}
    for index, item in enumerate((retired_text or "").split(",")):
        if not item.strip():
            continue
        where = f"LAWHUB_RETIRED_MASTER_KEYS[{index}]"
        number, sep, encoded = item.strip().partition(":")
        if not sep or not number.isdigit() or int(number) < 1:
            issues.append(ConfigIssue(ENV_FILE, where, "must be <version>:<base64 key>"))
            continue
        if (valid and int(number) == version) or int(number) in retired:
            issues.append(ConfigIssue(ENV_FILE, where, f"version {number} is given twice"))
            continue
        key, problem = _decode_master_key(encoded)
        if key is None:
            issues.append(ConfigIssue(ENV_FILE, where, problem or "invalid key"))
        else:
            retired[int(number)] = key
    return version, retired


def _decode_master_key(encoded: str) -> tuple[bytes | None, str | None]:
    """Standard or URL-safe base64 of exactly 32 bytes. Errors never echo the value."""
    for alphabet in (b"+/", b"-_"):
        try:
            key = base64.b64decode(encoded, altchars=alphabet, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(key) != MASTER_KEY_BYTES:
            return None, (
                f"must be base64 of exactly {MASTER_KEY_BYTES} bytes, got {len(key)} bytes"
            )
        return key, None
    return None, f"not valid base64 (expected base64 of {MASTER_KEY_BYTES} bytes)"


def preflight(settings: Settings, secrets: Secrets) -> list[ConfigIssue]:
    """Problems that only show when config and environment meet, checked before serving."""
    if settings.security.require_master_key and secrets.master_key is None:
        return [
            ConfigIssue(
                ENV_FILE,
                "LAWHUB_MASTER_KEY",
                "not set, and [security] require_master_key = true refuses to generate one",
            )
        ]
    return []
