"""Where the normalizer's results go, and what every item handler shares (pure):
the routed change an item belongs to, its warnings and quarantines, and its
timestamps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from lawhub_actors.core import limits
from lawhub_actors.core import payload as p
from lawhub_actors.core.events import Event, OtherChange, Quarantined, QuarantineReason

M = TypeVar("M", bound=BaseModel)


class Out:
    """The events, quarantined changes and warnings of one body, in payload order."""

    __slots__ = ("events", "quarantined", "warnings")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.quarantined: list[Quarantined] = []
        self.warnings: list[str] = []


@dataclass(slots=True)
class Scope:
    """One routed change: where it is, whose it is, and where results go."""

    out: Out
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
        self._quarantine(reason, self.value)

    def quarantine_item(self, reason: QuarantineReason, items: str, raw: object, *,
                        item: str, why: str) -> None:
        """Quarantine one of the change's ``items`` alone, warning ``why``."""
        self.warn(item, f"{why}; quarantined")
        value: dict[str, Any] = {items: [raw]}
        if "metadata" in self.value:
            value = {"metadata": self.value["metadata"], **value}
        self._quarantine(reason, value)

    def _quarantine(self, reason: QuarantineReason, value: Mapping[str, Any]) -> None:
        self.out.quarantined.append(
            Quarantined(
                phone_number_id=self.phone_number_id,
                waba_id=self.waba_id,
                field=self.field,
                reason=reason,
                change={"field": self.field, "value": value},
            )
        )

    def item(self, model: type[M], raw: object, *, reason: QuarantineReason, items: str,
             item: str, what: str) -> M | None:
        """``raw`` read as ``model``, or None when it cannot be (then it is
        quarantined alone, with a warning naming ``what`` it should have been)."""
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            self.quarantine_item(reason, items, raw,
                                item=item, why=f"invalid {what} ({p.error_fields(exc)})")
            return None

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


def change_value(scope: Scope) -> p.Value | None:
    """The change's ``value`` validated, or ``None`` with the change quarantined."""
    try:
        return p.Value.model_validate(scope.value)
    except ValidationError as exc:
        scope.quarantine_change(QuarantineReason.INVALID_VALUE)
        scope.warn("", f"invalid value ({p.error_fields(exc)}); change quarantined")
        return None


def timestamp_or_zero(scope: Scope, item: str, timestamp: int | None) -> int:
    """An item's timestamp, 0 (with a warning) when missing."""
    if timestamp is None:
        scope.warn(item, "timestamp missing; 0 used")
        return 0
    return timestamp


def impossible_time(
    scope: Scope, item: str, items: str, raw: object, timestamp: int | None
) -> bool:
    """Whether ``timestamp`` is present but implausible; if so the item is quarantined."""
    if timestamp is None or limits.plausible_timestamp(timestamp):
        return False
    scope.quarantine_item(QuarantineReason.BAD_TIMESTAMP, items, raw,
                         item=item, why="timestamp is not a time between 2009 and 2100")
    return True
