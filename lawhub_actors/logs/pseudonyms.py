"""Customers in logs: a keyed, stable pseudonym in place of their number.

A customer is logged as :func:`conversation_ref`, never by number: a keyed
hash that follows one customer of one firm across lines without revealing
the number.
"""

from __future__ import annotations

import base64
import hmac
import secrets

_pseudonym_key = secrets.token_bytes(32)


def set_pseudonym_key(master_key: bytes) -> None:
    """Key :func:`conversation_ref` from the master key, so refs stay the same
    across restarts. Until called, a random per-process key is used: refs are
    then stable only within the process, but still not reversible."""
    global _pseudonym_key  # noqa: PLW0603 - process-wide, set once at startup
    _pseudonym_key = hmac.digest(master_key, b"lawhub-actors/log-pseudonym", "sha256")


def conversation_ref(tenant: str, wa_id: str) -> str:
    """A short stable pseudonym of a customer of ``tenant``, for logs.

    A keyed hash: without the key, the number cannot be recovered by hashing
    every possible phone number. The tenant is part of the input, so one
    person's refs at two firms cannot be linked. Base32 (letters and 2-7)
    makes a phone-like digit run in a ref all but impossible, so it survives
    the phone scrub in free text too.
    """
    digest = hmac.digest(_pseudonym_key, f"{tenant}\x00{wa_id}".encode(), "sha256")
    return "c-" + base64.b32encode(digest[:10]).decode().lower()
