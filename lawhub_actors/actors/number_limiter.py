"""A business number's limiter: Meta's throughput and pair-rate limits as
GCRA permits (:mod:`lawhub_actors.core.gcra`), one actor per number at
:func:`paths.limiter_of`. Its state lives in memory, or in Redis when
several processes share the number (:mod:`lawhub_actors.adapters.rate_store`).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from lawhub_actors.actors.services import Services
from lawhub_actors.adapters import outbound_store
from lawhub_actors.adapters.rate_store import RateStore
from lawhub_actors.core.accept import TIER_WINDOW_S
from lawhub_actors.core.gcra import Rate
from lawhub_actors.settings import Limits, PhoneNumber, Settings
from supervisors import Actor

TIER_REFRESH_S = 5.0
"""How often a limiter re-reads its number's tier use for operators."""
_tickets = itertools.count(1)
"""Tells one limiter incarnation's refresh ticks from another's."""


@dataclass(frozen=True, slots=True)
class PairPermit:
    """Ask: seconds until the recipient's pair-rate slot (reserved now); the
    recipient by its ref (the limiter's state may live in Redis: no number)."""

    recipient: str


@dataclass(frozen=True, slots=True)
class ThroughputPermit:
    """Ask, right before a call leaves: seconds to wait for the number's
    throughput slot (reserved now); see :func:`late_after`."""


def throughput_rate(number: PhoneNumber, limits: Limits) -> Rate:
    """The number's throughput, less the headroom kept for late departures."""
    return Rate(number.throughput_mps * (1.0 - limits.throughput_headroom))


LATE_FLOOR_S = 0.001
"""The least lateness a call is allowed (a headroom of 0 would otherwise
send every call round for a new slot)."""


def late_after(headroom: float) -> float:
    """How late a call may leave its slot before it must take a new one.

    Meta counts arrivals in a sliding second. Sends spaced at ``R (1 - h)``
    keep every such second at or below ``R`` as long as each arrives at most
    ``J = h / (1 - h)`` seconds after its slot (20 ms at the default 2 %),
    whatever ``R`` is: a second at Meta then holds only sends whose slots lie
    within a span of ``1 + J`` seconds, at most ``(1 + J) R (1 - h) = R`` of
    them. Half of ``J`` is left to the network, half to the call's own
    lateness (before this rule, half an interval: 25 ms at 20/s, more than
    the whole budget)."""
    return max(headroom / (1.0 - headroom) / 2, LATE_FLOOR_S)


def pair_rate(limits: Limits) -> Rate:
    """Meta's pair rate: ``pair_rate_per_6s`` messages per 6 s to one customer."""
    return Rate.every(6.0 / limits.pair_rate_per_6s, burst=limits.pair_burst)


@dataclass(frozen=True, slots=True)
class _Refresh:
    """Self-sent every ``TIER_REFRESH_S``: show the tier's use again. Carries
    its incarnation, so a restarted limiter does not tick twice."""

    owner: int


class NumberLimiter(Actor):
    """One business number's limits: throughput (GCRA at ``throughput_mps``)
    and the pair rate to each recipient, reserved separately: the pair slot
    when a message is taken up, the throughput slot by the call itself just
    before it leaves (reserving both at once would hold the whole number's
    throughput until one busy recipient's slot came round).

    Rates follow the live config (a reload retunes them; reservations made
    keep their place). A number that left the config keeps its last rates
    while its last sends finish."""

    def __init__(self, services: Services, number: PhoneNumber, store: RateStore) -> None:
        self._services = services
        self._number = number
        self._store = store
        self._seen: Settings | None = None
        self._throughput = self._pair = Rate(1.0)
        self._tier_users = 0
        self._tier_read_at = -TIER_REFRESH_S
        self._ticket = next(_tickets)
        self.granted = 0
        self.waited_s = 0.0

    def on_start(self) -> None:
        self._follow_config()
        self.context.tell_self_later(TIER_REFRESH_S, _Refresh(self._ticket))

    def receive(self, message: Any) -> Any:
        self._follow_config()
        if isinstance(message, _Refresh):  # the 24-hour window moves even when nothing is sent
            if message.owner == self._ticket:
                self._show()
                self.context.tell_self_later(TIER_REFRESH_S, message)
            return None
        if isinstance(message, PairPermit):
            return self._store.reserve(f"pair:{self._number.id}:{message.recipient}", self._pair)
        if isinstance(message, ThroughputPermit):
            wait = self._store.reserve(f"tp:{self._number.id}", self._throughput)
            self.granted += 1
            self.waited_s += wait
            self._show(read_tier=False)  # the answer is a slot: no store read before it
            return wait
        return super().receive(message)

    def _follow_config(self) -> None:
        settings = self._services.settings
        if settings is self._seen:
            return
        self._seen = settings
        self._number = settings.phone_number(self._number.id) or self._number
        self._throughput = throughput_rate(self._number, settings.limits)
        self._pair = pair_rate(settings.limits)
        self._tier_read_at = -TIER_REFRESH_S
        self._show()

    def _show(self, *, read_tier: bool = True) -> None:
        """Operators' view: permits, waits, the rate now, and the tier's use
        (unique users in the moving 24 h, read at most every few seconds)."""
        now = time.monotonic()
        if read_tier and now - self._tier_read_at >= TIER_REFRESH_S:
            self._tier_read_at = now
            number_id = self._number.id
            self._tier_users = self._services.store.read_tx(
                lambda tx: outbound_store.tier_usage(tx, number_id, "", tx.now - TIER_WINDOW_S))[0]
        self.context.show(permits=self.granted, waited_s=round(self.waited_s, 3),
                          rate_per_s=round(self._throughput.per_second, 3),
                          tier=self._number.tier, tier_limit=self._number.unique_users_per_24h,
                          tier_users=self._tier_users)
