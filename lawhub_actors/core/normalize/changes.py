"""The normalizer's entry point (pure): each change of an envelope routed to
its tenant and handed to the handler of its field."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lawhub_actors.core import payload as p
from lawhub_actors.core.events import Event, OtherChange, Quarantined, QuarantineReason
from lawhub_actors.core.message_body import safe_name
from lawhub_actors.core.normalize.messages import messages_change
from lawhub_actors.core.normalize.preferences import preferences_change
from lawhub_actors.core.normalize.scope import Out, Scope

TenantOf = Callable[[str], str | None]
"""``phone_number_id`` → tenant id, or ``None`` for a number nobody owns."""

PHONE_NUMBER_FIELDS = frozenset({"messages", "user_preferences"})
"""Fields that only make sense for one business phone number."""


@dataclass(frozen=True, slots=True)
class Batch:
    """What one webhook body amounts to."""

    events: tuple[Event, ...] = ()
    quarantined: tuple[Quarantined, ...] = ()
    warnings: tuple[str, ...] = ()


def normalize(envelope: p.Envelope, tenant_of: TenantOf) -> Batch:
    """The events, quarantined changes and warnings of ``envelope``, in payload order."""
    out = Out()
    for e, entry in enumerate(envelope.entry):
        for c, change in enumerate(entry.changes):
            _change(out, entry.id, change, tenant_of, f"entry[{e}].changes[{c}]")
    return Batch(tuple(out.events), tuple(out.quarantined), tuple(out.warnings))


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


def _unrouted(out: Out, waba_id: str, change: p.Change, pnid: str | None, *,
              reason: QuarantineReason, warning: str) -> None:
    """A change no tenant can have: quarantined whole, with a warning."""
    out.quarantined.append(Quarantined(
        phone_number_id=pnid, waba_id=waba_id, field=change.field, reason=reason,
        change={"field": change.field, "value": change.value}))
    out.warnings.append(warning)


def _change(out: Out, waba_id: str, change: p.Change, tenant_of: TenantOf, where: str) -> None:
    value = change.value
    pnid = _phone_number_id(value)
    if pnid is None:
        if change.field in PHONE_NUMBER_FIELDS:
            _unrouted(out, waba_id, change, None, reason=QuarantineReason.NO_PHONE_NUMBER_ID,
                      warning=f"{where}: {safe_name(change.field)} change without"
                      " metadata.phone_number_id; quarantined")
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
        _unrouted(out, waba_id, change, pnid, reason=QuarantineReason.UNKNOWN_PHONE_NUMBER,
                  warning=f"{where}: unknown phone_number_id; change quarantined")
        return
    scope = Scope(out, where, waba_id, change.field, tenant, pnid, value)
    if change.field == "messages":
        messages_change(scope)
    elif change.field == "user_preferences":
        preferences_change(scope)
    else:
        scope.other(value)
