"""What operators may see of quarantined webhook data: its shape, never a
client's words.

Quarantined data is kept sealed in full (the journal has the body too), for
the firm it belongs to. An operator deciding what to do with it needs ids,
types, sizes, reasons and times: :func:`for_operators` keeps exactly those
and replaces everything else — message text, captions, profile names,
phone numbers — by its type and size.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

KEPT = frozenset({"field", "waba_id", "tenant", "index", "dedupe_key"})
"""Keys whose values are our own words or Meta's ids: shown as they are."""

ERRORS = frozenset({"error", "unstorable"})
"""Keys holding an error as ``"ExceptionName: message"``: only the name is
shown (an exception's message may quote its input, a client's words);
an error of ours without a name (a payload's refusal) is shown whole."""

_ERROR_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*): ")

_MESSAGE_IDS = ("id", "type", "timestamp")
_STATUS_IDS = ("id", "status", "timestamp")


def masked_number(number: str) -> str:
    """A phone number or ``wa_id`` as operators see it, its last four digits: ``"…1234"``."""
    return "\u2026" + "".join(c for c in number if c.isdigit())[-4:]


def size_of(value: Any) -> int:
    """Bytes of ``value`` as JSON (0 when it cannot be serialised)."""
    try:
        return len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return 0


def _shape(value: Any) -> dict[str, Any]:
    return {"kind": type(value).__name__, "bytes": size_of(value)}


def _picked(item: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(item, dict):
        return _shape(item)
    picked = {key: item[key] for key in keys if isinstance(item.get(key), str | int)}
    return {**picked, "bytes": size_of(item)}


def _change(change: Any) -> dict[str, Any]:
    """A change's ids and sizes: its messages and statuses by id, type and
    size; how many contacts and errors; nothing they say."""
    value = change.get("value") if isinstance(change, dict) else None
    if not isinstance(value, dict):
        return _shape(change)
    view: dict[str, Any] = {"bytes": size_of(change)}
    if isinstance(change.get("field"), str):
        view["field"] = change["field"]
    metadata = value.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("phone_number_id"), str):
        view["phone_number_id"] = metadata["phone_number_id"]
    for key, ids in (("messages", _MESSAGE_IDS), ("statuses", _STATUS_IDS)):
        items = value.get(key)
        if isinstance(items, list):
            view[key] = [_picked(item, ids) for item in items]
    for key in ("contacts", "errors"):
        items = value.get(key)
        if isinstance(items, list):
            view[key] = len(items)
    return view


def for_operators(data: Any) -> dict[str, Any]:
    """The operator's view of one quarantine entry's data."""
    if not isinstance(data, dict):
        return _shape(data)
    view: dict[str, Any] = {}
    for key, value in data.items():
        if key in KEPT and isinstance(value, str | int | float | bool | type(None)):
            view[key] = value
        elif key in ERRORS and isinstance(value, str):
            named = _ERROR_NAME.match(value)
            view[key] = named.group(1) if named else value
        elif key == "change":
            view[key] = _change(value)
        else:
            view[key] = _shape(value)
    return view
