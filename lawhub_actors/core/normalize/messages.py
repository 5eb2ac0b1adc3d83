"""A ``messages`` change → its events (pure): each of ``messages[]`` as an
:class:`~lawhub_actors.core.events.InboundMessage`, then its ``statuses[]``
(:mod:`~lawhub_actors.core.normalize.statuses`), then one
:class:`~lawhub_actors.core.events.AccountErrors` for its value-level
``errors[]``.

What each message type puts in ``text`` and ``details``:
:mod:`lawhub_actors.core.message_body`.
"""

from __future__ import annotations

from lawhub_actors.core import payload as p
from lawhub_actors.core.events import AccountErrors, InboundMessage, MessageType, QuarantineReason
from lawhub_actors.core.message_body import BODIES, referral, reply_context, safe_name
from lawhub_actors.core.normalize.contacts import Contacts
from lawhub_actors.core.normalize.errors import item_errors, meta_errors
from lawhub_actors.core.normalize.scope import (
    Scope,
    change_value,
    impossible_time,
    timestamp_or_zero,
)
from lawhub_actors.core.normalize.statuses import status

_KNOWN_TYPES = {t.value: t for t in MessageType if t is not MessageType.UNKNOWN}


def messages_change(scope: Scope) -> None:
    """The messages, statuses and account errors of a ``messages`` change, in that order."""
    value = change_value(scope)
    if value is None:
        return
    messages, statuses, errors = value.messages or [], value.statuses or [], value.errors or []
    if not (messages or statuses or errors):
        scope.warn("", "'messages' change with no messages, statuses or errors; passed through")
        scope.other(scope.value)
        return
    contacts = Contacts.parse(scope, value.contacts or [])
    for k, raw in enumerate(messages):
        _message(scope, contacts, k, raw)
    for k, raw in enumerate(statuses):
        status(scope, k, raw)
    account_errors = item_errors(scope, errors)
    if account_errors:
        scope.emit(
            AccountErrors(
                tenant=scope.tenant, phone_number_id=scope.phone_number_id, errors=account_errors
            )
        )


def _message(scope: Scope, contacts: Contacts, k: int, raw: object) -> None:
    item = f"messages[{k}]"
    m = scope.item(p.Message, raw, reason=QuarantineReason.INVALID_MESSAGE,
                  items="messages", item=item, what="message")
    if m is None:
        return
    if not m.id:
        scope.quarantine_item(QuarantineReason.INVALID_MESSAGE, "messages", raw,
                             item=item, why="message without an id")
        return
    if impossible_time(scope, item, "messages", raw, m.timestamp):
        return
    wa_id = m.from_ or None
    user_id = m.from_user_id or None
    profile_name = None
    contact = contacts.match(wa_id, user_id)
    if contact is not None:
        wa_id = wa_id or contact.wa_id or None
        user_id = user_id or contact.user_id or None
        profile_name = contact.profile.name if contact.profile else None
    if wa_id is None and user_id is None and m.system is not None:
        user_id = m.system.previous_user_id or m.system.user_id or None
    customer = wa_id or user_id
    if customer is None:
        scope.quarantine_item(QuarantineReason.NO_CUSTOMER, "messages", raw,
                             item=item, why="message without wa_id or user_id")
        return
    raw_type = m.type or ""
    mtype = _KNOWN_TYPES.get(raw_type, MessageType.UNKNOWN)
    if mtype is MessageType.UNKNOWN:
        scope.warn(item, f"unknown message type {safe_name(raw_type)}; kept as 'unknown'")
    body = BODIES[mtype](m, raw_type)
    if body.problem:
        scope.warn(item, body.problem)
    scope.emit(
        InboundMessage(
            tenant=scope.tenant,
            phone_number_id=scope.phone_number_id,
            customer=customer,
            wa_id=wa_id,
            user_id=user_id,
            profile_name=profile_name,
            wamid=m.id,
            timestamp=timestamp_or_zero(scope, item, m.timestamp),
            type=mtype,
            text=body.text,
            media=body.media,
            details={"raw_type": raw_type, **body.details},
            context=reply_context(m.context),
            referral=referral(m.referral),
            errors=meta_errors(m.errors),
        )
    )
