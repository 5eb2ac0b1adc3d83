"""Request bodies of the REST API (pydantic at the boundary)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from lawhub_actors.core.customers import DESCRIPTION, valid_customer


def _customer(value: str) -> str:
    if not valid_customer(value):
        raise ValueError(f"must be {DESCRIPTION}")
    return value


CustomerId = Annotated[str, AfterValidator(_customer)]

Line = Annotated[str, StringConstraints(min_length=1, max_length=200,
                                        pattern=r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$")]
"""One line of free text: no control characters and no line separators
(``\n``, ``\x85``, U+2028, U+2029)."""


class _Body(BaseModel):
    """Strict: a boolean is ``true`` or ``false`` (never ``"yes"`` or 1), a
    string is a string; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TextBody(_Body):
    body: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class TemplateBody(_Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    language: Annotated[str, StringConstraints(min_length=2, max_length=16)]
    params: list[Annotated[str, StringConstraints(max_length=1024)]] = Field(
        default_factory=list, max_length=100
    )


class SendRequest(_Body):
    """``POST /api/v1/messages``: a text (inside the 24-hour window) or a template."""

    phone_number_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{5,32}$")]
    to: CustomerId
    type: Literal["text", "template"]
    text: TextBody | None = None
    template: TemplateBody | None = None
    client_ref: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None

    @model_validator(mode="after")
    def _one_payload(self) -> Self:
        given = {"text": self.text is not None, "template": self.template is not None}
        if not given[self.type]:
            raise ValueError(f'type "{self.type}" needs a "{self.type}" object')
        other = "template" if self.type == "text" else "text"
        if given[other]:
            raise ValueError(f'type "{self.type}" takes no "{other}" object')
        return self

    def content(self) -> dict[str, object]:
        """What is stored (sealed) and later sent."""
        if self.text is not None:
            return {"type": "text", "text": self.text.body}
        assert self.template is not None
        return {"type": "template", "template": self.template.model_dump()}


class ConsentRequest(_Body):
    """``PUT /api/v1/contacts/{wa_id}/consent``."""

    granted: bool
    source: Line
