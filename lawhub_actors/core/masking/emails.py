"""Email addresses → ``[EMAIL]`` (pure).

An address is RFC 5322 atoms before the ``@`` (``/`` and ``|`` read as
separators when letters follow them: ``0812 3456 7890/budi@x.id``), a
dotted domain after it ending in a label of letters. Emails are masked
first, because an address can hold a phone number. Text glued to an address
without a space is ambiguous (``...7890budi@x.id``) and goes to the address.
"""

from __future__ import annotations

import re
from collections import Counter

from lawhub_actors.core.masking.kinds import PiiKind

_ATEXT = r"[\w!#$%&'*+=?^`{}~.\-]"  # RFC 5322 atext, but "/" and "|" separate
_LABEL = r"(?:[^\W_]|-)+"
_ATEXT_RE = re.compile(_ATEXT)
_ATEXT_ALL_RE = re.compile(r"[\w!#$%&'*+/=?^`{|}~.\-]")
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")


def _domain_end(text: str, start: int) -> int | None:
    """End of the domain starting at ``start``: up to a top-level label of letters.

    Text glued after the domain (``x@mail.id08123``) is left for the later
    rules, so the top-level label is the letters of the last label that
    starts with one (all of it for punycode ``xn--``).
    """
    match = _DOMAIN.match(text, start)
    if match is None:
        return None
    labels = match.group().split(".")
    for k in range(len(labels) - 1, 0, -1):
        label = labels[k]
        if label[:1].isalpha():
            letters = len(label)
            if not label.lower().startswith("xn--"):
                letters = 1
                while letters < len(label) and label[letters].isalpha():
                    letters += 1
            return start + sum(len(x) + 1 for x in labels[:k]) + letters
    return None


def _local_start(text: str, at: int, floor: int, chars: re.Pattern[str]) -> int:
    left = at
    while left > floor and chars.fullmatch(text[left - 1]):
        left -= 1
    return left


def mask_emails(text: str, counts: Counter[PiiKind]) -> str:
    """Each ``@`` with a local part before it and a domain after it is an address.

    Scanned by hand, not by one regex, so that addresses typed back to back
    (``a@x.id/b@y.id``) are all found in one pass and the scan stays linear.
    """
    out: list[str] = []
    cursor = 0
    at = text.find("@")
    while at != -1:
        domain_end = _domain_end(text, at + 1)
        if domain_end is not None:
            left = _local_start(text, at, cursor, _ATEXT_RE)
            if left == at:  # "|@x.id": the separators are the whole local part
                left = _local_start(text, at, cursor, _ATEXT_ALL_RE)
            if left < at:
                out.append(text[cursor:left])
                out.append(PiiKind.EMAIL.placeholder)
                counts[PiiKind.EMAIL] += 1
                cursor = domain_end
            elif at == cursor and out:  # glued to the previous address: part of it
                cursor = domain_end
        at = text.find("@", max(at + 1, cursor))
    out.append(text[cursor:])
    return "".join(out)
