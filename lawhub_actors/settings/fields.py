"""The schema's building blocks: the strict section base and the constrained value types.

Values are strict: ``port = "8080"`` is refused rather than coerced. The
exceptions are numbers where TOML users naturally write them: a tier of
``250`` and a ``phone_number_id`` as an integer (:func:`int_to_str`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints
from pydantic_core import PydanticCustomError


class Section(BaseModel):
    """A table of the config: unknown keys are errors (a typo is never a silently
    ignored setting), values are not coerced, and a loaded config never changes."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def matching(pattern: str, description: str) -> AfterValidator:
    """A string constraint whose error says what is expected in words, not as a regex."""
    compiled = re.compile(pattern)

    def validate(value: str) -> str:
        if not compiled.fullmatch(value):
            raise PydanticCustomError("string_format", f"must be {description}")
        return value

    return AfterValidator(validate)


def int_to_str(value: object) -> object:
    """TOML users write ids and tiers as numbers; accept those as their digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Slug = Annotated[
    str,
    matching(
        r"[a-z0-9]+(?:-[a-z0-9]+)*",
        "a slug: lowercase letters, digits and single dashes, not at either end",
    ),
    StringConstraints(max_length=63),
]
PhoneNumberId = Annotated[
    str,
    BeforeValidator(int_to_str),
    matching(r"[0-9]{1,32}", "Meta's phone_number_id: digits only"),
]
Sha256Hex = Annotated[str, matching(r"[0-9a-f]{64}", "a SHA-256 digest: 64 lowercase hex digits")]
Tier = Annotated[
    Literal["250", "2K", "10K", "100K", "unlimited"],
    BeforeValidator(int_to_str),
]
StrategyName = Literal["one_for_one", "one_for_all", "rest_for_one"]
"""A restart strategy as the config spells it (``supervisors.Strategy``'s values)."""
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SupervisorPath = Annotated[
    str,
    matching(
        r"[a-z0-9][a-z0-9_-]*(?:/[a-z0-9][a-z0-9_-]*)*",
        "a supervisor path such as 'inbound' or 'inbound/sessions'",
    ),
]
