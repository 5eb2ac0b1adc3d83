"""Meta's webhook envelope as pydantic models: the boundary of the normalizer (pure).

Rules:

1. :func:`parse` checks only the skeleton every update shares: the body is
   JSON nested no deeper than :data:`~lawhub_actors.core.limits.MAX_DEPTH`;
   ``object`` is ``"whatsapp_business_account"``; ``entry`` is a list
   of objects, each with a list of ``changes``; each change has a string
   ``field`` and an object ``value``. Anything else raises
   :class:`PayloadError` with ``code`` ``not_json``, ``too_deep``,
   ``wrong_object`` or ``bad_shape`` (the web layer answers 400). The
   message never quotes the body.
2. What is inside a change's ``value`` is validated item by item by the
   normalizer with the item models below (:class:`Value`, :class:`Message`,
   :class:`Status`, ...), so one malformed message does not cost the other
   999 updates of a batch.
3. Meta adds fields all the time: every model keeps unknown fields
   (``extra="allow"``, reachable through ``model_extra``) and none is
   forbidden. Numbers where strings are expected are read as strings; Meta's
   string timestamps become ints; an unreadable float or flag becomes
   ``None`` instead of failing the item, and so does an integer SQLite
   cannot hold (outside 64 bits: ``"99999999999999999999"``, ``"1e308"``).
   A timestamp (:data:`Timestamp`) is ``None`` only when missing or null;
   one that is present is read whole and unbounded, and one that is no
   number at all reads as :data:`NOT_A_TIME`, so the normalizer can tell
   "not sent" from "sent, but no time" (which it quarantines).
4. JSON is parsed with ``orjson`` (three times faster than the stdlib
   here, FACTS.md); its errors are ``ValueError`` subclasses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from lawhub_actors.core import limits

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


# -- lenient scalars ---------------------------------------------------------


def _whole_number(value: object) -> int | None:
    """``value`` read as a whole number of any size (floats truncated), or
    ``None`` when it is no finite number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number: float
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:  # not an integer, or past Python's 4,300 digits
            pass
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    return int(number) if math.isfinite(number) else None


def _int_or_none(value: object) -> int | None:
    number = _whole_number(value)
    return number if number is not None and limits.storable_int(number) else None


NOT_A_TIME = -1
"""What a timestamp that is present but no number reads as (``"abc"``,
``true``, ``{}``, ``"1e400"``): a value no plausible time has, so it is
treated like any other timestamp out of range."""


def _timestamp_or_none(value: object) -> int | None:
    if value is None:
        return None
    number = _whole_number(value)
    return NOT_A_TIME if number is None else number


