"""A config's problems as operators read them: :class:`ConfigIssue` (file, dotted
key, reason), :class:`ConfigError` carrying every one, and pydantic's
validation errors turned into issues (:func:`issue_from`)."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from lawhub_actors.settings.schema import Settings

# Keys of file-level issues, which have no dotted path.
FILE_KEY = "(file)"
SYNTAX_KEY = "(syntax)"


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem with a config: where (file, dotted key) and why."""

    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.reason}"


class ConfigError(Exception):
    """A config (or the environment) is invalid; ``issues`` lists every problem."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


def issue_from(file: str, error: ErrorDetails) -> ConfigIssue:
    """The issue one of pydantic's errors is, its key dotted as in the file."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    if loc and loc[-1] == "[key]":  # the error is about a table's key itself
        loc = loc[:-1]
    kind: str = error["type"]
    if kind == "extra_forbidden":
        reason = "unknown key"
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        if close:
            reason += f"; did you mean {close[0]!r}?"
        elif known:
            reason += f" (expected one of: {', '.join(known)})"
    elif kind == "missing":
        reason = "required key is missing"
    else:
        reason = str(error["msg"]).removeprefix("Value error, ")
        if kind == "model_type":  # "... instance of <class name>"
            class_name = str(error.get("ctx", {}).get("class_name", ""))
            if class_name:
                reason = reason.replace(class_name, _section_name(class_name))
        if not kind.startswith("value_error") and isinstance(error["input"], str | int | float):
            reason += f" (got {error['input']!r})"
    return ConfigIssue(file, _dotted(loc) or "(root)", reason)


def _section_name(class_name: str) -> str:
    """A section's name in messages: its class's, less the ``Settings`` suffix
    that keeps ``BackoffSettings`` and ``MailboxSettings`` from shadowing the
    supervision runtime's names, so messages say ``Backoff`` as they always did."""
    return class_name.removesuffix("Settings") or class_name


def _dotted(loc: tuple[str | int, ...]) -> str:
    """``('tenants', 0, 'phone_numbers', 1, 'tier')`` -> ``tenants[0].phone_numbers[1].tier``;
    keys that are not bare TOML keys are quoted, as in the file."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if part.replace("_", "").replace("-", "").isalnum() else f'"{part}"'
        out += f".{name}" if out else name
    return out


def _known_keys(loc: tuple[str | int, ...]) -> list[str]:
    """The keys the table at ``loc`` accepts, by walking the schema's annotations."""
    node: Any = Settings
    for part in loc:
        node = _unwrap(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            if field is None:
                return []
            node = field.annotation
        else:
            args = typing.get_args(node)
            node = args[-1] if args else None
    node = _unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return []


def _unwrap(node: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the type that matters."""
    while True:
        origin = typing.get_origin(node)
        if origin is Annotated:
            node = typing.get_args(node)[0]
        elif origin in (typing.Union, types.UnionType):
            node = next(arg for arg in typing.get_args(node) if arg is not type(None))
        else:
            return node
