"""Meta-shaped webhook traffic, signed like Meta signs it.

Builds the bodies Meta POSTs (``object`` → ``entry[]`` → ``changes[]`` →
``value``), serialised the way Meta does — compact, with non-ASCII escaped
as ``\\uXXXX`` — and the ``X-Hub-Signature-256`` header over those exact
bytes. Used by the tests, the benchmarks and ``run.py demo``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as random_source
from dataclasses import dataclass
from typing import Any

from lawhub_actors.core.signature import sign

WABA_ID = "102290129340398"


def wamid() -> str:
    """A fresh id shaped like Meta's (``wamid.`` + base64)."""
    return "wamid.HBgM" + random_source.token_urlsafe(24)


def metadata(phone_number_id: str, display: str = "6281110000001") -> dict[str, str]:
    return {"display_phone_number": display, "phone_number_id": phone_number_id}


def text_message(
    phone_number_id: str, wa_id: str, body: str, *, message_id: str | None = None,
    timestamp: int = 1_767_000_000, name: str = "Budi Santoso",
) -> dict[str, Any]:
    """One ``messages`` change carrying a text message."""
    return {
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": metadata(phone_number_id),
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [{
                "from": wa_id, "id": message_id or wamid(), "timestamp": str(timestamp),
                "type": "text", "text": {"body": body},
            }],
        },
    }


def media_message(
    phone_number_id: str, wa_id: str, kind: str, media: dict[str, Any], *,
    message_id: str | None = None, timestamp: int = 1_767_000_000, name: str = "Budi Santoso",
) -> dict[str, Any]:
    """One ``messages`` change carrying an image, video, audio, document or
    sticker: ``media`` is Meta's object (``id``, ``mime_type``, ``sha256``,
    and ``caption`` / ``filename`` / ``voice`` / ``animated`` as the kind has)."""
    change = text_message(phone_number_id, wa_id, "", message_id=message_id,
                          timestamp=timestamp, name=name)
    message = change["value"]["messages"][0]
    del message["text"]
    message["type"] = kind
    message[kind] = media
    return change


def media_object(media_id: str, data: bytes, mime_type: str, **fields: Any) -> dict[str, Any]:
    """Meta's object for a file a client sent, stored on the Graph side as ``media_id``:
    its SHA-256 as webhooks carry it (base64), and ``caption`` / ``filename`` /
    ``voice`` / ``animated`` as given."""
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return {"id": media_id, "mime_type": mime_type, "sha256": digest, **fields}


def status_change(
    phone_number_id: str, recipient: str, message_id: str, status: str, *,
    timestamp: int = 1_767_000_100, callback: str | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": message_id, "status": status, "timestamp": str(timestamp),
        "recipient_id": recipient,
        "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility",
                    "type": "regular"},
    }
    if callback is not None:
        entry["biz_opaque_callback_data"] = callback
    return {"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": metadata(phone_number_id), "statuses": [entry],
    }}


def envelope(*changes: dict[str, Any], waba_id: str = WABA_ID) -> dict[str, Any]:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": list(changes)}]}


def encode(document: dict[str, Any]) -> bytes:
    """Meta's serialisation: compact JSON, non-ASCII as ``\\uXXXX`` escapes."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True, slots=True)
class SignedPost:
    body: bytes
    headers: dict[str, str]


def signed(document: dict[str, Any], app_secret: bytes) -> SignedPost:
    body = encode(document)
    return SignedPost(body, {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign(app_secret, body),
    })


# -- outbound statuses (what Meta POSTs back after a send) -------------------------------------

ERROR_CODES_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


def status_pricing(
    category: str, *, billable: bool = True, kind: str = "regular"
) -> dict[str, Any]:
    """A status's ``pricing`` under per-message pricing (``PMP``): ``category`` is
    ``marketing`` / ``utility`` / ``authentication`` / ``service``; ``kind`` is Meta's
    ``type`` (``regular``, ``free_customer_service``, ``free_entry_point``)."""
    return {"billable": billable, "pricing_model": "PMP", "category": category, "type": kind}


def status_error(
    code: int, title: str, details: str, *, message: str | None = None
) -> dict[str, Any]:
    """One entry of a ``failed`` status's ``errors[]``, as Meta writes it."""
    return {
        "code": code,
        "title": title,
        "message": message if message is not None else title,
        "error_data": {"details": details},
        "href": ERROR_CODES_HREF,
    }


def outbound_status(
    phone_number_id: str, recipient: str, message_id: str, status: str, *,
    timestamp: int, callback: str | None = None, display: str = "6281110000001",
    pricing: dict[str, Any] | None = None, errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One ``messages`` change carrying the status of a message the business sent.

    Like :func:`status_change`, with the business number's ``display``, ``pricing`` as
    given (``None`` omits it, as Meta does on ``failed``), and ``errors[]`` for
    ``failed``. ``conversation`` is left out, as from v24.0 on.
    """
    change = status_change(
        phone_number_id, recipient, message_id, status, timestamp=timestamp, callback=callback
    )
    value = change["value"]
    value["metadata"] = metadata(phone_number_id, display)
    entry = value["statuses"][0]
    if pricing is None:
        del entry["pricing"]
    else:
        entry["pricing"] = dict(pricing)
    if errors:
        entry["errors"] = [dict(error) for error in errors]
    return change
