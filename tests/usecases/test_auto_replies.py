"""Automatic replies' plan: a tenant's rules and office hours, worked out
once per config and again for a reloaded one."""

from __future__ import annotations

from datetime import time

from lawhub_actors.core.auto_replies import Rule
from lawhub_actors.settings.tenants import AutoReplies, AutoReply
from lawhub_actors.usecases import auto_replies


def _config(office_hours: str, *, greeting: bool) -> AutoReplies:
    reply = AutoReply.model_validate({"text": "Terima kasih, kami segera membalas."})
    return AutoReplies(office_hours=office_hours, greeting=reply if greeting else None,
                       after_hours=reply)


def test_a_configs_plan_is_made_once_and_reused() -> None:
    config = _config("08:00-17:00", greeting=True)
    first = auto_replies._plan(config)
    assert auto_replies._plan(config) is first
    assert first.rules == {Rule.GREETING, Rule.AFTER_HOURS}
    assert (first.hours.opens, first.hours.closes) == (time(8), time(17))


def test_a_reloaded_config_gets_a_plan_of_its_own() -> None:
    before = auto_replies._plan(_config("08:00-17:00", greeting=True))
    after = auto_replies._plan(_config("09:00-24:00", greeting=False))
    assert after.rules == {Rule.AFTER_HOURS}
    assert (after.hours.opens, after.hours.closes) == (time(9), time.max)
    assert before.rules == {Rule.GREETING, Rule.AFTER_HOURS}