def _float_or_none(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        try:
            number = float(value)
        except (ValueError, OverflowError):
            return None
        return number if math.isfinite(number) else None
    return None


def _bool_or_none(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    return None


LenientInt = Annotated[int | None, BeforeValidator(_int_or_none)]
LenientFloat = Annotated[float | None, BeforeValidator(_float_or_none)]
LenientBool = Annotated[bool | None, BeforeValidator(_bool_or_none)]
Timestamp = Annotated[int | None, BeforeValidator(_timestamp_or_none)]
"""Unix seconds as sent, unbounded: ``None`` when missing, :data:`NOT_A_TIME`
when no number; the normalizer decides what is plausible
(:func:`lawhub_actors.core.limits.plausible_timestamp`)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, populate_by_name=True)


# -- the skeleton: validated by parse() --------------------------------------


class Change(_Model):
    field: str
    value: dict[str, Any]


class Entry(_Model):
    id: str = ""
    """The WhatsApp Business Account (WABA) id."""
    time: LenientInt = None
    changes: list[Change]


class Envelope(_Model):
    object: str
    entry: list[Entry]


# -- the items: validated one at a time by the normalizer --------------------


class Metadata(_Model):
    display_phone_number: str | None = None
    phone_number_id: str | None = None


class Profile(_Model):
    name: str | None = None
    username: str | None = None


class Contact(_Model):
    wa_id: str | None = None
    user_id: str | None = None
    """Business-scoped user id (2026 rollout); the only key for some username users."""
    parent_user_id: str | None = None
    profile: Profile | None = None


class ErrorData(_Model):
    details: str | None = None


class ErrorObject(_Model):
    code: LenientInt = None
    title: str | None = None
    message: str | None = None
    error_data: ErrorData | None = None
    href: str | None = None


class Context(_Model):
    from_: str | None = Field(default=None, alias="from")
    id: str | None = None
    forwarded: LenientBool = None
    frequently_forwarded: LenientBool = None
    referred_product: dict[str, Any] | None = None


class Referral(_Model):
    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    headline: str | None = None
    body: str | None = None
    media_type: str | None = None
    image_url: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    ctwa_clid: str | None = None


class Text(_Model):
    body: str | None = None


class Media(_Model):
    """Image, video, audio, document or sticker. ``sha256`` is kept as sent
    (webhooks have carried it base64-encoded; ``GET /{media-id}`` gives hex)."""

    id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    url: str | None = None
    voice: LenientBool = None
    animated: LenientBool = None


class Location(_Model):
    latitude: LenientFloat = None
    longitude: LenientFloat = None
    name: str | None = None
    address: str | None = None
    url: str | None = None


class ReplyChoice(_Model):
    id: str | None = None
    title: str | None = None
    description: str | None = None


class NfmReply(_Model):
    response_json: str | None = None
    body: str | None = None
    name: str | None = None


class Interactive(_Model):
    type: str | None = None
    button_reply: ReplyChoice | None = None
    list_reply: ReplyChoice | None = None
    nfm_reply: NfmReply | None = None


class Button(_Model):
    payload: str | None = None
    text: str | None = None


class Reaction(_Model):
    message_id: str | None = None
    emoji: str | None = None


class Order(_Model):
    catalog_id: str | None = None
    text: str | None = None
    product_items: list[dict[str, Any]] | None = None


class System(_Model):
    type: str | None = None
    body: str | None = None
    wa_id: str | None = None
    new_wa_id: str | None = None
    """Older name of ``wa_id`` in ``user_changed_number``."""
    user_id: str | None = None
    previous_user_id: str | None = None


class Unsupported(_Model):
    type: str | None = None


class Message(_Model):
    id: str
    """The ``wamid``: the inbound message's identity and dedupe key."""
    from_: str | None = Field(default=None, alias="from")
    from_user_id: str | None = None
    timestamp: Timestamp = None
    type: str | None = None
    context: Context | None = None
    referral: Referral | None = None
    errors: list[ErrorObject] | None = None
    identity: dict[str, Any] | None = None
    text: Text | None = None
    image: Media | None = None
    video: Media | None = None
    audio: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    contacts: list[dict[str, Any]] | None = None
    interactive: Interactive | None = None
    button: Button | None = None
    reaction: Reaction | None = None
    order: Order | None = None
    system: System | None = None
    unsupported: Unsupported | None = None


class Origin(_Model):
    type: str | None = None


class Conversation(_Model):
    id: str | None = None
    origin: Origin | None = None
    expiration_timestamp: LenientInt = None


class Pricing(_Model):
    billable: LenientBool = None
    pricing_model: str | None = None
    category: str | None = None
    type: str | None = None


class Status(_Model):
    id: str
    """The ``wamid`` of the message we sent."""
    status: str | None = None
    timestamp: Timestamp = None
    recipient_id: str | None = None
    recipient_user_id: str | None = None
    recipient_type: str | None = None
    conversation: Conversation | None = None
    pricing: Pricing | None = None
    errors: list[ErrorObject] | None = None
    biz_opaque_callback_data: str | None = None


class UserPreference(_Model):
    wa_id: str | None = None
    user_id: str | None = None
    category: str | None = None
    value: str | None = None
    detail: str | None = None
    timestamp: Timestamp = None


class Value(_Model):
    """A change's ``value`` for the phone-number fields (``messages``,
    ``user_preferences``); the lists hold raw items, validated one by one."""

    messaging_product: str | None = None
    metadata: Metadata | None = None
    contacts: list[Any] | None = None
    messages: list[Any] | None = None
    statuses: list[Any] | None = None
    errors: list[Any] | None = None
    user_preferences: list[Any] | None = None


# -- parsing -----------------------------------------------------------------


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
