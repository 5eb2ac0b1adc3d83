"""Automatic replies, sent through the same path as a lawyer's send.

``core.auto_replies`` decides which of the tenant's rules a message calls
for; here each one, once per its key, is admitted like any send
(``sending.admit``: template, consent, opt-out, window, tier) inside the
transaction that stores the inbound message, marked automatic. A refusal
(an opted-out customer, say) means that reply is not sent, and is logged;
it never fails the message it answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

import structlog

from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.accept import SendRefused
from lawhub_actors.core.auto_replies import OfficeHours, Rule, due
from lawhub_actors.core.templates import TemplateRefusal
from lawhub_actors.settings import AutoReplies, Settings
from lawhub_actors.usecases.sends import admit, number_of

log = structlog.get_logger("lawhub.auto_replies")


@dataclass(frozen=True, slots=True)
class _Plan:
    config: AutoReplies
    rules: frozenset[Rule]
    hours: OfficeHours


_plans: dict[int, _Plan] = {}
PLANS_MAX = 1024


def _plan(config: AutoReplies) -> _Plan:
    """A tenant's rules and office hours, worked out once per config object
    (every message asks; a reload brings new objects). A plan holds the
    config it was made from, so no other object can take that id while the
    plan is kept."""
    plan = _plans.get(id(config))
    if plan is None:
        if len(_plans) >= PLANS_MAX:
            _plans.clear()
        rules = frozenset(rule for rule in Rule if getattr(config, rule.value) is not None)
        plan = _plans[id(config)] = _Plan(config, rules, _hours(config))
    return plan


def _hours(config: AutoReplies) -> OfficeHours:
    opens, closes = config.office_hours.split("-")
    return OfficeHours(config.timezone, _time(opens), _time(closes), frozenset(config.office_days))


def _time(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    return time.max if hours == 24 else time(hours, minutes)


def answer(tx: Tx, settings: Settings, tenant: str, phone_number_id: str, *, customer: str,
           wamid: str, at: int, new_lead: bool, urgent: bool) -> list[tuple[str, str]]:
    """Admit the replies a message calls for: ``(our id, recipient)`` of each.
    (A remote classifier's urgent verdict comes later: its worker asks again
    with ``urgent`` alone, and the once-per-key rule keeps the rest quiet.)"""
    number = number_of(settings, tenant, phone_number_id)
    config = None if number is None else settings.tenant(tenant).auto_replies
    if number is None or config is None:
        return []
    plan = _plan(config)
    admitted: list[tuple[str, str]] = []
    for reply in due(rules=plan.rules, hours=plan.hours, tenant=tenant, customer=customer,
                     wamid=wamid, new_lead=new_lead, urgent=urgent, at_epoch_s=float(at)):
        if not tx.audit(reply.key, tenant, "auto_reply", tx.ref(tenant, customer),
                        {"rule": reply.rule.value, "wamid": wamid}):
            continue  # sent (or refused) once already
        content = getattr(config, reply.rule.value).content()
        try:
            message_id, _ = admit(tx, settings, tenant, number, recipient=customer,
                                  content=content, automatic=True)
        except (SendRefused, TemplateRefusal) as refused:
            log.info("auto_reply_not_sent", tenant=tenant, rule=reply.rule.value,
                     code=refused.code, wamid=wamid)
            continue
        admitted.append((message_id, customer))
    return admitted
