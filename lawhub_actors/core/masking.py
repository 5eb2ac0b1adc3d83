"""PII masking for the classifier's input (pure).

The AI classifier (and anything else outside the trust boundary) only ever
sees :class:`MaskedText`, and the only way to make one is :func:`mask`.
A classifier typed to take ``MaskedText`` therefore cannot be handed raw
customer text.

Rules, in the order they run:

1. Normalise: drop invisible format characters (zero-width spaces, …),
   then NFKC (full-width digits and at signs become ASCII).
2. Emails → ``[EMAIL]``: RFC 5322 atoms before the ``@`` (``/`` and ``|``
   read as separators when letters follow them:
   ``0812 3456 7890/budi@x.id``), a dotted
   domain after it ending in a label of letters. First, because an address
   can hold a phone number. Text glued to an address without a space is
   ambiguous (``...7890budi@x.id``) and goes to the address.
3. The sender's profile names (``names``) → ``[NAME]``: each whole name,
   and each of its words of three letters or more (honorifics such as
   "Bapak", "Ibu", "Mas" excepted), case-insensitive, whole words only.
4. Numbers. A *number* is a run of digits joined by up to three of
   ``space . - / ( )`` (and a leading ``+``), e.g. ``+62 812-3456-7890``,
   ``01.234.567.8-901.234``, ``(021) 555 1234``. Its words around it
   (four before, three after) may name its kind: ``NIK``/``KTP``;
   ``NPWP``; ``rekening``/``rek``/``account``/``a.n.``/``BCA``/``BRI``/
   ``Mandiri``/``BNI``/…; ``HP``/``WA``/``telp``/``phone``/…. Then:

   - ``XX.XXX.XXX.X-XXX.XXX`` → ``[NPWP]``
   - a kind named nearby, when the digit count fits it (NIK 16, NPWP 15-16,
     account 10-16, phone 9-15) → that kind
   - ``+`` and 8-15 digits (E.164) → ``[PHONE]``
   - 16 digits: a well-formed NIK → ``[NIK]``; starting with ``0`` (an
     entity's new NPWP) → ``[NPWP]``. 15 digits → ``[NPWP]``. NPWP/NIK go
     before phones.
   - Indonesian phones: ``62`` + 8-12, ``08`` + 8-11, a landline ``0[2-9]``
     with 9-11 digits in all, an international ``00`` with 10-17 → ``[PHONE]``
   - anything else of 10 digits or more → ``[ACCOUNT]``.

   Space-separated parts of one number are tried as sub-runs (leftmost,
   longest first), so ``jam 9 0812 3456 7890`` keeps the ``9``; a part left
   over beside a masked number is masked too from 8 digits on. A part that
   is a whole date (``05-12-2024``) is never joined to its neighbours.
   Amounts of 10 digits or more (``Rp 1.500.000.000``) are masked as
   accounts: over-masking an amount costs the classifier nothing.

Placeholders are never masked again, so ``mask`` is idempotent:
``mask(mask(t).text).text == mask(t).text``. The decisions depend on the
words around a number, never on character distances, so replacing a
neighbour by a placeholder does not change them.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final, final


class PiiKind(StrEnum):
    """What a placeholder stands for."""

    PHONE = "phone"
    EMAIL = "email"
    NIK = "nik"
    NPWP = "npwp"
    ACCOUNT = "account"
    NAME = "name"

    @property
    def placeholder(self) -> str:
        return f"[{self.name}]"


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


# -- patterns ------------------------------------------------------------------

_PLACEHOLDER = r"\[(?:PHONE|EMAIL|NIK|NPWP|ACCOUNT|NAME)\]"
_PLACEHOLDER_RE = re.compile(_PLACEHOLDER)
_ATEXT = r"[\w!#$%&'*+=?^`{}~.\-]"  # RFC 5322 atext, but "/" and "|" separate
_LABEL = r"(?:[^\W_]|-)+"
_ATEXT_RE = re.compile(_ATEXT)
_ATEXT_ALL_RE = re.compile(r"[\w!#$%&'*+/=?^`{|}~.\-]")
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
_SEP = r"[ \t.\-/()\u2010-\u2015]{1,3}"
_NUMBER = re.compile(rf"\+?\(?\d+(?:{_SEP}\d+)*\)?")
_DIGITS = re.compile(r"\d+")
_DATE = re.compile(
    r"(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|1[0-2])[-/.](?:19|20)\d\d"
    r"|(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])"
)
_NPWP_FORMAT = re.compile(r"\d{2}\.\d{3}\.\d{3}\.\d[.\-]\d{3}\.\d{3}")
_LETTER = r"[^\W\d_]"

_CONTEXT_BEFORE = 4
_CONTEXT_AFTER = 3
_MAX_RUN_UNITS = 8
_ACCOUNT_MIN_DIGITS = 10
_LEFTOVER_MIN_DIGITS = 8
_FEWEST_DIGITS_MASKED = 8
"""No rule masks a number with fewer digits: a ``+`` phone needs 8, the other
phones 9, a kind named nearby 9 or more, NPWP and NIK 15 or 16, an account 10
(8 for a part left over beside a masked one)."""

_KEYWORDS: dict[str, PiiKind] = {
    **dict.fromkeys(("nik", "ktp", "e-ktp", "ektp", "kk", "kependudukan"), PiiKind.NIK),
    **dict.fromkeys(("npwp",), PiiKind.NPWP),
    **dict.fromkeys(
        ("rekening", "rek", "no.rek", "norek", "account", "acc", "acct", "a.n", "a/n",
         "bca", "bri", "mandiri", "bni", "bsi", "btn", "cimb", "permata", "danamon",
         "ocbc", "jago", "seabank", "bank", "va", "transfer", "tf"),
        PiiKind.ACCOUNT,
    ),
    **dict.fromkeys(
        ("hp", "no.hp", "nohp", "handphone", "ponsel", "telp", "telpon", "telepon", "tlp",
         "tel", "wa", "whatsapp", "phone", "mobile", "cell", "call", "hubungi", "kontak",
         "contact"),
        PiiKind.PHONE,
    ),
}
_FITS: dict[PiiKind, range] = {
    PiiKind.NIK: range(16, 17),
    PiiKind.NPWP: range(15, 17),
    PiiKind.ACCOUNT: range(10, 17),
    PiiKind.PHONE: range(9, 16),
}
_PROVINCES: frozenset[int] = frozenset(
    [*range(11, 20), 21, *range(31, 37), *range(51, 54), *range(61, 66), *range(71, 77),
     81, 82, *range(91, 98)]
)
_HONORIFICS: frozenset[str] = frozenset(
    ("bapak", "ibu", "mas", "mbak", "mba", "kak", "kakak", "bang", "abang", "adik", "tante",
     "haji", "hajjah", "hajah", "bin", "binti", "mrs", "miss", "sir", "madam", "drs", "dra",
     "prof", "the", "and", "dan", "van", "der", "von")
)
_PUNCT = ".,:;!?()[]{}\"'#*=<>"


def is_nik(digits: str) -> bool:
    """Whether 16 digits have a NIK's structure (FACTS.md; there is no check digit).

    Province code, non-zero regency and district, birth date DDMMYY with
    DD + 40 for women, non-zero sequence.
    """
    if len(digits) != 16 or not digits.isascii() or not digits.isdigit():
        return False
    province, regency, district = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    day, month, sequence = int(digits[6:8]), int(digits[8:10]), int(digits[12:16])
    day = day - 40 if day > 40 else day
    return (
        province in _PROVINCES
        and regency > 0
        and district > 0
        and 1 <= day <= 31
        and 1 <= month <= 12
        and sequence > 0
    )


_ASCII_NON_DIGITS: Final = str.maketrans(
    "", "", "".join(chr(code) for code in range(128) if not chr(code).isdecimal())
)


def _digits(text: str) -> str:
    """The decimal digits of ``text``, as ASCII digits."""
    if text.isascii():  # only 0-9 are decimal in ASCII
        return text.translate(_ASCII_NON_DIGITS)
    return _digits_of_any(text)


def _digits_of_any(text: str) -> str:
    return "".join(str(unicodedata.decimal(ch)) for ch in text if ch.isdecimal())


def _is_phone_shape(digits: str) -> bool:
    n = len(digits)
    if digits.startswith("62"):
        return 10 <= n <= 14
    if digits.startswith("08"):
        return 10 <= n <= 13
    if digits.startswith("00"):
        return 10 <= n <= 17
    if digits.startswith("0"):
        return 9 <= n <= 11 and digits[1] != "1"
    return False


def _specific(run: str, digits: str, context: PiiKind | None) -> PiiKind | None:
    """The kind of one number (or sub-run of a number), unless it is only 'long'."""
    n = len(digits)
    if _NPWP_FORMAT.fullmatch(run):
        return PiiKind.NPWP
    if context is not None and n in _FITS[context]:
        return context
    if run.startswith("+"):
        return PiiKind.PHONE if 8 <= n <= 15 else None
    if n == 16:
        if is_nik(digits):
            return PiiKind.NIK
        return PiiKind.NPWP if digits.startswith("0") else None
    if n == 15:
        return PiiKind.NPWP
    return PiiKind.PHONE if _is_phone_shape(digits) else None


def _units(number: str) -> list[tuple[int, int]]:
    """Offsets of the space-separated parts of one number."""
    if " " not in number and "\t" not in number:  # only those separate parts
        return [(0, len(number))]
    return _split_units(number)


def _split_units(number: str) -> list[tuple[int, int]]:
    """:func:`_units` for any number, looking at every separator."""
    groups = list(_DIGITS.finditer(number))
    units: list[tuple[int, int]] = []
    start = 0
    for prev, nxt in itertools.pairwise(groups):
        sep = number[prev.end() : nxt.start()]
        if " " in sep or "\t" in sep:
            end = prev.end() + (1 if sep.startswith(")") else 0)
            units.append((start, end))
            start = nxt.start() - (1 if sep.endswith("(") else 0)
    units.append((start, len(number)))
    return units


def _decide(number: str, context: PiiKind | None) -> list[tuple[int, int, PiiKind]]:
    """Which parts of one number to replace, with what.

    A part that is a whole date (``05-12-2024``) is never joined to its
    neighbours, so ``05-12-2024 10.00`` stays readable.
    """
    units = _units(number)
    found: list[tuple[int, int, PiiKind]] = []
    segment: list[tuple[int, int]] = []
    for unit in units:
        if _DATE.fullmatch(number, unit[0], unit[1]):
            found.extend(_decide_segment(number, segment, context))
            segment = []
        else:
            segment.append(unit)
    found.extend(_decide_segment(number, segment, context))
    return found


def _decide_segment(
    number: str, units: list[tuple[int, int]], context: PiiKind | None
) -> list[tuple[int, int, PiiKind]]:
    found: list[tuple[int, int, PiiKind]] = []
    leftovers: list[tuple[int, int]] = []  # [first, stop) unit numbers
    # What lies between two units is a separator, without digits, so the digits
    # of units i..j-1 together are their digits one after the other.
    digits = [_digits(number[start:end]) for start, end in units]
    i = left = 0
    while i < len(units):
        for j in range(min(len(units), i + _MAX_RUN_UNITS), i, -1):
            start, end = units[i][0], units[j - 1][1]
            kind = _specific(number[start:end], "".join(digits[i:j]), context)
            if kind is not None:
                if left < i:
                    leftovers.append((left, i))
                found.append((start, end, kind))
                i = left = j
                break
        else:
            i += 1
    if left < len(units):
        leftovers.append((left, len(units)))
    threshold = _LEFTOVER_MIN_DIGITS if found else _ACCOUNT_MIN_DIGITS
    for first, stop in leftovers:
        if sum(map(len, digits[first:stop])) >= threshold:
            found.append((units[first][0], units[stop - 1][1], PiiKind.ACCOUNT))
    return sorted(found)


def _words(gap: str) -> list[str]:
    if "[" in gap:  # every placeholder starts with one
        gap = _PLACEHOLDER_RE.sub(" ", gap)
    # No character lower-cases to or from white space, so lower-casing first splits the same.
    return [word for token in gap.lower().split() if (word := token.strip(_PUNCT))]


def _context(before: list[str], after: list[str]) -> PiiKind | None:
    for distance in range(max(_CONTEXT_BEFORE, _CONTEXT_AFTER)):
        if distance < len(before) and distance < _CONTEXT_BEFORE:
            kind = _KEYWORDS.get(before[-1 - distance])
            if kind is not None:
                return kind
        if distance < len(after) and distance < _CONTEXT_AFTER:
            kind = _KEYWORDS.get(after[distance])
            if kind is not None:
                return kind
    return None


def _mask_numbers(text: str, counts: Counter[PiiKind]) -> str:
    numbers = list(_NUMBER.finditer(text))
    # Short numbers are still words' neighbours, so they keep their place below.
    maskable = [len(_digits(match.group())) >= _FEWEST_DIGITS_MASKED for match in numbers]
    if not any(maskable):
        return text
    words: list[str] = []
    positions: list[int] = []
    previous_end = 0
    for match in numbers:
        words.extend(_words(text[previous_end : match.start()]))
        positions.append(len(words))
        previous_end = match.end()
    words.extend(_words(text[previous_end:]))

    out: list[str] = []
    previous_end = 0
    for match, position, worth_deciding in zip(numbers, positions, maskable, strict=True):
        if not worth_deciding:
            continue  # copied with the text after it
        before = words[max(0, position - _CONTEXT_BEFORE) : position]
        after = words[position : position + _CONTEXT_AFTER]
        number = match.group()
        out.append(text[previous_end : match.start()])
        cursor = 0
        for start, end, kind in _decide(number, _context(before, after)):
            out.append(number[cursor:start])
            out.append(kind.placeholder)
            counts[kind] += 1
            cursor = end
        out.append(number[cursor:])
        previous_end = match.end()
    out.append(text[previous_end:])
    return "".join(out)


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


def _mask_emails(text: str, counts: Counter[PiiKind]) -> str:
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


def _name_tokens(name: str) -> list[str]:
    """The words of a (normalised) name, without the punctuation around them."""
    tokens = [t.strip(_PUNCT + "-") for t in name.split()]
    return [t for t in tokens if t]


def _name_patterns(names: Iterable[str]) -> list[str]:
    patterns: set[str] = set()
    for raw in names:
        name = _normalise(raw)
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
        words = [t.lower() for raw in names for t in _name_tokens(_normalise(raw))]
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
        rf"({_PLACEHOLDER})|(?<!{_LETTER})(?:{alternatives})(?!{_LETTER})", re.IGNORECASE
    )


def _mask_names(text: str, names: Iterable[str], counts: Counter[PiiKind]) -> str:
    rule = _name_rule(tuple(names))
    if not rule.patterns or rule.cannot_match(text):
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group()
        counts[PiiKind.NAME] += 1
        return PiiKind.NAME.placeholder

    return _name_regex(rule.patterns).sub(replace, text)


def _normalise(text: str) -> str:
    """Without invisible format characters, then NFKC."""
    if text.isascii():  # no format characters in ASCII, and NFKC leaves it as it is
        return text
    invisible = [ch for ch in set(text) if unicodedata.category(ch) == "Cf"]
    if invisible:
        text = text.translate(dict.fromkeys(map(ord, invisible)))
    return unicodedata.normalize("NFKC", text)


def _normalise_every_character(text: str) -> str:
    """:func:`_normalise` the long way, one character at a time, for any text."""
    visible = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return unicodedata.normalize("NFKC", visible)


def mask(text: str, *, names: Iterable[str] = ()) -> MaskedText:
    """Replace emails, profile names, NIK, NPWP, phones and account numbers by placeholders."""
    counts: Counter[PiiKind] = Counter()
    masked = _normalise(text)
    masked = _mask_emails(masked, counts)
    masked = _mask_names(masked, names, counts)
    masked = _mask_numbers(masked, counts)
    return MaskedText(masked, counts, _key=_KEY)
