"""A webhook body → its :class:`~lawhub_actors.core.payload.models.Envelope`,
or :class:`PayloadError` (pure).

:func:`parse` checks only the skeleton every update shares: the body is
JSON nested no deeper than :data:`~lawhub_actors.core.limits.MAX_DEPTH`;
``object`` is ``"whatsapp_business_account"``; ``entry`` is a list of
objects, each with a list of ``changes``; each change has a string
``field`` and an object ``value``. Anything else raises
:class:`PayloadError` with ``code`` ``not_json``, ``too_deep``,
``wrong_object`` or ``bad_shape`` (the web layer answers 400). The message
never quotes the body.

JSON is parsed with ``orjson`` (three times faster than the stdlib here,
FACTS.md); its errors are ``ValueError`` subclasses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from lawhub_actors.core import limits
from lawhub_actors.core.payload.models import Envelope

WABA_OBJECT = "whatsapp_business_account"

_loads: Callable[[bytes], Any] = orjson.loads

PayloadErrorCode = Literal["not_json", "too_deep", "wrong_object", "bad_shape"]


class PayloadError(Exception):
    """A body that is not a WhatsApp webhook envelope; the suggested answer is 400."""

    http_status = 400

    def __init__(self, code: PayloadErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: PayloadErrorCode = code
        self.message = message


def parse(raw: bytes) -> Envelope:
    """The envelope of a webhook body, or :class:`PayloadError`."""
    try:
        document = _loads(raw)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        if limits.parser_depth_exceeded(exc):
            raise _too_deep() from None
        raise PayloadError("not_json", f"the body is not JSON ({type(exc).__name__})") from None
    if limits.too_deep(document, raw):
        raise _too_deep()
    return _envelope(document)


def parse_document(document: object) -> Envelope:
    """The envelope of an already-decoded JSON document, or :class:`PayloadError`."""
    if limits.too_deep(document):
        raise _too_deep()
    return _envelope(document)


def _too_deep() -> PayloadError:
    return PayloadError(
        "too_deep", f"the body nests more than {limits.MAX_DEPTH} levels of arrays and objects"
    )


def _envelope(document: object) -> Envelope:
    if not isinstance(document, dict):
        raise PayloadError("bad_shape", "the body is not a JSON object")
    if document.get("object") != WABA_OBJECT:
        raise PayloadError("wrong_object", f"'object' must be {WABA_OBJECT!r}")
    try:
        return Envelope.model_validate(document)
    except ValidationError as exc:
        raise PayloadError("bad_shape", "invalid " + error_fields(exc)) from None


def error_fields(exc: ValidationError, limit: int = 5) -> str:
    """The failing locations of ``exc`` (``entry.0.changes``), never the input values."""
    locations: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "(root)"
        if location not in locations:
            locations.append(location)
    shown = ", ".join(locations[:limit])
    more = len(locations) - limit
    return shown + (f" (+{more} more)" if more > 0 else "")
