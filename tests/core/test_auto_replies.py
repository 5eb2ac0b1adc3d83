"""Which automatic replies a message calls for, and their once-only keys."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from lawhub_actors.core.auto_replies import OfficeHours, Rule, due

ALL = frozenset(Rule)
HOURS = OfficeHours("Asia/Jakarta", time(8), time(17), frozenset({"mon", "tue", "wed", "thu", "fri"}))


def at(day: str, hh: int, mm: int = 0) -> float:
    return datetime.fromisoformat(day).replace(hour=hh, minute=mm,
                                               tzinfo=ZoneInfo("Asia/Jakarta")).timestamp()


def rules(**kw) -> list[Rule]:
    args = {"rules": ALL, "hours": HOURS, "tenant": "firm-a", "customer": "62812", "wamid": "w1",
            "new_lead": False, "urgent": False, "at_epoch_s": at("2026-12-01", 10)}  # a Tuesday
    return [d.rule for d in due(**{**args, **kw})]


def test_a_new_lead_is_greeted_and_a_known_customer_is_not() -> None:
    assert rules(new_lead=True) == [Rule.GREETING]
    assert rules() == []


def test_office_hours_are_read_in_the_tenants_time_zone() -> None:
    assert rules(at_epoch_s=at("2026-12-01", 7, 59)) == [Rule.AFTER_HOURS]
    assert rules(at_epoch_s=at("2026-12-01", 8, 0)) == []
    assert rules(at_epoch_s=at("2026-12-01", 17, 0)) == [Rule.AFTER_HOURS]
    assert rules(at_epoch_s=at("2026-12-06", 10)) == [Rule.AFTER_HOURS]  # a Saturday


def test_the_after_hours_notice_goes_once_per_customer_per_local_day() -> None:
    evening = due(rules=ALL, hours=HOURS, tenant="firm-a", customer="62812", wamid="w1",
                  new_lead=False, urgent=False, at_epoch_s=at("2026-12-01", 20))
    later = due(rules=ALL, hours=HOURS, tenant="firm-a", customer="62812", wamid="w2",
                new_lead=False, urgent=False, at_epoch_s=at("2026-12-01", 23))
    next_day = due(rules=ALL, hours=HOURS, tenant="firm-a", customer="62812", wamid="w3",
                   new_lead=False, urgent=False, at_epoch_s=at("2026-12-02", 6))
    assert evening[0].key == later[0].key != next_day[0].key


def test_an_urgent_intake_is_acknowledged_once_per_message_and_rules_are_optional() -> None:
    assert rules(urgent=True, new_lead=True, at_epoch_s=at("2026-12-01", 22)) == [
        Rule.GREETING, Rule.AFTER_HOURS, Rule.URGENT]
    assert rules(rules=frozenset({Rule.URGENT}), urgent=True, new_lead=True,
                 at_epoch_s=at("2026-12-01", 22)) == [Rule.URGENT]
    assert rules(hours=None, at_epoch_s=at("2026-12-01", 22)) == []
