"""Internal events the normalizer produces from Meta's webhooks (pure data).

Frozen, slotted, keyword-only dataclasses; pydantic stays at the boundary
(:mod:`lawhub_actors.core.payload`). ``Mapping`` fields hold plain dicts and
lists (so ``dataclasses.asdict`` and JSON encoders work): treat them as
read-only. They are left out of ``hash()``.

A *customer key* is the customer's ``wa_id`` or, where that is empty or
missing (users with a username, 2026), Meta's business-scoped ``user_id``.
Inbound messages and statuses use the same rule, so both sides of a
conversation share one key.

Dedupe keys: an inbound message is its ``wamid``; a status is
``wamid + ":" + status`` (the raw status string, so two different unknown
statuses never collapse into one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as _field
from enum import StrEnum
from typing import Any, Literal, TypeAlias

UNKNOWN_ERROR_CODE = -1
""":attr:`MetaError.code` when Meta sent an error without a readable code."""


class MessageType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"
    INTERACTIVE = "interactive"
    BUTTON = "button"
    REACTION = "reaction"
    ORDER = "order"
    SYSTEM = "system"
    UNSUPPORTED = "unsupported"
    UNKNOWN = "unknown"
    """A ``type`` this code does not know (yet): kept, with the raw string in
    ``details["raw_type"]`` and the raw object in ``details["raw"]``."""


MEDIA_TYPES = frozenset(
    {
        MessageType.IMAGE,
        MessageType.VIDEO,
        MessageType.AUDIO,
        MessageType.DOCUMENT,
        MessageType.STICKER,
    }
)


class StatusKind(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"
    UNKNOWN = "unknown"


class QuarantineReason(StrEnum):
    UNKNOWN_PHONE_NUMBER = "unknown_phone_number"
    """``metadata.phone_number_id`` belongs to no tenant."""
    NO_PHONE_NUMBER_ID = "no_phone_number_id"
    """A phone-number field (``messages``, ``user_preferences``) without one."""
    INVALID_VALUE = "invalid_value"
    INVALID_MESSAGE = "invalid_message"
    INVALID_STATUS = "invalid_status"
    INVALID_PREFERENCE = "invalid_preference"
    NO_CUSTOMER = "no_customer"
    """Neither a ``wa_id`` nor a ``user_id`` to key the customer by."""
    BAD_TIMESTAMP = "bad_timestamp"
    """A timestamp that is present but no time Meta can mean (2009 to 2100)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MetaError:
    """One entry of Meta's ``errors[]`` (message-, status- or value-level)."""

    code: int
    title: str | None = None
    message: str | None = None
    details: str | None = None
    """``error_data.details``."""
    href: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaRef:
    """A media attachment as the webhook announces it (nothing downloaded)."""

    id: str
    mime_type: str | None = None
    sha256: str | None = None
    """As Meta sent it: seen base64-encoded in webhooks, hex from
    ``GET /{media-id}``. The media step decodes and compares."""
    caption: str | None = None
    filename: str | None = None
    voice: bool = False
    """Audio recorded as a voice note."""
    animated: bool = False
    """Animated sticker."""
    url: str | None = None
    """Present in newer webhook versions; still needs the bearer token."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyContext:
    """``message.context``: a reply to ``message_id`` and/or a forward."""

    message_id: str | None = None
    sender: str | None = None
    """``context.from``: who sent the quoted message (usually our number)."""
    forwarded: bool = False
    frequently_forwarded: bool = False
    referred_product: Mapping[str, Any] | None = _field(default=None, hash=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Referral:
    """Where the chat came from: a click-to-WhatsApp ad or post."""

    source_type: str | None = None
    source_id: str | None = None
    source_url: str | None = None
    headline: str | None = None
    body: str | None = None
    media_type: str | None = None
    image_url: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    ctwa_clid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """A message a customer sent to one of a tenant's numbers."""

    tenant: str
    phone_number_id: str
    customer: str
    """The customer key: ``wa_id``, else ``user_id``."""
    wa_id: str | None
    user_id: str | None
    profile_name: str | None
    wamid: str
    timestamp: int
    """Unix seconds as Meta sent them (0 when missing, with a warning)."""
    type: MessageType
    text: str | None = None
    """What a lawyer reads: the body, caption, button text, reply title,
    reaction emoji, system notice, location name/address, contact names."""
    media: MediaRef | None = None
    details: Mapping[str, Any] = _field(default_factory=dict, hash=False)
    """The type-specific rest; always holds ``raw_type``. See
    :mod:`lawhub_actors.core.normalize` for the keys per type."""
    context: ReplyContext | None = None
    referral: Referral | None = None
    errors: tuple[MetaError, ...] = ()

    @property
    def dedupe_key(self) -> str:
        return self.wamid


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationInfo:
    id: str | None
    origin_type: str | None = None
    expiration: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Pricing:
    billable: bool | None = None
    pricing_model: str | None = None
    category: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusUpdate:
    """Meta's news about a message we sent."""

    tenant: str
    phone_number_id: str
    wamid: str
    status: StatusKind
    timestamp: int
    recipient: str | None
    """The customer key: ``recipient_id``, else ``recipient_user_id``."""
    raw_status: str = ""
    """The status string as sent (differs from ``status`` only for UNKNOWN)."""
    recipient_user_id: str | None = None
    errors: tuple[MetaError, ...] = ()
    conversation: ConversationInfo | None = None
    """Omitted by Meta from webhook v24.0 on, except free-entry-point chats."""
    pricing: Pricing | None = None
    biz_opaque_callback_data: str | None = None

    @property
    def dedupe_key(self) -> str:
        return f"{self.wamid}:{self.raw_status or self.status.value}"


PreferenceValue: TypeAlias = Literal["stop", "resume"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PreferenceUpdate:
    """A customer stopped or resumed a category (``marketing_messages``)."""

    tenant: str
    phone_number_id: str
    customer: str
    category: str
    value: PreferenceValue
    timestamp: int
    detail: str | None = None

    @property
    def dedupe_key(self) -> str:
        parts = (self.phone_number_id, self.customer, self.category, self.value, self.timestamp)
        return ":".join(map(str, parts))


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountErrors:
    """Value-level ``errors[]``: trouble with the number or the app, not one message."""

    tenant: str
    phone_number_id: str
    errors: tuple[MetaError, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherChange:
    """A change this code does not process yet, passed through untouched
    (``message_template_status_update``, ``account_update``,
    ``phone_number_quality_update``, ...). WABA-level fields carry no
    phone number: then ``tenant`` and ``phone_number_id`` are ``None`` and
    ``waba_id`` is what routes it."""

    tenant: str | None
    phone_number_id: str | None
    field: str
    value: Mapping[str, Any] = _field(default_factory=dict, hash=False)
    waba_id: str = ""


Event: TypeAlias = InboundMessage | StatusUpdate | PreferenceUpdate | AccountErrors | OtherChange


@dataclass(frozen=True, slots=True, kw_only=True)
class Quarantined:
    """Acknowledged to Meta, kept for operators, never processed into a tenant."""

    phone_number_id: str | None
    waba_id: str
    field: str
    reason: QuarantineReason
    change: Mapping[str, Any] = _field(default_factory=dict, hash=False)
    """The raw change (``{"field", "value"}``); for one bad item, a change
    holding the value's ``metadata`` and that item alone."""
