"""What a new configuration changes, and which of it the running gateway can take.

Pure functions over two validated :class:`Settings`; no I/O. A change is a
dotted key with its value before and after. Lists of things with an
identity are keyed by it, so adding a tenant reads ``tenants.firm-c`` rather
than shifting every later index: tenants and phone numbers by id, templates
by ``tenant/name/language``.

Most keys apply live (see docs/DESIGN.md, "Live configuration"). The keys
in :data:`RESTART_ONLY` are read once, when the process starts (the listening
socket, the store files, thread pools and clients sized at start): a reload
that changes one is refused as a whole, each such key named, so the running
config never half-applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lawhub_actors.settings import ConfigIssue, Settings

ABSENT = None
"""How a key that one side does not have is shown (TOML has no null)."""

RESTART_ONLY: tuple[str, ...] = (
    "server.host",
    "server.port",
    "server.processes",
    "server.webhook_max_bytes",
    "server.ingest",
    "server.ingest_nice",
    "server.max_connections",
    "server.idle_timeout_s",
    "server.headers_timeout_s",
    "server.body_timeout_s",
    "storage.",
    "cluster.",
    "assist.",
    "security.",
    "logging.",
    "limits.clamd_socket",
    "limits.clamd_timeout_s",
    "limits.media_max_bytes",
    "limits.send_in_flight",
    "limits.dedupe_ttl_s",
    "limits.dedupe_memory_entries",
    "limits.feed_queue_max",
    "limits.feed_queue_bytes",
    "limits.feed_send_timeout_s",
)
"""Keys (or ``section.`` prefixes) that take effect only at a restart."""

_KEYED_LISTS: dict[str, tuple[str, ...]] = {
    "tenants": ("id",),
    "phone_numbers": ("id",),
    "templates": ("tenant", "name", "language"),
}


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "from": self.before, "to": self.after}


def diff(old: Settings, new: Settings) -> list[Change]:
    """Every leaf that differs, in key order."""
    before = _flatten(old.model_dump(mode="json"))
    after = _flatten(new.model_dump(mode="json"))
    return [
        Change(key, before.get(key, ABSENT), after.get(key, ABSENT))
        for key in sorted(before.keys() | after.keys())
        if before.get(key, ABSENT) != after.get(key, ABSENT)
    ]


def restart_only(changes: list[Change], file: str) -> list[ConfigIssue]:
    """One issue per change the running process cannot take."""
    return [
        ConfigIssue(file, change.key,
                    f"read only at start (running: {change.before!r}, asked: {change.after!r});"
                    " restart the gateway to change it")
        for change in changes
        if any(change.key == key or (key.endswith(".") and change.key.startswith(key))
               for key in RESTART_ONLY)
    ]


def keep_node_own(current: Settings, stored: Settings) -> Settings:
    """``stored`` (a config another node applied) with this node's own value
    for every key read only at start: its address, storage, cluster and
    such stay as it started with; everything else is the cluster's."""
    sections: dict[str, Any] = {}
    for key in RESTART_ONLY:
        section, _, name = key.partition(".")
        if not name:
            sections[section] = getattr(current, section)
            continue
        mine = sections.get(section, getattr(stored, section))
        sections[section] = mine.model_copy(
            update={name: getattr(getattr(current, section), name)})
    return stored.model_copy(update=sections)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for name, item in value.items():
            out.update(_flatten(item, f"{prefix}.{name}" if prefix else str(name)))
        return out
    identity = _KEYED_LISTS.get(prefix.rpartition(".")[2])
    if isinstance(value, list) and identity is not None and all(
            isinstance(item, dict) for item in value):
        out = {}
        for item in value:
            key = "/".join(str(item.get(part)) for part in identity)
            out.update(_flatten(item, f"{prefix}.{key}"))
        return out
    return {prefix: value}
