"""Reading a config: the file, its TOML, then :class:`Settings` or every problem at once.

``check`` and ``check_text`` report every problem as :class:`ConfigIssue`
values (file, dotted key, reason); ``load`` and ``parse_text`` return
:class:`Settings` or raise :class:`ConfigError` carrying the same list. The
cross-field rules (unique ids, templates of known tenants) run on the raw
table too, so they are reported alongside field errors, not only once those
are fixed.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import ValidationError

from lawhub_actors.settings.checks import DEFER_CROSS_CHECKS, cross_issues
from lawhub_actors.settings.errors import (
    FILE_KEY,
    SYNTAX_KEY,
    ConfigError,
    ConfigIssue,
    issue_from,
)
from lawhub_actors.settings.schema import Settings


def check_text(text: str, file: str) -> list[ConfigIssue]:
    """Every problem of a TOML document; empty when it is a valid config."""
    return _parse(text, file)[1]


def parse_text(text: str, file: str = "<text>") -> Settings:
    """Settings from a TOML document; ``ConfigError`` with every problem otherwise."""
    settings, issues = _parse(text, file)
    if settings is None:
        raise ConfigError(issues)
    return settings


def check(path: str | os.PathLike[str]) -> list[ConfigIssue]:
    """Every problem of the config file at ``path``; empty when valid."""
    text, issues = _read(path)
    if text is None:
        return issues
    return check_text(text, str(path))


def load(path: str | os.PathLike[str]) -> Settings:
    """Settings from the file at ``path``; ``ConfigError`` with every problem otherwise."""
    return load_with_text(path)[0]


def load_with_text(path: str | os.PathLike[str]) -> tuple[Settings, str]:
    """``load``, with the text it read (kept for operators to edit)."""
    text, issues = _read(path)
    if text is None:
        raise ConfigError(issues)
    return parse_text(text, str(path)), text


def _read(path: str | os.PathLike[str]) -> tuple[str | None, list[ConfigIssue]]:
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None, [ConfigIssue(file, FILE_KEY, "file not found")]
    except IsADirectoryError:
        return None, [ConfigIssue(file, FILE_KEY, "is a directory, not a file")]
    except OSError as exc:
        return None, [ConfigIssue(file, FILE_KEY, f"cannot read: {exc.strerror or exc}")]
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        reason = f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at line {line} (offset {exc.start})"
        return None, [ConfigIssue(file, FILE_KEY, reason)]


def _parse(text: str, file: str) -> tuple[Settings | None, list[ConfigIssue]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message carries "(at line L, column C)".
        return None, [ConfigIssue(file, SYNTAX_KEY, f"TOML syntax error: {exc}")]
    issues = [ConfigIssue(file, key, reason) for key, reason in cross_issues(data)]
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data, context={DEFER_CROSS_CHECKS: True})
    except ValidationError as exc:
        issues = [issue_from(file, error) for error in exc.errors()] + issues
    if issues:
        return None, issues
    return settings, []
