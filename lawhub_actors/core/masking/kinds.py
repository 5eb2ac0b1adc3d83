"""The kinds of personal data masking replaces, and their placeholders (pure)."""

from __future__ import annotations

import re
from enum import StrEnum


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


PLACEHOLDER = r"\[(?:PHONE|EMAIL|NIK|NPWP|ACCOUNT|NAME)\]"
"""Any placeholder, as a regex: the rules never mask one again."""
PLACEHOLDER_RE = re.compile(PLACEHOLDER)
