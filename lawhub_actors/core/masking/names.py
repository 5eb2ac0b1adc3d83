"""The sender's profile names → ``[NAME]`` (pure).

Each whole name, and each of its words of three letters or more
(honorifics such as "Bapak", "Ibu", "Mas" excepted), case-insensitive,
whole words only. What a list of names compiles to is cached per list, one
list per recent sender.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable
from typing import Final, final

from lawhub_actors.core.masking.kinds import PLACEHOLDER, PiiKind
from lawhub_actors.core.masking.text import PUNCT, normalise

_LETTER = r"[^\W\d_]"
_HONORIFICS: frozenset[str] = frozenset(
    ("bapak", "ibu", "mas", "mbak", "mba", "kak", "kakak", "bang", "abang", "adik", "tante",
     "haji", "hajjah", "hajah", "bin", "binti", "mrs", "miss", "sir", "madam", "drs", "dra",
     "prof", "the", "and", "dan", "van", "der", "von")
)


def _name_tokens(name: str) -> list[str]:
    """The words of a (normalised) name, without the punctuation around them."""
    tokens = [t.strip(PUNCT + "-") for t in name.split()]
    return [t for t in tokens if t]


def _name_patterns(names: Iterable[str]) -> list[str]:
    patterns: set[str] = set()
    for raw in names:
        name = normalise(raw)
        tokens = _name_tokens(name)
        if not tokens:
            continue
        if sum(ch.isalpha() for ch in name) > 0:
            patterns.add(r"\s+".join(re.escape(t) for t in tokens))
        for token in tokens:
            if sum(ch.isalpha() for ch in token) >= 3 and token.casefold() not in _HONORIFICS:
                patterns.add(re.escape(token))
    return sorted(patterns, key=lambda p: (-len(p), p))


@final
class _NameRule:
    """What masking needs to know about one list of profile names."""

    __slots__ = ("ascii_words", "patterns")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.patterns = tuple(_name_patterns(names))
        words = [t.lower() for raw in names for t in _name_tokens(normalise(raw))]
        self.ascii_words: tuple[str, ...] | None = (
            tuple(words) if all(word.isascii() for word in words) else None
        )
        """Lower-cased, each word any pattern may start with; None when one is not ASCII."""

    def cannot_match(self, text: str) -> bool:
        """Whether no name can be in ``text``, told without the regex.

        Every name pattern starts with (an escaped) word of a name. In ASCII
        text an ASCII word matches, ignoring case, only where its lower-case
        form is in the lower-cased text. (Other letters are not so simple:
        ``re.IGNORECASE`` matches the dotless and the dotted I, U+0131 and
        U+0130, to ``i``, the Kelvin sign to ``k`` and the long s to ``s``.)
        """
        if self.ascii_words is None or not text.isascii():
            return False
        lowered = text.lower()
        return not any(word in lowered for word in self.ascii_words)


_NAME_CACHE_SIZE: Final = 2048
"""Profile-name lists remembered, one per recent sender: about 2 KB each with its regex."""


@functools.lru_cache(maxsize=_NAME_CACHE_SIZE)
def _name_rule(names: tuple[str, ...]) -> _NameRule:
    return _NameRule(names)


@functools.lru_cache(maxsize=_NAME_CACHE_SIZE)
def _name_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(patterns)
    return re.compile(
        rf"({PLACEHOLDER})|(?<!{_LETTER})(?:{alternatives})(?!{_LETTER})", re.IGNORECASE
    )


def mask_names(text: str, names: Iterable[str], counts: Counter[PiiKind]) -> str:
    """``text`` with each of ``names`` (and their words) replaced, placeholders left alone."""
    rule = _name_rule(tuple(names))
    if not rule.patterns or rule.cannot_match(text):
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group()
        counts[PiiKind.NAME] += 1
        return PiiKind.NAME.placeholder

    return _name_regex(rule.patterns).sub(replace, text)
