"""The redaction processor: no log line carries message content, phone numbers or secrets.

:func:`redact` is the structlog processor every line passes, structlog's and
the standard library's alike (see :mod:`lawhub_actors.logs.setup`):

- Values of sensitive keys (any nesting depth, key compared case-insensitively
  with ``-`` read as ``_``) become ``"[redacted]"``: message content (``body``,
  ``text``, ``caption``, ``message``, ``params``, ``payload``, ...), people's
  identifiers (``phone``, ``display``, ``wa_id``, ``to``, ``from``,
  ``user_id``, ``profile``, ...) and credentials (``token``, ``secret``,
  ``password``, ``authorization``, ``signature``, ...). Keys *containing*
  ``token``, ``secret``, ``password``, ``phone``, ``wa_id``, ``body``,
  ``caption`` or ``signature`` count too (``customer_phone``, ``access_token``).
- Every other string, the event name included, has phone-number-like digit
  runs (8+ digits, optional ``+``, single spaces, dashes or parentheses
  between digits) replaced by ``"[phone]"``. ISO dates in free text are
  masked too: the safe side of the trade.
- Registered secret values are replaced by ``"[redacted]"`` everywhere,
  whatever their length (one shorter than :data:`MIN_SECRET_LENGTH` only as
  a whole word, so a 3-letter verify token does not blank every word
  holding those letters). Credentials in free text are too, whoever wrote
  them: ``Bearer <token>``, ``Basic <token>`` and a query's or form's
  ``token=``, ``hub.verify_token=``, ``access_token=``, ``secret=``,
  ``password=``, ``signature=`` values (tenant API tokens are never known
  to the gateway in clear, only their hashes, so only their shape can
  catch them).

Keys in :data:`ID_KEYS` carry our own identifiers, which may hold long digit
runs legitimately (Meta's business ``phone_number_id``, actor paths such as
``outbound/limiters/106540352242922``, timestamps); their values skip the
phone scrub (never the secret scrub). The event name is not one of them: it
is kept, but scrubbed like any other text. Log a URL path under ``url``, not
``path``: ``path`` means an actor path. A customer is logged as
:func:`~lawhub_actors.logs.pseudonyms.conversation_ref`, never by number.

What redaction cannot recognise is free text under a neutral key or inside
an exception message; the rule is to pass message content only under the
content keys above, and ids otherwise.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Mapping
from typing import Any

from structlog.typing import EventDict, WrappedLogger

REDACTED = "[redacted]"
PHONE = "[phone]"

SENSITIVE_KEYS = frozenset(
    {
        "body",
        "text",
        "caption",
        "message",
        "params",
        "content",
        "payload",
        "raw",
        "phone",
        "display",
        "wa_id",
        "to",
        "from",
        "recipient",
        "user_id",
        "profile",
        "profile_name",
        "msisdn",
        "token",
        "secret",
        "password",
        "authorization",
        "cookie",
        "set_cookie",
        "api_token",
        "access_token",
        "app_secret",
        "master_key",
        "api_key",
    }
)
SENSITIVE_PARTS = ("token", "secret", "password", "phone", "wa_id", "body", "caption", "signature")
ID_KEYS = frozenset(
    {
        "level",
        "logger",
        "timestamp",
        "tenant",
        "tenant_id",
        "msg_id",
        "message_id",
        "wamid",
        "conversation",
        "phone_number_id",
        "path",
        "actor",
        "supervisor",
        "seq",
        "since",
        "ref",
        "media_ref",
        "dlq_id",
    }
)

# 8+ digits; an optional leading "+" or "("; up to two of space, dash or
# parenthesis between digits: "+62 811 1000 001", "0811-1000-001",
# "(0811) 1000 001", "+1 (415) 555-0100", "6281110000001".
PHONE_PATTERN = re.compile(r"\+?\(?\d(?:[ \-()]{0,2}\d){7,}")

# Shorter values are redacted as whole words only: anywhere, they would turn
# common words into "[redacted]" all over the logs.
MIN_SECRET_LENGTH = 6

CREDENTIAL_PATTERN = re.compile(
    r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"
    r"|(\bauthorization[\"']?\s*[:=]\s*[\"']?)[^\s\"',]+(?:\s+[^\s\"',]+)?"
    r"|((?<![A-Za-z0-9])(?:[a-z_.]*_)?(?:token|secret|password|signature)"
    r"(?:[\"']?\s*[:=]\s*[\"']?|%3D))[^&;\s'\"\\,}]+"
)
"""A credential in free text: a bearer token, an ``Authorization`` header's
value (any scheme), or the value of a parameter or key named like a
credential (``token=``, ``hub.verify_token=``, ``client_secret=``,
``'access_token': '...'``, ``"password":"..."``, ``token%3D...``)."""

_secrets_lock = threading.Lock()
_secret_values: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None


def register_secret(value: str | bytes) -> None:
    """Make ``value`` (text, or bytes as base64 in both alphabets) unloggable."""
    if isinstance(value, bytes):
        texts = [base64.b64encode(value).decode(), base64.urlsafe_b64encode(value).decode()]
    else:
        texts = [value]
    global _secret_pattern  # noqa: PLW0603 - one process-wide set, swapped atomically
    with _secrets_lock:
        _secret_values.update(text for text in texts if text)
        if _secret_values:
            # Longest first, so a secret containing another is removed whole.
            ordered = sorted(_secret_values, key=len, reverse=True)
            _secret_pattern = re.compile("|".join(_secret_regex(text) for text in ordered))


def _secret_regex(text: str) -> str:
    """``text`` anywhere, or as a whole word when it is short."""
    if len(text) >= MIN_SECRET_LENGTH:
        return re.escape(text)
    return rf"(?<![A-Za-z0-9_]){re.escape(text)}(?![A-Za-z0-9_])"


def scrub(text: str, *, phones: bool = True) -> str:
    """``text`` with registered secrets and (unless ``phones=False``) phone-like
    digit runs masked."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = CREDENTIAL_PATTERN.sub(_credential, text)
    if phones:
        text = PHONE_PATTERN.sub(PHONE, text)
    return text


def _credential(match: re.Match[str]) -> str:
    return f"{match.group(1) or match.group(2) or match.group(3)}{REDACTED}"


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor applying the rules of this module to every value."""
    return {key: _redact_item(key, value) for key, value in event_dict.items()}


def _is_sensitive(key: str) -> bool:
    name = key.lower().replace("-", "_")
    if name in ID_KEYS:
        return False
    return name in SENSITIVE_KEYS or any(part in name for part in SENSITIVE_PARTS)


def _redact_item(key: object, value: Any) -> Any:
    name = str(key)
    if _is_sensitive(name):
        return REDACTED
    return _redact_value(value, phones=name.lower() not in ID_KEYS)


def _redact_value(value: Any, *, phones: bool) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrub(value, phones=phones)
    if isinstance(value, Mapping):
        return {str(key): _redact_item(key, item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(item, phones=phones) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return f"[{len(value)} bytes]"
    return scrub(repr(value), phones=phones)
