"""Admitting an outbound message: the one path every send takes.

A lawyer's send (``POST /api/v1/messages``), an automatic reply and a
replay from the dead-letter queue all pass the same checks, in the
contract's order:

1. that the number is the tenant's, and (a lawyer's send) that its circuit
   is not open — :func:`admit_send`, before the store;
2. the template, when it is one (``core.templates``);
3. consent, the 24-hour window and the tier (``core.accept``), inside the
   store transaction that records the message, so concurrent sends cannot
   overrun a tier;
4. then the message is stored ``pending`` and ``outbound.accepted`` emitted
   in the same transaction, and the caller hands it to its worker after the
   commit. A repeated ``client_ref`` returns the first id instead.

Refusals are exceptions with the contract's codes: ``SendRefused``,
``TemplateRefusal`` and :class:`CircuitOpen`; the web layer maps them to
HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lawhub_actors.adapters import outbound_store
from lawhub_actors.adapters.outbound_store import Outbound
from lawhub_actors.adapters.store import Store
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.accept import TIER_WINDOW_S, SendFacts, SendRefused, decide
from lawhub_actors.core.consent import ConsentState
from lawhub_actors.core.templates import TemplateSpec, check_template
from lawhub_actors.settings import PhoneNumber, Settings


def number_of(settings: Settings, tenant: str, phone_number_id: str) -> PhoneNumber | None:
    """The tenant's number with that id (None: not the tenant's)."""
    if settings.tenant_id_for(phone_number_id) != tenant:
        return None
    return settings.phone_number(phone_number_id)


def check_content(settings: Settings, tenant: str, content: dict[str, Any]) -> None:
    """A template's checks (raises ``TemplateRefusal``); text needs none here."""
    if content["type"] != "template":
        return
    template = content["template"]
    specs = [TemplateSpec(t.tenant, t.name, t.language, t.category, t.status, t.params)
             for t in settings.templates]
    check_template(specs, tenant, template["name"], template["language"], template["params"])


def decide_in(tx: Tx, tenant: str, number: PhoneNumber, recipient: str,
              content: dict[str, Any]) -> bool:
    """Consent, window and tier against the store as it is in ``tx``;
    whether it is business-initiated (raises ``SendRefused``)."""
    customer = tx.customer(tenant, recipient)
    users, counted = (0, False) if number.unique_users_per_24h is None else (  # no tier to reach
        outbound_store.tier_usage(tx, number.id, tx.ref(tenant, recipient),
                                  tx.now - TIER_WINDOW_S))
    return decide(SendFacts(
        consent=ConsentState(customer.consent) if customer else ConsentState.UNKNOWN,
        last_inbound_at=customer.last_inbound_at if customer else None,
        is_template=content["type"] == "template", tier_limit=number.unique_users_per_24h,
        tier_users=users, recipient_counted=counted, now=tx.now,
    ))


class CircuitOpen(Exception):
    """The number's circuit breaker is open: sends from it are paused."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("sends from this number are paused after repeated failures")
        self.retry_after_s = retry_after_s


Circuit = Callable[[str], tuple[str, float]]
"""A number's circuit as its breaker tells it: (state, seconds until it half-opens)."""


@dataclass(frozen=True, slots=True)
class SendOrder:
    """A lawyer's send as the API took it."""

    tenant: str
    phone_number_id: str
    recipient: str
    content: dict[str, Any]
    client_ref: str | None = None


def admit_send(store: Store, settings: Settings, circuit: Circuit,
               order: SendOrder) -> tuple[str, bool]:
    """Check and store a lawyer's send: ``(our id, whether it is new)``."""
    number = number_of(settings, order.tenant, order.phone_number_id)
    if number is None:
        raise SendRefused("forbidden_number", "that phone number is not one of the tenant's")
    state, retry_after_s = circuit(number.id)
    if state == "open":
        raise CircuitOpen(retry_after_s)
    check_content(settings, order.tenant, order.content)  # no store needed: before it
    return store.write(lambda tx: _record(
        tx, order.tenant, number, recipient=order.recipient, content=order.content,
        client_ref=order.client_ref)).value


def admit(tx: Tx, settings: Settings, tenant: str, number: PhoneNumber, *, recipient: str,
          content: dict[str, Any], automatic: bool = False) -> tuple[str, bool]:
    """Check and store a send in ``tx`` (an automatic reply, in the
    transaction of the message it answers)."""
    check_content(settings, tenant, content)
    return _record(tx, tenant, number, recipient=recipient, content=content, automatic=automatic)


def _record(tx: Tx, tenant: str, number: PhoneNumber, *, recipient: str,
            content: dict[str, Any], client_ref: str | None = None,
            automatic: bool = False) -> tuple[str, bool]:
    if client_ref is not None:
        known = outbound_store.find_by_client_ref(tx, tenant, client_ref)
        if known is not None:
            return known, False
    business_initiated = decide_in(tx, tenant, number, recipient, content)
    message_id = outbound_store.insert(
        tx, tenant, phone_number_id=number.id, recipient=recipient, client_ref=client_ref,
        content=content, business_initiated=business_initiated, automatic=automatic,
    )
    tx.emit(tenant, "outbound.accepted", {
        "id": message_id, "to": recipient, "type": content["type"], "client_ref": client_ref,
        "phone_number_id": number.id, "automatic": automatic,
    })
    return message_id, True


def recheck(tx: Tx, settings: Settings, message: Outbound) -> None:
    """Every check again, for a replay from the dead-letter queue (the
    customer may have opted out, the window closed, the template paused)."""
    number = number_of(settings, message.tenant, message.phone_number_id)
    if number is None:
        raise SendRefused("forbidden_number", "the number is no longer the tenant's")
    check_content(settings, message.tenant, message.content)
    decide_in(tx, message.tenant, number, message.recipient, message.content)
