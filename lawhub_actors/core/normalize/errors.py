"""Meta's error objects → :class:`~lawhub_actors.core.events.MetaError` (pure):
a change's account-level ``errors[]`` and those of a message or status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from lawhub_actors.core import payload as p
from lawhub_actors.core.events import UNKNOWN_ERROR_CODE, MetaError
from lawhub_actors.core.normalize.scope import Scope


def item_errors(scope: Scope, raws: Sequence[Any]) -> tuple[MetaError, ...]:
    """The valid ones of raw error objects; an invalid one is ignored with a warning."""
    errors: list[p.ErrorObject] = []
    for k, raw in enumerate(raws):
        try:
            errors.append(p.ErrorObject.model_validate(raw))
        except ValidationError as exc:
            scope.warn(f"errors[{k}]", f"invalid error object ({p.error_fields(exc)}); ignored")
    return meta_errors(errors)


def meta_errors(errors: Sequence[p.ErrorObject] | None) -> tuple[MetaError, ...]:
    return tuple(
        MetaError(
            code=UNKNOWN_ERROR_CODE if e.code is None else e.code,
            title=e.title,
            message=e.message,
            details=e.error_data.details if e.error_data else None,
            href=e.href,
        )
        for e in errors or ()
    )
