"""Request bodies of the REST API (pydantic at the boundary)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

WaId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9._-]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    to: WaId
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
    source: Annotated[str, StringConstraints(min_length=1, max_length=200)]
