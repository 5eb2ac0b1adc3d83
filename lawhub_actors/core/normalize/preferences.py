"""A ``user_preferences`` change → :class:`~lawhub_actors.core.events.PreferenceUpdate`
events (pure).

A preference is a customer stopping or resuming a category
(``marketing_messages``). The change carries a list of them, or (the flat
form) is one itself; a value other than ``stop`` or ``resume`` passes
through as an :class:`~lawhub_actors.core.events.OtherChange`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lawhub_actors.core import payload as p
from lawhub_actors.core.events import PreferenceUpdate, QuarantineReason
from lawhub_actors.core.message_body import safe_name
from lawhub_actors.core.normalize.contacts import Contacts
from lawhub_actors.core.normalize.scope import (
    Scope,
    change_value,
    impossible_time,
    timestamp_or_zero,
)


def preferences_change(scope: Scope) -> None:
    """Each preference of a ``user_preferences`` change, in order."""
    value = change_value(scope)
    if value is None:
        return
    items: Sequence[Any] | None = value.user_preferences
    if items is None and "category" in scope.value and "value" in scope.value:
        items = [scope.value]  # the flat form: the value is the preference itself
    if not items:
        scope.warn("", "'user_preferences' change with no preferences; passed through")
        scope.other(scope.value)
        return
    contacts = Contacts.parse(scope, value.contacts or [])
    for k, raw in enumerate(items):
        _preference(scope, contacts, k, raw)


def _preference(scope: Scope, contacts: Contacts, k: int, raw: object) -> None:
    item = f"user_preferences[{k}]"
    pref = scope.item(p.UserPreference, raw, reason=QuarantineReason.INVALID_PREFERENCE,
                     items="user_preferences", item=item, what="preference")
    if pref is None:
        return
    if impossible_time(scope, item, "user_preferences", raw, pref.timestamp):
        return
    wa_id, user_id = pref.wa_id or None, pref.user_id or None
    contact = contacts.match(wa_id, user_id)
    if contact is not None:
        wa_id = wa_id or contact.wa_id or None
        user_id = user_id or contact.user_id or None
    customer = wa_id or user_id
    if customer is None:
        scope.quarantine_item(QuarantineReason.NO_CUSTOMER, "user_preferences", raw,
                             item=item, why="preference without wa_id or user_id")
        return
    choice = (pref.value or "").strip().lower()
    if choice not in ("stop", "resume"):
        scope.warn(item, f"unknown preference value {safe_name(pref.value or '')}; passed through")
        scope.other(raw if isinstance(raw, dict) else {})
        return
    scope.emit(
        PreferenceUpdate(
            tenant=scope.tenant,
            phone_number_id=scope.phone_number_id,
            customer=customer,
            category=pref.category or "",
            value="stop" if choice == "stop" else "resume",
            timestamp=timestamp_or_zero(scope, item, pref.timestamp),
            detail=pref.detail,
        )
    )
