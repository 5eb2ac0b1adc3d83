"""The gateway's configuration: ``config/lawhub.toml`` plus secrets from the environment.

This package re-exports what the rest of the gateway uses; each part lives in
a module of its own:

- :mod:`~lawhub_actors.settings.fields`: the strict section base and the
  constrained value types (slugs, phone number ids, tiers, ...).
- :mod:`~lawhub_actors.settings.tenants`: ``[[tenants]]`` and ``[[templates]]``.
- :mod:`~lawhub_actors.settings.schema`: the other sections and
  :class:`Settings`, the whole config.
- :mod:`~lawhub_actors.settings.checks`: rules spanning several entries.
- :mod:`~lawhub_actors.settings.errors`: :class:`ConfigIssue`,
  :class:`ConfigError`, and pydantic's errors as operators read them.
- :mod:`~lawhub_actors.settings.loading`: file and text to :class:`Settings`.
- :mod:`~lawhub_actors.settings.secrets`: :class:`Secrets` from the
  environment, master-key versions, and :func:`preflight`.
"""

from lawhub_actors.settings.errors import FILE_KEY, SYNTAX_KEY, ConfigError, ConfigIssue
from lawhub_actors.settings.loading import check, check_text, load, load_with_text, parse_text
from lawhub_actors.settings.schema import (
    Breaker,
    Limits,
    Pools,
    Retry,
    Server,
    Settings,
    Storage,
)
from lawhub_actors.settings.secrets import MASTER_KEY_BYTES, Secrets, preflight
from lawhub_actors.settings.tenants import AutoReplies, PhoneNumber, Tenant

__all__ = [
    "FILE_KEY",
    "MASTER_KEY_BYTES",
    "SYNTAX_KEY",
    "AutoReplies",
    "Breaker",
    "ConfigError",
    "ConfigIssue",
    "Limits",
    "PhoneNumber",
    "Pools",
    "Retry",
    "Secrets",
    "Server",
    "Settings",
    "Storage",
    "Tenant",
    "check",
    "check_text",
    "load",
    "load_with_text",
    "parse_text",
    "preflight",
]
