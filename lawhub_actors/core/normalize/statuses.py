"""A ``messages`` change's ``statuses[]`` →
:class:`~lawhub_actors.core.events.StatusUpdate` events (pure).

A status is Meta's news about a message we sent (sent, delivered, read,
played, failed), keyed by its ``wamid``; an unknown one is kept as UNKNOWN
with its raw string.
"""

from __future__ import annotations

from lawhub_actors.core import payload as p
from lawhub_actors.core.events import (
    ConversationInfo,
    Pricing,
    QuarantineReason,
    StatusKind,
    StatusUpdate,
)
from lawhub_actors.core.message_body import safe_name
from lawhub_actors.core.normalize.errors import meta_errors
from lawhub_actors.core.normalize.scope import Scope, impossible_time, timestamp_or_zero

_KNOWN_STATUSES = {s.value: s for s in StatusKind if s is not StatusKind.UNKNOWN}


def status(scope: Scope, k: int, raw: object) -> None:
    """``statuses[k]`` emitted as a :class:`StatusUpdate`, or quarantined alone."""
    item = f"statuses[{k}]"
    s = scope.item(p.Status, raw, reason=QuarantineReason.INVALID_STATUS,
                  items="statuses", item=item, what="status")
    if s is None:
        return
    if not s.id:
        scope.quarantine_item(QuarantineReason.INVALID_STATUS, "statuses", raw,
                             item=item, why="status without a message id")
        return
    if impossible_time(scope, item, "statuses", raw, s.timestamp):
        return
    raw_status = s.status or ""
    kind = _KNOWN_STATUSES.get(raw_status, StatusKind.UNKNOWN)
    if kind is StatusKind.UNKNOWN:
        scope.warn(item, f"unknown status {safe_name(raw_status)}; kept as 'unknown'")
    recipient = s.recipient_id or s.recipient_user_id or None
    if recipient is None:
        scope.warn(item, "status without recipient_id or recipient_user_id")
    conversation = None
    if s.conversation is not None:
        conversation = ConversationInfo(
            id=s.conversation.id,
            origin_type=s.conversation.origin.type if s.conversation.origin else None,
            expiration=s.conversation.expiration_timestamp,
        )
    pricing = None
    if s.pricing is not None:
        pricing = Pricing(
            billable=s.pricing.billable,
            pricing_model=s.pricing.pricing_model,
            category=s.pricing.category,
            type=s.pricing.type,
        )
    scope.emit(
        StatusUpdate(
            tenant=scope.tenant,
            phone_number_id=scope.phone_number_id,
            wamid=s.id,
            status=kind,
            raw_status=raw_status,
            timestamp=timestamp_or_zero(scope, item, s.timestamp),
            recipient=recipient,
            recipient_user_id=s.recipient_user_id or None,
            errors=meta_errors(s.errors),
            conversation=conversation,
            pricing=pricing,
            biz_opaque_callback_data=s.biz_opaque_callback_data,
        )
    )
