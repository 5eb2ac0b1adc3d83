"""Lenient scalars for Meta's webhook models (pure).

Meta sends numbers, flags and times in more than one form. Meta's string
timestamps become ints; an unreadable float or flag becomes ``None``
instead of failing the item, and so does an integer SQLite cannot hold
(outside 64 bits: ``"99999999999999999999"``, ``"1e308"``). A timestamp
(:data:`Timestamp`) is ``None`` only when missing or null; one that is
present is read whole and unbounded, and one that is no number at all reads
as :data:`NOT_A_TIME`, so the normalizer can tell "not sent" from "sent,
but no time" (which it quarantines).
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BeforeValidator

from lawhub_actors.core import limits


def _whole_number(value: object) -> int | None:
    """``value`` read as a whole number of any size (floats truncated), or
    ``None`` when it is no finite number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number: float
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:  # not an integer, or past Python's 4,300 digits
            pass
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    return int(number) if math.isfinite(number) else None


def _int_or_none(value: object) -> int | None:
    number = _whole_number(value)
    return number if number is not None and limits.storable_int(number) else None


NOT_A_TIME = -1
"""What a timestamp that is present but no number reads as (``"abc"``,
``true``, ``{}``, ``"1e400"``): a value no plausible time has, so it is
treated like any other timestamp out of range."""


def _timestamp_or_none(value: object) -> int | None:
    if value is None:
        return None
    number = _whole_number(value)
    return NOT_A_TIME if number is None else number


def _float_or_none(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        try:
            number = float(value)
        except (ValueError, OverflowError):
            return None
        return number if math.isfinite(number) else None
    return None


def _bool_or_none(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    return None


LenientInt = Annotated[int | None, BeforeValidator(_int_or_none)]
LenientFloat = Annotated[float | None, BeforeValidator(_float_or_none)]
LenientBool = Annotated[bool | None, BeforeValidator(_bool_or_none)]
Timestamp = Annotated[int | None, BeforeValidator(_timestamp_or_none)]
"""Unix seconds as sent, unbounded: ``None`` when missing, :data:`NOT_A_TIME`
when no number; the normalizer decides what is plausible
(:func:`lawhub_actors.core.limits.plausible_timestamp`)."""
