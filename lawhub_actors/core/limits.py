"""Bounds on the shapes a webhook body may have, so no single input wedges processing (pure).

Everything a signed body holds is journaled, then parsed, normalized,
stored and perhaps quarantined (``orjson.dumps`` of its parts) by the
dispatcher and the shards, again after every restart. A value that passes
the first step but breaks a later one would fail the same way on every
replay, so the limits here are checked where a value enters:

1. **Nesting** (:data:`MAX_DEPTH`): ``POST /webhook`` refuses a body nested
   deeper with 400 ``too_deep`` before journaling it, and
   :func:`lawhub_actors.core.payload.parse` refuses it too (a body journaled
   before the limit existed is quarantined, not replayed forever).
2. **Timestamps** (:func:`plausible_timestamp`): the normalizer quarantines
   an update whose timestamp is present but not a time Meta can mean.
3. **Integers** (:data:`INT64_MIN` .. :data:`INT64_MAX`): a number read
   leniently from a string (``"99999999999999999999"``) is kept only when
   SQLite and ``orjson`` can hold it.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

MAX_DEPTH = 32
"""Most levels of arrays and objects a webhook body may nest (the root is level 1).

Meta's deepest shapes reach 12 (``entry[]`` → change → ``value`` →
``messages[]`` → a contacts message → ``contacts[]`` → ``phones[]`` → phone),
so 32 leaves room for what Meta adds and refuses only what no Meta payload is.
``orjson`` parses up to 1,024 levels but serializes only 254, so a body
between the two would be journaled and then break every ``orjson.dumps``
of it (storing a part, quarantining it) on every replay."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""SQLite's INTEGER range; ``orjson`` serializes everything in it."""

TIMESTAMP_MIN = 1_230_768_000
"""2009-01-01T00:00:00Z: WhatsApp was founded in 2009; no update is older."""

TIMESTAMP_MAX = 4_102_444_800
"""2100-01-01T00:00:00Z (exclusive): no clock of this service gets there,
yet it catches milliseconds sent as seconds (13 digits) and every number
that SQLite, ``orjson`` or ``datetime`` cannot hold.

The window is fixed, not "now ± a day": the normalizer is pure, and a replay
of an old journal entry must come out exactly as it did the first time."""


def storable_int(number: int) -> bool:
    """Whether ``number`` fits SQLite's INTEGER (and so ``orjson``)."""
    return INT64_MIN <= number <= INT64_MAX


def plausible_timestamp(seconds: int) -> bool:
    """Whether ``seconds`` (Unix time) is one Meta can mean: 2009 to 2100."""
    return TIMESTAMP_MIN <= seconds < TIMESTAMP_MAX


_CONTAINERS = (dict, list)  # a tuple: isinstance checks it faster than ``dict | list``


def too_deep(document: object, raw: bytes | None = None, limit: int = MAX_DEPTH) -> bool:
    """Whether ``document`` nests arrays and objects more than ``limit`` levels deep.

    ``raw``, the bytes ``document`` was decoded from, makes the common case
    free: a body with at most ``limit`` opening brackets (counted at C speed,
    those inside strings too) cannot be deeper, and is not walked. Otherwise
    the walk goes one level at a time (no recursion, no limit of its own),
    never further than level ``limit + 1``, and looks at each value once:
    for a batch of a thousand messages (172 KB) 0.7 ms, under twice what
    ``orjson`` takes to parse it; a single message is not walked at all.
    """
    if raw is not None and raw.count(b"{") + raw.count(b"[") <= limit:
        return False
    dicts: list[dict[Any, Any]] = [document] if isinstance(document, dict) else []
    lists: list[list[Any]] = [document] if isinstance(document, list) else []
    for _ in range(limit):
        if not (dicts or lists):
            return False
        values = chain(chain.from_iterable(map(dict.values, dicts)), chain.from_iterable(lists))
        below = [value for value in values if isinstance(value, _CONTAINERS)]
        dicts = [value for value in below if isinstance(value, dict)]
        lists = [value for value in below if not isinstance(value, dict)]
    return bool(dicts or lists)


def parser_depth_exceeded(error: ValueError) -> bool:
    """Whether ``orjson`` refused a body for nesting past its own 1,024 levels
    (it says so only in the message); such a body is ``too_deep`` as well."""
    return "depth limit" in str(error)


def non_negative_int(raw: str) -> int | None:
    """``raw`` as an integer from 0 to :data:`INT64_MAX` when it is ASCII
    digits and nothing else, else ``None`` (``str.isdigit`` accepts ``²``
    and Arabic digits, and ``int`` accepts spaces, ``+`` and ``_``)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(INT64_MAX)):
        return None
    value = int(raw)
    return value if value <= INT64_MAX else None
