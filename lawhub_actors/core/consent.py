"""Consent to business-initiated messages: keywords → transitions (pure).

Rules:

- A customer message that *is* a keyword (the whole message, trimmed,
  case-insensitive, NFKC-normalised, with optional punctuation or symbols —
  ``"Stop."``, ``" berhenti!! "``, ``"STOP 🙏"`` — around it) changes
  consent. A keyword inside a longer sentence ("jangan stop proses
  saya") changes nothing: a lawyer reads that, not a rule.
- Opt out: ``STOP``, ``BERHENTI``, ``UNSUBSCRIBE``.
- Opt in: ``START``, ``RESUME`` and ``MULAI`` (Indonesian for "start").
  ``MULAI`` is included because it is the word an Indonesian customer who
  earlier wrote ``BERHENTI`` would use to undo it, and a whole message
  that says only "mulai" has no other plausible meaning. ``LANJUT``
  ("continue") is *not* a keyword: customers use it mid-conversation.
- Meta's ``user_preferences`` webhook (``category: marketing_messages``)
  carries ``value: "stop" | "resume"``: the same two transitions
  (:func:`user_preference`).
- States: ``unknown`` (never asked, never refused), ``granted``,
  ``opted_out``. Opting out from any state ends in ``opted_out``; opting in
  from any state ends in ``granted``. :func:`apply` says whether the state
  actually changed, so a repeated ``STOP`` is not a second event.
- Only ``granted`` permits business-initiated (template) messages outside a
  conversation the customer started; ``opted_out`` forbids them.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum


class ConsentState(StrEnum):
    """Whether a customer may receive business-initiated messages."""

    UNKNOWN = "unknown"
    GRANTED = "granted"
    OPTED_OUT = "opted_out"


class ConsentChange(StrEnum):
    """What a keyword or a ``user_preferences`` webhook asks for."""

    OPT_IN = "opt_in"
    OPT_OUT = "opt_out"


OPT_OUT_KEYWORDS: frozenset[str] = frozenset({"stop", "berhenti", "unsubscribe"})
OPT_IN_KEYWORDS: frozenset[str] = frozenset({"start", "resume", "mulai"})

_PREFERENCES: dict[str, ConsentChange] = {
    "stop": ConsentChange.OPT_OUT,
    "resume": ConsentChange.OPT_IN,
}

_TRANSITIONS: dict[tuple[ConsentState, ConsentChange], ConsentState] = {
    (ConsentState.UNKNOWN, ConsentChange.OPT_IN): ConsentState.GRANTED,
    (ConsentState.UNKNOWN, ConsentChange.OPT_OUT): ConsentState.OPTED_OUT,
    (ConsentState.GRANTED, ConsentChange.OPT_IN): ConsentState.GRANTED,
    (ConsentState.GRANTED, ConsentChange.OPT_OUT): ConsentState.OPTED_OUT,
    (ConsentState.OPTED_OUT, ConsentChange.OPT_IN): ConsentState.GRANTED,
    (ConsentState.OPTED_OUT, ConsentChange.OPT_OUT): ConsentState.OPTED_OUT,
}


def _is_trimmable(char: str) -> bool:
    category = unicodedata.category(char)
    return char.isspace() or category[0] in "PZ" or category in ("So", "Sk", "Cf", "Mn")


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    start, end = 0, len(text)
    while start < end and _is_trimmable(text[start]):
        start += 1
    while end > start and _is_trimmable(text[end - 1]):
        end -= 1
    return text[start:end].casefold()


def keyword(text: str) -> ConsentChange | None:
    """The consent change a whole customer message asks for, if it is a keyword."""
    word = _normalise(text)
    if word in OPT_OUT_KEYWORDS:
        return ConsentChange.OPT_OUT
    if word in OPT_IN_KEYWORDS:
        return ConsentChange.OPT_IN
    return None


def user_preference(value: str) -> ConsentChange | None:
    """``user_preferences.value`` (``stop`` / ``resume``) → change; ``None`` if unknown."""
    return _PREFERENCES.get(value.strip().lower())


def apply(state: ConsentState, change: ConsentChange) -> tuple[ConsentState, bool]:
    """``(new_state, changed)`` after ``change``."""
    new = _TRANSITIONS[(state, change)]
    return new, new is not state


def permits_business_initiated(state: ConsentState) -> bool:
    """Whether a template may be sent to this customer on the business's initiative."""
    return state is ConsentState.GRANTED
