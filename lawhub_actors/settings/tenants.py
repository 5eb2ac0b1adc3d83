"""The firms the gateway serves: ``[[tenants]]`` with their numbers and automatic
replies, and ``[[templates]]``, Meta's approved message templates of each."""

from __future__ import annotations

from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from lawhub_actors.settings.fields import (
    PhoneNumberId,
    Section,
    Sha256Hex,
    Slug,
    Tier,
    Weekday,
    matching,
)

# Unique customers a number may start conversations with per moving 24 hours.
TIER_UNIQUE_USERS: dict[str, int | None] = {
    "250": 250,
    "2K": 2_000,
    "10K": 10_000,
    "100K": 100_000,
    "unlimited": None,
}


class PhoneNumber(Section):
    id: PhoneNumberId
    display: str = Field(min_length=1)
    tier: Tier
    throughput_mps: int = Field(default=80, ge=1, le=1000)

    @property
    def unique_users_per_24h(self) -> int | None:
        """The tier as a number (``None``: unlimited)."""
        return TIER_UNIQUE_USERS[self.tier]


class AutoReply(Section):
    """One automatic reply: freeform ``text`` (it answers a message, so the
    24-hour window is open), or an approved ``template``."""

    text: str | None = Field(default=None, min_length=1, max_length=4096)
    template: str | None = Field(default=None, min_length=1)
    language: str | None = None
    params: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.text is None) == (self.template is None):
            raise ValueError("give exactly one of text or template")
        if self.template is not None and self.language is None:
            raise ValueError("a template needs its language")
        return self

    def content(self) -> dict[str, object]:
        if self.text is not None:
            return {"type": "text", "text": self.text}
        return {"type": "template", "template": {
            "name": self.template, "language": self.language, "params": list(self.params)}}


def _working_week() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri"]


class AutoReplies(Section):
    """A tenant's automatic replies (each optional) and its office hours."""

    timezone: str = "Asia/Jakarta"
    office_hours: Annotated[
        str, matching(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]-(?:[01][0-9]|2[0-4]):[0-5][0-9]",
                      "HH:MM-HH:MM, such as 08:00-17:00")
    ] = "08:00-17:00"
    office_days: list[Weekday] = Field(default_factory=_working_week)
    greeting: AutoReply | None = None
    after_hours: AutoReply | None = None
    urgent: AutoReply | None = None

    @model_validator(mode="after")
    def _zone(self) -> Self:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self


class Tenant(Section):
    id: Slug
    api_token_sha256: Sha256Hex
    name: str | None = None
    shards: int | None = Field(default=None, ge=1, le=1024)
    phone_numbers: list[PhoneNumber] = Field(default_factory=list)
    auto_replies: AutoReplies | None = None


class Template(Section):
    tenant: Slug
    name: Annotated[
        str, matching(r"[a-z0-9_]{1,512}", "a Meta template name: lowercase letters, digits, _")
    ]
    language: Annotated[
        str, matching(r"[a-z]{2,3}(?:_[A-Z]{2})?", "a language code such as 'id', 'en' or 'en_US'")
    ]
    category: Literal["marketing", "utility", "authentication"]
    status: Literal["approved", "pending", "rejected", "paused"]
    params: int = Field(ge=0)
