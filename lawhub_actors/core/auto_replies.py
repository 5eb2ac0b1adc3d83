"""Automatic replies (pure): which of a tenant's rules answer an inbound message.

Rules, each at most once per its key (the store keeps the keys, so a
replay or a second message never repeats one):

- ``greeting`` — to a new customer (a lead created by this message); key:
  the customer.
- ``after_hours`` — when the message arrives outside the tenant's office
  hours in its time zone; key: the customer and the local date, so a
  client writing all evening gets one notice, not one per message.
- ``urgent`` — when the message's intake is urgent (arrest, a hearing
  tomorrow); key: the message.

Deciding is all this does: the replies then go through exactly the checks
and path of a lawyer's send (consent, opt-out, window, template, limiter,
breaker, DLQ), so an opted-out customer gets nothing. The classifier only
reads; it never sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo


class Rule(StrEnum):
    GREETING = "greeting"
    AFTER_HOURS = "after_hours"
    URGENT = "urgent"


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class OfficeHours:
    zone: str
    opens: time
    closes: time
    days: frozenset[str]

    def open_at(self, at_epoch_s: float) -> bool:
        local = datetime.fromtimestamp(at_epoch_s, tz=ZoneInfo(self.zone))
        return DAYS[local.weekday()] in self.days and self.opens <= local.time() < self.closes

    def local_date(self, at_epoch_s: float) -> str:
        return datetime.fromtimestamp(at_epoch_s, tz=ZoneInfo(self.zone)).date().isoformat()


@dataclass(frozen=True, slots=True)
class Due:
    rule: Rule
    key: str
    """Once per key: the store records it with the reply."""


def due(
    *, rules: frozenset[Rule], hours: OfficeHours | None, tenant: str, customer: str, wamid: str,
    new_lead: bool, urgent: bool, at_epoch_s: float,
) -> list[Due]:
    """The replies a message calls for, in the order they go out."""
    out: list[Due] = []
    if Rule.GREETING in rules and new_lead:
        out.append(Due(Rule.GREETING, f"auto:greeting:{tenant}:{customer}"))
    if Rule.AFTER_HOURS in rules and hours is not None and not hours.open_at(at_epoch_s):
        day = hours.local_date(at_epoch_s)
        out.append(Due(Rule.AFTER_HOURS, f"auto:after_hours:{tenant}:{customer}:{day}"))
    if Rule.URGENT in rules and urgent:
        out.append(Due(Rule.URGENT, f"auto:urgent:{tenant}:{wamid}"))
    return out
