"""NIK, NPWP, phone and account numbers → placeholders (pure).

A *number* is a run of digits joined by up to three of ``space . - / ( )``
(and a leading ``+``), e.g. ``+62 812-3456-7890``, ``01.234.567.8-901.234``,
``(021) 555 1234``. Its words around it (four before, three after) may name
its kind: ``NIK``/``KTP``; ``NPWP``; ``rekening``/``rek``/``account``/
``a.n.``/``BCA``/``BRI``/``Mandiri``/``BNI``/…; ``HP``/``WA``/``telp``/
``phone``/…. Then:

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
over beside a masked number is masked too from 8 digits on. A part that is
a whole date (``05-12-2024``) is never joined to its neighbours. Amounts of
10 digits or more (``Rp 1.500.000.000``) are masked as accounts:
over-masking an amount costs the classifier nothing.

The decisions depend on the words around a number, never on character
distances, so replacing a neighbour by a placeholder does not change them.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter

from lawhub_actors.core.masking.kinds import PLACEHOLDER_RE, PiiKind
from lawhub_actors.core.masking.text import PUNCT, digits_of

_SEP = r"[ \t.\-/()\u2010-\u2015]{1,3}"
_NUMBER = re.compile(rf"\+?\(?\d+(?:{_SEP}\d+)*\)?")
_DIGITS = re.compile(r"\d+")
_DATE = re.compile(
    r"(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|1[0-2])[-/.](?:19|20)\d\d"
    r"|(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])"
)
_NPWP_FORMAT = re.compile(r"\d{2}\.\d{3}\.\d{3}\.\d[.\-]\d{3}\.\d{3}")

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
    digits = [digits_of(number[start:end]) for start, end in units]
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
        gap = PLACEHOLDER_RE.sub(" ", gap)
    # No character lower-cases to or from white space, so lower-casing first splits the same.
    return [word for token in gap.lower().split() if (word := token.strip(PUNCT))]


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


def mask_numbers(text: str, counts: Counter[PiiKind]) -> str:
    """``text`` with each number, or part of one, that is personal data replaced."""
    numbers = list(_NUMBER.finditer(text))
    # Short numbers are still words' neighbours, so they keep their place below.
    maskable = [len(digits_of(match.group())) >= _FEWEST_DIGITS_MASKED for match in numbers]
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
