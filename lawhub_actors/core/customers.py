"""What a customer key may be where the API takes one (pure).

A conversation is keyed by the customer's WhatsApp number (``wa_id``: the
E.164 number's digits, no ``+``) or, for a user Meta knows only by a
username, by the business-scoped user id (BSUID: an ISO country code, a dot,
up to 128 letters and digits, ``US.13491208655302741918``). Nothing else
names a customer: a path segment such as ``../../x``, 5,000 characters or
an emoji is refused before it reaches the store.
"""

from __future__ import annotations

import re

_E164_DIGITS = re.compile(r"[1-9][0-9]{5,14}")
"""E.164 allows at most 15 digits and no leading zero; 6 is the shortest
country code + subscriber number in use."""

_BSUID = re.compile(r"[A-Z]{2}\.[A-Za-z0-9]{1,128}")

DESCRIPTION = ("a WhatsApp number in E.164 digits (6 to 15, no '+') or a business-scoped "
               "user id (CC.<up to 128 letters and digits>)")


def valid_customer(value: str) -> bool:
    """Whether ``value`` is a customer key: E.164 digits or a BSUID (ASCII only)."""
    return value.isascii() and (_E164_DIGITS.fullmatch(value) is not None
                                or _BSUID.fullmatch(value) is not None)
