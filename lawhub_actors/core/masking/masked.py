"""Masked text, and :func:`mask`, the only way to make it (pure).

:func:`mask` runs the rules in their order: normalise
(:mod:`~lawhub_actors.core.masking.text`), then emails, profile names and
numbers, each rule leaving the placeholders of the ones before it alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final, final

from lawhub_actors.core.masking.emails import mask_emails
from lawhub_actors.core.masking.kinds import PiiKind
from lawhub_actors.core.masking.names import mask_names
from lawhub_actors.core.masking.numbers import mask_numbers
from lawhub_actors.core.masking.text import normalise

_KINDS: Final = tuple(PiiKind)
_KEY: Final = object()


@final
class MaskedText:
    """Text with its personal data replaced by placeholders; made only by :func:`mask`."""

    __slots__ = ("_counts", "_text")
    _text: str
    _counts: Mapping[PiiKind, int]

    def __init__(self, text: str, counts: Mapping[PiiKind, int], *, _key: object = None) -> None:
        if _key is not _KEY:
            raise TypeError("MaskedText is made by mask() only")
        object.__setattr__(self, "_text", text)
        full = {kind: counts.get(kind, 0) for kind in _KINDS}
        object.__setattr__(self, "_counts", MappingProxyType(full))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("MaskedText is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("MaskedText is immutable")

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("MaskedText is not serialisable; send .text")

    def __copy__(self) -> MaskedText:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> MaskedText:
        return self

    @property
    def text(self) -> str:
        """The masked text."""
        return self._text

    @property
    def counts(self) -> Mapping[PiiKind, int]:
        """How many of each kind were replaced (every kind present, zero or more)."""
        return self._counts

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MaskedText):
            return NotImplemented
        return self._text == other._text and self._counts == other._counts

    def __hash__(self) -> int:
        return hash((self._text, tuple(self._counts.values())))

    def __repr__(self) -> str:  # no body in logs, even a masked one
        found = {str(k): n for k, n in self._counts.items() if n}
        return f"MaskedText(len={len(self._text)}, masked={found})"


def mask(text: str, *, names: Iterable[str] = ()) -> MaskedText:
    """Replace emails, profile names, NIK, NPWP, phones and account numbers by placeholders."""
    counts: Counter[PiiKind] = Counter()
    masked = normalise(text)
    masked = mask_emails(masked, counts)
    masked = mask_names(masked, names, counts)
    masked = mask_numbers(masked, counts)
    return MaskedText(masked, counts, _key=_KEY)
