"""Structured logging: JSON lines on stderr that never carry personal data or secrets.

This package re-exports what the rest of the gateway uses; each part lives in
a module of its own:

- :mod:`~lawhub_actors.logs.setup`: :func:`configure`, structlog and the
  standard library's ``logging`` (aiohttp, pykka) routed through one JSON
  renderer, so every line on the stream passes :func:`redact`.
- :mod:`~lawhub_actors.logs.redaction`: :func:`redact` and :func:`scrub`,
  the rules and patterns that keep message content, phone numbers,
  registered secrets and credentials out of every line.
- :mod:`~lawhub_actors.logs.pseudonyms`: :func:`conversation_ref`, a
  customer's keyed pseudonym, logged in place of their number.
- :mod:`~lawhub_actors.logs.filters`: the standard library's records before
  rendering: :func:`~lawhub_actors.logs.filters.refusals_only` (a refused
  request is logged as its refusal, never as the raw request) and
  :class:`RepeatLimiter` (other libraries' repeated lines).
"""

from lawhub_actors.logs.filters import REPEATS_PER_WINDOW, RepeatLimiter
from lawhub_actors.logs.pseudonyms import conversation_ref, set_pseudonym_key
from lawhub_actors.logs.redaction import PHONE_PATTERN, redact, register_secret, scrub
from lawhub_actors.logs.setup import configure

__all__ = [
    "PHONE_PATTERN",
    "REPEATS_PER_WINDOW",
    "RepeatLimiter",
    "configure",
    "conversation_ref",
    "redact",
    "register_secret",
    "scrub",
    "set_pseudonym_key",
]
