"""Per message type: what a lawyer reads (pure).

Each Meta message ``type`` carries its content in a sibling object
(``"text": {"body": ...}``, ``"image": {...}``, ``"interactive": {...}``).
:data:`BODIES` maps a :class:`MessageType` to the function that turns that
object into a :class:`Body`: the readable text (body, caption, button or
reply title, reaction emoji, location name, contact names, system notice),
the media reference, and the type-specific details the store keeps. The
envelope walking, contacts and warnings live in
:mod:`lawhub_actors.core.normalize`.

``InboundMessage.text`` and ``details`` per type (``details["raw_type"]``
always):

============  ==========================  =====================================
type          text                        details
============  ==========================  =====================================
text          body                        —
image/video/  caption                     — (the rest is in ``media``)
document
audio/sticker —                           — (``media.voice`` / ``.animated``)
location      name, address               latitude, longitude, name, address, url
contacts      formatted names             contacts (the raw cards)
interactive   reply title / flow body     interactive_type, reply_id,
                                          description, response_json, flow_name
button        button text                 payload
reaction      emoji (None = un-react)     message_id, emoji, removed
order         order text                  catalog_id, product_items
system        system body                 system_type, new_wa_id, user_id,
                                          previous_user_id, identity
unsupported   —                           unsupported_type
unknown       —                           raw (the object under the type name)
============  ==========================  =====================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from lawhub_actors.core import payload as p
from lawhub_actors.core.events import MediaRef, MessageType, Referral, ReplyContext

_ENUM_NAME = re.compile(r"[a-z][a-z_]{0,31}")


def safe_name(name: str) -> str:
    """A Meta-supplied enum name (type, status, value) fit for a warning.

    Shown only when it looks like an enum name — a short lowercase
    identifier without digits; anything else may be client text or a phone
    number, so it is described by its length, never shown."""
    if _ENUM_NAME.fullmatch(name):
        return repr(name)
    return f"<{len(name)} characters, not shown>"


class Body(NamedTuple):
    """What a message type contributes: the text a lawyer reads, its media,
    type-specific details, and a problem worth a warning (never client text)."""

    text: str | None = None
    media: MediaRef | None = None
    details: dict[str, Any] = {}  # shared default: callers copy, never mutate
    problem: str | None = None


def reply_context(c: p.Context | None) -> ReplyContext | None:
    if c is None:
        return None
    return ReplyContext(
        message_id=c.id,
        sender=c.from_,
        forwarded=bool(c.forwarded),
        frequently_forwarded=bool(c.frequently_forwarded),
        referred_product=c.referred_product,
    )


def referral(r: p.Referral | None) -> Referral | None:
    if r is None:
        return None
    return Referral(
        source_type=r.source_type,
        source_id=r.source_id,
        source_url=r.source_url,
        headline=r.headline,
        body=r.body,
        media_type=r.media_type,
        image_url=r.image_url,
        video_url=r.video_url,
        thumbnail_url=r.thumbnail_url,
        ctwa_clid=r.ctwa_clid,
    )


def _missing(type_name: str) -> str:
    return f"{type_name!r} message without its {type_name!r} object"


def _text_body(m: p.Message, _raw: str) -> Body:
    if m.text is None:
        return Body(problem=_missing("text"))
    return Body(text=m.text.body)


def _media_body(m: p.Message, raw: str) -> Body:
    media = {
        "image": m.image,
        "video": m.video,
        "audio": m.audio,
        "document": m.document,
        "sticker": m.sticker,
    }[raw]
    if media is None:
        return Body(problem=_missing(raw))
    if not media.id:
        return Body(text=media.caption, problem=f"{raw!r} media without an id")
    ref = MediaRef(
        id=media.id,
        mime_type=media.mime_type,
        sha256=media.sha256,
        caption=media.caption,
        filename=media.filename,
        voice=bool(media.voice),
        animated=bool(media.animated),
        url=media.url,
    )
    return Body(text=media.caption, media=ref)


def _location_body(m: p.Message, _raw: str) -> Body:
    loc = m.location
    if loc is None:
        return Body(problem=_missing("location"))
    text = ", ".join(part for part in (loc.name, loc.address) if part) or None
    details = {
        "latitude": loc.latitude,
        "longitude": loc.longitude,
        "name": loc.name,
        "address": loc.address,
        "url": loc.url,
    }
    return Body(text=text, details=details)


def _card_name(card: Mapping[str, Any]) -> str | None:
    name = card.get("name")
    if not isinstance(name, dict):
        return None
    formatted = name.get("formatted_name")
    if isinstance(formatted, str) and formatted:
        return formatted
    parts = [name.get(key) for key in ("first_name", "last_name")]
    return " ".join(part for part in parts if isinstance(part, str) and part) or None


def _contacts_body(m: p.Message, _raw: str) -> Body:
    if m.contacts is None:
        return Body(problem=_missing("contacts"))
    names = [name for name in map(_card_name, m.contacts) if name]
    return Body(text=", ".join(names) or None, details={"contacts": m.contacts})


def _interactive_body(m: p.Message, _raw: str) -> Body:
    it = m.interactive
    if it is None:
        return Body(problem=_missing("interactive"))
    kind = it.type or ""
    details: dict[str, Any] = {"interactive_type": kind}
    if kind in ("button_reply", "list_reply"):
        choice = it.button_reply if kind == "button_reply" else it.list_reply
        if choice is None:
            return Body(details=details, problem=f"{kind!r} reply without its object")
        details["reply_id"] = choice.id
        if kind == "list_reply":
            details["description"] = choice.description
        return Body(text=choice.title, details=details)
    if kind == "nfm_reply":
        nfm = it.nfm_reply
        if nfm is None:
            return Body(details=details, problem="'nfm_reply' reply without its object")
        details["response_json"] = nfm.response_json
        details["flow_name"] = nfm.name
        return Body(text=nfm.body, details=details)
    details["raw"] = (it.model_extra or {}).get(kind)
    return Body(details=details, problem=f"unknown interactive type {safe_name(kind)}")


def _button_body(m: p.Message, _raw: str) -> Body:
    if m.button is None:
        return Body(problem=_missing("button"))
    return Body(text=m.button.text, details={"payload": m.button.payload})


def _reaction_body(m: p.Message, _raw: str) -> Body:
    r = m.reaction
    if r is None:
        return Body(problem=_missing("reaction"))
    emoji = r.emoji or None
    return Body(
        text=emoji, details={"message_id": r.message_id, "emoji": emoji, "removed": emoji is None}
    )


def _order_body(m: p.Message, _raw: str) -> Body:
    o = m.order
    if o is None:
        return Body(problem=_missing("order"))
    details = {"catalog_id": o.catalog_id, "product_items": o.product_items or []}
    return Body(text=o.text or None, details=details)


def _system_body(m: p.Message, _raw: str) -> Body:
    s = m.system
    if s is None:
        return Body(problem=_missing("system"))
    details = {
        "system_type": s.type,
        "new_wa_id": s.wa_id or s.new_wa_id,
        "user_id": s.user_id,
        "previous_user_id": s.previous_user_id,
        "identity": m.identity,
    }
    return Body(text=s.body, details=details)


def _unsupported_body(m: p.Message, _raw: str) -> Body:
    return Body(details={"unsupported_type": m.unsupported.type if m.unsupported else None})


def _unknown_body(m: p.Message, raw: str) -> Body:
    return Body(details={"raw": (m.model_extra or {}).get(raw) if raw else None})


BODIES: Mapping[MessageType, Callable[[p.Message, str], Body]] = {
    # one entry per MessageType (UNKNOWN included): the table is the dispatch
    MessageType.TEXT: _text_body,
    MessageType.IMAGE: _media_body,
    MessageType.VIDEO: _media_body,
    MessageType.AUDIO: _media_body,
    MessageType.DOCUMENT: _media_body,
    MessageType.STICKER: _media_body,
    MessageType.LOCATION: _location_body,
    MessageType.CONTACTS: _contacts_body,
    MessageType.INTERACTIVE: _interactive_body,
    MessageType.BUTTON: _button_body,
    MessageType.REACTION: _reaction_body,
    MessageType.ORDER: _order_body,
    MessageType.SYSTEM: _system_body,
    MessageType.UNSUPPORTED: _unsupported_body,
    MessageType.UNKNOWN: _unknown_body,
}
