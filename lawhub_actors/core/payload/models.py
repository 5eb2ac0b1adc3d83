"""Meta's webhook envelope as pydantic models (pure).

The skeleton every update shares (:class:`Envelope`, :class:`Entry`,
:class:`Change`) is validated whole by
:func:`~lawhub_actors.core.payload.parsing.parse`. What is inside a change's
``value`` is validated item by item by the normalizer with the item models
(:class:`Value`, :class:`Message`, :class:`Status`, ...), so one malformed
message does not cost the other 999 updates of a batch.

Meta adds fields all the time: every model keeps unknown fields
(``extra="allow"``, reachable through ``model_extra``) and none is
forbidden. Numbers where strings are expected are read as strings; the
other scalars are read leniently (:mod:`~lawhub_actors.core.payload.scalars`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lawhub_actors.core.payload.scalars import LenientBool, LenientFloat, LenientInt, Timestamp


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
