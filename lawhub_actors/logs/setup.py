"""Logging setup: structlog and the standard library's ``logging`` as one JSON stream.

:func:`configure` sets up structlog and routes the standard library's
``logging`` (aiohttp, pykka) through the same renderer, so every line on the
stream passes :func:`~lawhub_actors.logs.redaction.redact`; the standard
library's records pass the filters of :mod:`lawhub_actors.logs.filters`
first.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TextIO

import structlog
from structlog.typing import Processor

from lawhub_actors.logs.filters import RepeatLimiter, refusals_only
from lawhub_actors.logs.pseudonyms import set_pseudonym_key
from lawhub_actors.logs.redaction import redact, register_secret
from lawhub_actors.settings import Secrets

_stdlib_handler: logging.Handler | None = None


def configure(
    level: str = "info",
    stream: TextIO | None = None,
    secrets: Secrets | Iterable[str] | None = None,
) -> None:
    """JSON lines on ``stream`` (default stderr) at ``level`` and above, for
    structlog and the standard library alike. ``secrets`` are registered for
    redaction; with a :class:`~lawhub_actors.settings.Secrets` carrying a
    master key, conversation refs are keyed from it. Calling again (e.g. on a
    config reload) replaces the previous setup."""
    level_no = logging.getLevelNamesMapping().get(level.upper())
    if level_no is None:
        raise ValueError(f"unknown log level {level!r}")
    out = sys.stderr if stream is None else stream
    _register(secrets)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    tail: list[Processor] = [
        structlog.processors.format_exc_info,
        redact,
        structlog.processors.JSONRenderer(),
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.StackInfoRenderer(),
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        # Not cached: a reconfigure (new level, new stream) reaches loggers
        # that modules obtained earlier.
        cache_logger_on_first_use=False,
    )
    _route_stdlib(out, level_no, timestamper, tail)


def _register(secrets: Secrets | Iterable[str] | None) -> None:
    if secrets is None:
        return
    if isinstance(secrets, Secrets):
        for value in secrets.values():
            register_secret(value)
        if secrets.master_key is not None:
            set_pseudonym_key(secrets.master_key.get_secret_value())
        return
    for value in secrets:
        register_secret(value)


def _route_stdlib(
    out: TextIO, level_no: int, timestamper: Processor, tail: list[Processor]
) -> None:
    global _stdlib_handler  # noqa: PLW0603 - replaced on each configure
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                # stdlib callers (the supervisors) pass ids as ``extra``; keep
                # them, so that redaction sees and filters them like any key.
                structlog.stdlib.ExtraAdder(),
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                timestamper,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    handler.addFilter(refusals_only)
    handler.addFilter(RepeatLimiter())
    root = logging.getLogger()
    if _stdlib_handler is not None:
        root.removeHandler(_stdlib_handler)
    root.addHandler(handler)
    root.setLevel(level_no)
    # httpx logs every request at INFO: one line per media download (and
    # remote classification), with URLs; the gateway logs its own outcomes.
    logging.getLogger("httpx").setLevel(max(level_no, logging.WARNING))
    _stdlib_handler = handler
