"""Sends WhatsApp messages through Meta's Graph API (asyncio, aiohttp: the outbound
calls run as coroutines on one event loop, :mod:`~lawhub_actors.adapters.call_loop`).

One call, ``Authorization: Bearer <access token>``::

    POST {base_url}/{phone_number_id}/messages
         {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+62…",
          "type": "text", "text": {"body": …}, "biz_opaque_callback_data": <our id>}
      or "type": "template", "template": {"name", "language": {"code"},
                                           "components": [{"type": "body", "parameters":
                                              [{"type": "text", "text": …}, …]}]}
    200  {"messaging_product": "whatsapp", "contacts": [{"input", "wa_id"}],
          "messages": [{"id": "wamid.…"}]}     -> Sent (accepted by Meta, not delivered)

Every other outcome is a :class:`SendFailed`, never an exception: Meta's error body is
parsed for ``error.code``, the title (``error_user_title``, else ``type``), ``message``
and ``error_data.details``; a transport error or timeout has ``status=None`` and a
message saying which; a 200 without ``messages[0].id`` is ``SendFailed(status=200,
code=None)``. Deciding what to retry belongs to the caller (Meta's code first, the HTTP
status second; a 5xx or a timeout leaves it unknown whether the message went out).

``to`` always leaves with a leading ``+``: without it Meta prepends the business
number's country code. Our message id travels in ``biz_opaque_callback_data`` and comes
back in the status webhooks. Nothing is logged here, and no failure carries the token,
the request body or a response body other than Meta's own error fields.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from lawhub_actors.adapters.graph_http import json_object

__all__ = ["GraphSend", "SendFailed", "SendResult", "Sent"]

_BODY_CAP = 256 * 1024  # read at most this much of an answer
_RECIPIENT = re.compile(r"\+?[0-9]{5,15}")


@dataclass(frozen=True, slots=True)
class Sent:
    """Meta took the message: ``wamid`` is its id (status webhooks carry it)."""

    wamid: str
    wa_id: str | None


@dataclass(frozen=True, slots=True)
class SendFailed:
    """The send did not succeed. ``status`` is None for a transport error or timeout
    (``title`` "timeout" / "transport error"); ``code`` is Meta's ``error.code`` if any."""

    status: int | None
    code: int | None
    title: str
    message: str
    details: str


SendResult = Sent | SendFailed


class GraphSend:
    """Text and template sends over one pooled HTTP session, created on the
    event loop of the first send (a session belongs to one loop); closed by
    :meth:`close` on that loop. A ``session`` given is the caller's (tests),
    never closed here."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        timeout_s: float = 10.0,
        max_connections: int = 32,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if not access_token or not access_token.isascii() or not access_token.isprintable():
            raise ValueError("access_token must be non-empty printable ASCII")
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {access_token}",
                         "Content-Type": "application/json"}
        # Each phase on its own clock, as httpx's Timeout(timeout_s) had it:
        # waiting for a pooled connection and connecting, then each read.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout_s,
                                              sock_connect=timeout_s, sock_read=timeout_s)
        self._max_connections = max_connections
        self._session = session
        self._owns_session = session is None

    async def close(self) -> None:
        """Close the HTTP session if this object created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()

    def _pooled(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections,
                                               limit_per_host=self._max_connections),
                timeout=self._timeout,
                trust_env=True)  # HTTPS_PROXY / NO_PROXY, as httpx (media downloads) does
        return self._session

    # -- sends -------------------------------------------------------------------------------

    async def text(self, phone_number_id: str, to: str, body: str, *,
                   callback: str) -> SendResult:
        """A free-form text (only inside the customer's 24-hour window, Meta says)."""
        return await self._send(phone_number_id, to, "text", {"body": body}, callback)

    async def template(
        self,
        phone_number_id: str,
        to: str,
        name: str,
        language: str,
        params: Sequence[str],
        *,
        callback: str,
    ) -> SendResult:
        """An approved template with positional body parameters ``{{1}}…`` in order."""
        if isinstance(params, str):
            raise TypeError("params must be a sequence of strings, not one string")
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if params:
            template["components"] = [{
                "type": "body",
                "parameters": [{"type": "text", "text": param} for param in params],
            }]
        return await self._send(phone_number_id, to, "template", template, callback)

    async def _send(
        self, phone_number_id: str, to: str, kind: str, content: dict[str, Any], callback: str
    ) -> SendResult:
        if not phone_number_id:
            raise ValueError("phone_number_id must not be empty")
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": _international(to),
            "type": kind,
            kind: content,
            "biz_opaque_callback_data": callback,
        }
        url = f"{self._base_url}/{quote(phone_number_id, safe='')}/messages"
        try:
            async with self._pooled().post(url, data=orjson.dumps(payload),
                                           headers=self._headers) as response:
                status = response.status
                body = await _read_capped(response.content, _BODY_CAP)
        except aiohttp.ConnectionTimeoutError:
            return _timed_out("connect")
        except aiohttp.SocketTimeoutError:
            return _timed_out("read")
        except TimeoutError:
            return _timed_out("timeout")
        except aiohttp.ClientError as exc:
            return SendFailed(
                None, None, "transport error",
                f"send failed in transport ({type(exc).__name__})", "",
            )
        if 200 <= status < 300:
            return _sent(status, body)
        return _failed(status, body)


async def _read_capped(content: aiohttp.StreamReader, cap: int) -> bytes:
    """At most ``cap`` bytes of a streamed body (a huge error page is not pulled in)."""
    parts: list[bytes] = []
    size = 0
    while size < cap:
        chunk = await content.read(cap - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def _timed_out(phase: str) -> SendFailed:
    return SendFailed(None, None, "timeout", f"send timed out ({phase})", "")


def _international(to: str) -> str:
    """``to`` as Meta wants it: ``+`` and the country code (digits only otherwise)."""
    number = to.strip()
    if not _RECIPIENT.fullmatch(number):
        raise ValueError("to must be a phone number in international form: [+]digits")
    return number if number.startswith("+") else "+" + number


def _sent(status: int, body: bytes) -> SendResult:
    document = json_object(body) or {}
    messages = document.get("messages")
    first = messages[0] if isinstance(messages, list) and messages else None
    wamid = first.get("id") if isinstance(first, dict) else None
    if not isinstance(wamid, str) or not wamid:
        return SendFailed(
            status, None, "malformed answer", "a success answer without messages[0].id", ""
        )
    contacts = document.get("contacts")
    contact = contacts[0] if isinstance(contacts, list) and contacts else None
    wa_id = contact.get("wa_id") if isinstance(contact, dict) else None
    return Sent(wamid=wamid, wa_id=wa_id if isinstance(wa_id, str) else None)


def _failed(status: int, body: bytes) -> SendFailed:
    document = json_object(body)
    error = document.get("error") if document is not None else None
    if not isinstance(error, dict):
        return SendFailed(
            status, None, f"HTTP {status}", f"HTTP {status} without a Graph API error body", ""
        )
    code = error.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    title = _text(error.get("error_user_title")) or _text(error.get("type"))
    error_data = error.get("error_data")
    details = _text(error_data.get("details")) if isinstance(error_data, dict) else ""
    return SendFailed(status, code, title, _text(error.get("message")), details)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
