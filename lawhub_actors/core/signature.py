"""Meta's webhook authentication (pure).

- POST bodies carry ``X-Hub-Signature-256: sha256=<hex>``: the lowercase hex
  HMAC-SHA256 of the *raw* body, keyed by the app secret. Meta signs the
  body as sent (escaped unicode), so the check runs on the exact bytes,
  never on re-serialised JSON. Comparison is constant-time.
- The GET subscription handshake is *not* signed: it echoes
  ``hub.challenge`` when ``hub.mode == "subscribe"`` and the verify token
  matches.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

PREFIX = "sha256="
_HEX64 = re.compile(r"[0-9a-f]{64}")


def sign(secret: bytes, body: bytes) -> str:
    """The header value Meta would send for ``body``."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is a well-formed, correct signature of ``body``."""
    if header is None or not header.startswith(PREFIX):
        return False
    given = header[len(PREFIX) :]
    if not _HEX64.fullmatch(given):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def handshake(params: Mapping[str, str], verify_token: str | None) -> str | None:
    """The challenge to echo, or ``None`` when the handshake must be refused."""
    if verify_token is None or params.get("hub.mode") != "subscribe":
        return None
    token = params.get("hub.verify_token", "")
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        return None
    challenge = params.get("hub.challenge")
    return challenge if challenge else None
