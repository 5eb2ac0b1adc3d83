"""How much the dispatcher may hand out, and what operators are told of the
backlog: the window sizes from the live config, and the log lines that mark
a backlog's start and end with its size."""

from __future__ import annotations

import time

import structlog

from lawhub_actors.actors.services import Services
from lawhub_actors.core.flow import Limits

log = structlog.get_logger("lawhub.dispatcher")

BACKLOG_AT = 1_000
"""Unprocessed entries from which a backlog is logged (start and end)."""


def limits_of(services: Services) -> Limits:
    """The windows from the live config; a tenant's is at most half of a
    shard's mailbox (a restarted dispatcher hands out again what the shards
    still hold), so the dispatcher never waits for room there."""
    settings = services.settings
    inbound = settings.inbound
    capacity = settings.supervision.mailbox.capacity
    per_tenant = max(1, min(inbound.tenant_window, capacity // 2))
    return Limits(
        per_conversation=min(inbound.conversation_window, per_tenant),
        per_tenant=per_tenant,
        total=max(inbound.window, per_tenant),
        total_bytes=inbound.window_bytes,
    )


class BacklogWatch:
    """Logs ``backlog_started`` once the lag reaches :data:`BACKLOG_AT`, and
    ``backlog_ended`` with its peak and duration once it is back to 0."""

    def __init__(self) -> None:
        self._since: float | None = None
        self._peak = 0

    def saw(self, lag: int) -> None:
        if self._since is None:
            if lag >= BACKLOG_AT:
                self._since = time.monotonic()
                self._peak = lag
                log.warning("backlog_started", entries=lag)
            return
        self._peak = max(self._peak, lag)
        if lag <= 0:
            log.info("backlog_ended", peak_entries=self._peak,
                     seconds=round(time.monotonic() - self._since, 1))
            self._since = None
