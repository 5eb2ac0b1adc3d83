"""Reading text for masking (pure): normalising it, its digits, and the
punctuation around its words."""

from __future__ import annotations

import unicodedata
from typing import Final

PUNCT = ".,:;!?()[]{}\"'#*=<>"
"""Punctuation stripped from either end of a word."""


def normalise(text: str) -> str:
    """Without invisible format characters, then NFKC."""
    if text.isascii():  # no format characters in ASCII, and NFKC leaves it as it is
        return text
    invisible = [ch for ch in set(text) if unicodedata.category(ch) == "Cf"]
    if invisible:
        text = text.translate(dict.fromkeys(map(ord, invisible)))
    return unicodedata.normalize("NFKC", text)


def _normalise_every_character(text: str) -> str:
    """:func:`normalise` the long way, one character at a time, for any text."""
    visible = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return unicodedata.normalize("NFKC", visible)


_ASCII_NON_DIGITS: Final = str.maketrans(
    "", "", "".join(chr(code) for code in range(128) if not chr(code).isdecimal())
)


def digits_of(text: str) -> str:
    """The decimal digits of ``text``, as ASCII digits."""
    if text.isascii():  # only 0-9 are decimal in ASCII
        return text.translate(_ASCII_NON_DIGITS)
    return _digits_of_any(text)


def _digits_of_any(text: str) -> str:
    return "".join(str(unicodedata.decimal(ch)) for ch in text if ch.isdecimal())
