"""Meta's webhook envelope → internal events (pure: no I/O, no clock, no logging).

Rules:

1. **Order.** Events come out in payload order: entries, their changes and,
   inside a ``messages`` change, its ``messages[]``, then its ``statuses[]``,
   then one :class:`AccountErrors` for its value-level ``errors[]``.
2. **Routing.** A change belongs to the tenant that ``tenant_of`` returns for
   its ``metadata.phone_number_id``. An unknown id quarantines the whole
   change (:class:`Quarantined`, never an event). A ``messages`` or
   ``user_preferences`` change without an id is quarantined too; other
   fields without one are WABA-level and pass through as
   :class:`OtherChange` with ``tenant=None``.
3. **Isolation.** Items are validated one by one: a malformed message,
   status or preference is quarantined alone and the rest of the batch goes
   on. :func:`normalize` never raises on an :class:`Envelope` (only
   ``tenant_of`` could).
4. **Customer key.** ``from`` / ``wa_id``, else the business-scoped
   ``from_user_id`` / ``user_id`` where ``wa_id`` is empty or missing.
   ``value.contacts[]`` are matched to messages by ``wa_id`` (else
   ``user_id``; a lone contact matches a message that names nobody) for the
   profile name and the missing half of the key. No key at all: quarantined.
5. **Unknown values** (message type, status, interactive type, preference
   value) never crash: UNKNOWN (or pass-through) plus a warning; the raw
   string is kept (``details["raw_type"]``, ``StatusUpdate.raw_status``).
   A missing timestamp becomes 0, with a warning.
6. **Impossible timestamps.** A message, status or preference whose
   timestamp is present but no time Meta can mean (not a number, negative,
   milliseconds, ``1e308``, past 64 bits: anything outside
   :func:`~lawhub_actors.core.limits.plausible_timestamp`, 2009 to 2100) is
   quarantined alone (``bad_timestamp``), like a malformed item, so it never
   reaches a store transaction it would break on every replay; the other
   updates of the body go on.
7. **Warnings are data** and may be logged as they are: positions
   (``entry[0].changes[1].messages[2]``), field names, Meta's type names
   when they look like enum names, and reasons; never message content,
   names or numbers.

What each message type puts in ``text`` and ``details``:
:mod:`lawhub_actors.core.message_body`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from lawhub_actors.core import limits
from lawhub_actors.core import payload as p
from lawhub_actors.core.events import (
    UNKNOWN_ERROR_CODE,
    AccountErrors,
    ConversationInfo,
    Event,
    InboundMessage,
    MessageType,
    MetaError,
    OtherChange,
    PreferenceUpdate,
    Pricing,
    Quarantined,
    QuarantineReason,
    StatusKind,
    StatusUpdate,
)
from lawhub_actors.core.message_body import BODIES, referral, reply_context, safe_name

TenantOf = Callable[[str], str | None]
"""``phone_number_id`` → tenant id, or ``None`` for a number nobody owns."""

PHONE_NUMBER_FIELDS = frozenset({"messages", "user_preferences"})
"""Fields that only make sense for one business phone number."""

_KNOWN_TYPES = {t.value: t for t in MessageType if t is not MessageType.UNKNOWN}
_KNOWN_STATUSES = {s.value: s for s in StatusKind if s is not StatusKind.UNKNOWN}


@dataclass(frozen=True, slots=True)
class Batch:
    """What one webhook body amounts to."""

    events: tuple[Event, ...] = ()
    quarantined: tuple[Quarantined, ...] = ()
    warnings: tuple[str, ...] = ()


def normalize(envelope: p.Envelope, tenant_of: TenantOf) -> Batch:
    """The events, quarantined changes and warnings of ``envelope``, in payload order."""
    out = _Out()
    for e, entry in enumerate(envelope.entry):
        for c, change in enumerate(entry.changes):
            _change(out, entry.id, change, tenant_of, f"entry[{e}].changes[{c}]")
    return Batch(tuple(out.events), tuple(out.quarantined), tuple(out.warnings))


# -- plumbing ----------------------------------------------------------------


class _Out:
    __slots__ = ("events", "quarantined", "warnings")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.quarantined: list[Quarantined] = []
        self.warnings: list[str] = []


@dataclass(slots=True)
class _Scope:
    """One routed change: where it is, whose it is, and where results go."""

    out: _Out
    where: str
    waba_id: str
    field: str
    tenant: str
    phone_number_id: str
    value: Mapping[str, Any]

    def warn(self, item: str, text: str) -> None:
        self.out.warnings.append(f"{self.where}{'.' + item if item else ''}: {text}")

    def emit(self, event: Event) -> None:
        self.out.events.append(event)

    def quarantine_change(self, reason: QuarantineReason) -> None:
        self.out.quarantined.append(
            Quarantined(
                phone_number_id=self.phone_number_id,
                waba_id=self.waba_id,
                field=self.field,
                reason=reason,
                change={"field": self.field, "value": self.value},
            )
        )

    def quarantine_item(self, reason: QuarantineReason, items: str, raw: object) -> None:
        value: dict[str, Any] = {items: [raw]}
        if "metadata" in self.value:
            value = {"metadata": self.value["metadata"], **value}
        self.out.quarantined.append(
            Quarantined(
                phone_number_id=self.phone_number_id,
                waba_id=self.waba_id,
                field=self.field,
                reason=reason,
                change={"field": self.field, "value": value},
            )
        )

    def other(self, value: Mapping[str, Any]) -> None:
        self.emit(
            OtherChange(
                tenant=self.tenant,
                phone_number_id=self.phone_number_id,
                field=self.field,
                value=value,
                waba_id=self.waba_id,
            )
        )




def _fields(exc: ValidationError) -> str:
    return p.error_fields(exc)


def _phone_number_id(value: Mapping[str, Any]) -> str | None:
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        return None
    pnid = metadata.get("phone_number_id")
    if isinstance(pnid, str) and pnid:
        return pnid
    if isinstance(pnid, int) and not isinstance(pnid, bool):
        return str(pnid)
    return None


def _timestamp(scope: _Scope, item: str, timestamp: int | None) -> int:
    if timestamp is None:
        scope.warn(item, "timestamp missing; 0 used")
        return 0
    return timestamp


def _impossible_time(
    scope: _Scope, item: str, items: str, raw: object, timestamp: int | None
) -> bool:
    """Whether ``timestamp`` is present but implausible; if so the item is quarantined."""
    if timestamp is None or limits.plausible_timestamp(timestamp):
        return False
    scope.quarantine_item(QuarantineReason.BAD_TIMESTAMP, items, raw)
    scope.warn(item, "timestamp is not a time between 2009 and 2100; quarantined")
    return True


# -- changes -----------------------------------------------------------------


def _change(out: _Out, waba_id: str, change: p.Change, tenant_of: TenantOf, where: str) -> None:
    value = change.value
    pnid = _phone_number_id(value)
    if pnid is None:
        if change.field in PHONE_NUMBER_FIELDS:
            out.quarantined.append(
                Quarantined(
                    phone_number_id=None,
                    waba_id=waba_id,
                    field=change.field,
                    reason=QuarantineReason.NO_PHONE_NUMBER_ID,
                    change={"field": change.field, "value": value},
                )
            )
            out.warnings.append(
                f"{where}: {safe_name(change.field)} change without metadata.phone_number_id;"
                " quarantined"
            )
        else:
            out.events.append(
                OtherChange(
                    tenant=None,
                    phone_number_id=None,
                    field=change.field,
                    value=value,
                    waba_id=waba_id,
                )
            )
        return
    tenant = tenant_of(pnid)
    if tenant is None:
        out.quarantined.append(
            Quarantined(
                phone_number_id=pnid,
                waba_id=waba_id,
                field=change.field,
                reason=QuarantineReason.UNKNOWN_PHONE_NUMBER,
                change={"field": change.field, "value": value},
            )
        )
        out.warnings.append(f"{where}: unknown phone_number_id; change quarantined")
        return
    scope = _Scope(out, where, waba_id, change.field, tenant, pnid, value)
    if change.field == "messages":
        _messages_change(scope)
    elif change.field == "user_preferences":
        _preferences_change(scope)
    else:
        scope.other(value)


def _value(scope: _Scope) -> p.Value | None:
    try:
        return p.Value.model_validate(scope.value)
    except ValidationError as exc:
        scope.quarantine_change(QuarantineReason.INVALID_VALUE)
        scope.warn("", f"invalid value ({_fields(exc)}); change quarantined")
        return None


def _messages_change(scope: _Scope) -> None:
    value = _value(scope)
    if value is None:
        return
    messages, statuses, errors = value.messages or [], value.statuses or [], value.errors or []
    if not (messages or statuses or errors):
        scope.warn("", "'messages' change with no messages, statuses or errors; passed through")
        scope.other(scope.value)
        return
    contacts = _Contacts.parse(scope, value.contacts or [])
    for k, raw in enumerate(messages):
        _message(scope, contacts, k, raw)
    for k, raw in enumerate(statuses):
        _status(scope, k, raw)
    account_errors = _item_errors(scope, errors)
    if account_errors:
        scope.emit(
            AccountErrors(
                tenant=scope.tenant, phone_number_id=scope.phone_number_id, errors=account_errors
            )
        )


def _item_errors(scope: _Scope, raws: Sequence[Any]) -> tuple[MetaError, ...]:
    errors: list[p.ErrorObject] = []
    for k, raw in enumerate(raws):
        try:
            errors.append(p.ErrorObject.model_validate(raw))
        except ValidationError as exc:
            scope.warn(f"errors[{k}]", f"invalid error object ({_fields(exc)}); ignored")
    return _meta_errors(errors)


def _meta_errors(errors: Sequence[p.ErrorObject] | None) -> tuple[MetaError, ...]:
    return tuple(
        MetaError(
            code=UNKNOWN_ERROR_CODE if e.code is None else e.code,
            title=e.title,
            message=e.message,
            details=e.error_data.details if e.error_data else None,
            href=e.href,
        )
        for e in errors or ()
    )


class _Contacts:
    __slots__ = ("by_user_id", "by_wa_id", "only")

    def __init__(self, contacts: Sequence[p.Contact]) -> None:
        self.by_wa_id = {c.wa_id: c for c in contacts if c.wa_id}
        self.by_user_id = {c.user_id: c for c in contacts if c.user_id}
        self.only = contacts[0] if len(contacts) == 1 else None

    @classmethod
    def parse(cls, scope: _Scope, raws: Sequence[Any]) -> _Contacts:
        contacts: list[p.Contact] = []
        for k, raw in enumerate(raws):
            try:
                contacts.append(p.Contact.model_validate(raw))
            except ValidationError as exc:
                scope.warn(f"contacts[{k}]", f"invalid contact ({_fields(exc)}); ignored")
        return cls(contacts)

    def match(self, wa_id: str | None, user_id: str | None) -> p.Contact | None:
        if wa_id and wa_id in self.by_wa_id:
            return self.by_wa_id[wa_id]
        if user_id and user_id in self.by_user_id:
            return self.by_user_id[user_id]
        if not wa_id and not user_id:
            return self.only
        return None


# -- messages ----------------------------------------------------------------


def _message(scope: _Scope, contacts: _Contacts, k: int, raw: object) -> None:
    item = f"messages[{k}]"
    try:
        m = p.Message.model_validate(raw)
    except ValidationError as exc:
        scope.quarantine_item(QuarantineReason.INVALID_MESSAGE, "messages", raw)
        scope.warn(item, f"invalid message ({_fields(exc)}); quarantined")
        return
    if not m.id:
        scope.quarantine_item(QuarantineReason.INVALID_MESSAGE, "messages", raw)
        scope.warn(item, "message without an id; quarantined")
        return
    if _impossible_time(scope, item, "messages", raw, m.timestamp):
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
        scope.quarantine_item(QuarantineReason.NO_CUSTOMER, "messages", raw)
        scope.warn(item, "message without wa_id or user_id; quarantined")
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
            timestamp=_timestamp(scope, item, m.timestamp),
            type=mtype,
            text=body.text,
            media=body.media,
            details={"raw_type": raw_type, **body.details},
            context=reply_context(m.context),
            referral=referral(m.referral),
            errors=_meta_errors(m.errors),
        )
    )


# -- statuses ----------------------------------------------------------------


def _status(scope: _Scope, k: int, raw: object) -> None:
    item = f"statuses[{k}]"
    try:
        s = p.Status.model_validate(raw)
    except ValidationError as exc:
        scope.quarantine_item(QuarantineReason.INVALID_STATUS, "statuses", raw)
        scope.warn(item, f"invalid status ({_fields(exc)}); quarantined")
        return
    if not s.id:
        scope.quarantine_item(QuarantineReason.INVALID_STATUS, "statuses", raw)
        scope.warn(item, "status without a message id; quarantined")
        return
    if _impossible_time(scope, item, "statuses", raw, s.timestamp):
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
            timestamp=_timestamp(scope, item, s.timestamp),
            recipient=recipient,
            recipient_user_id=s.recipient_user_id or None,
            errors=_meta_errors(s.errors),
            conversation=conversation,
            pricing=pricing,
            biz_opaque_callback_data=s.biz_opaque_callback_data,
        )
    )


# -- user preferences --------------------------------------------------------


def _preferences_change(scope: _Scope) -> None:
    value = _value(scope)
    if value is None:
        return
    items: Sequence[Any] | None = value.user_preferences
    if items is None and "category" in scope.value and "value" in scope.value:
        items = [scope.value]  # the flat form: the value is the preference itself
    if not items:
        scope.warn("", "'user_preferences' change with no preferences; passed through")
        scope.other(scope.value)
        return
    contacts = _Contacts.parse(scope, value.contacts or [])
    for k, raw in enumerate(items):
        _preference(scope, contacts, k, raw)


def _preference(scope: _Scope, contacts: _Contacts, k: int, raw: object) -> None:
    item = f"user_preferences[{k}]"
    try:
        pref = p.UserPreference.model_validate(raw)
    except ValidationError as exc:
        scope.quarantine_item(QuarantineReason.INVALID_PREFERENCE, "user_preferences", raw)
        scope.warn(item, f"invalid preference ({_fields(exc)}); quarantined")
        return
    if _impossible_time(scope, item, "user_preferences", raw, pref.timestamp):
        return
    wa_id, user_id = pref.wa_id or None, pref.user_id or None
    contact = contacts.match(wa_id, user_id)
    if contact is not None:
        wa_id = wa_id or contact.wa_id or None
        user_id = user_id or contact.user_id or None
    customer = wa_id or user_id
    if customer is None:
        scope.quarantine_item(QuarantineReason.NO_CUSTOMER, "user_preferences", raw)
        scope.warn(item, "preference without wa_id or user_id; quarantined")
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
            timestamp=_timestamp(scope, item, pref.timestamp),
            detail=pref.detail,
        )
    )
