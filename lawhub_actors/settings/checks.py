"""Rules spanning several entries of a config: unique tenant ids, API tokens and
phone numbers, unique templates, and templates of known tenants.

They run on the raw TOML table, not on validated :class:`Settings`, so that
they are reported together with field errors rather than only once those are
fixed: loading validates with :data:`DEFER_CROSS_CHECKS` set and reports
:func:`cross_issues` itself; any other validation of ``Settings`` runs them
in its own validator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lawhub_actors.settings.fields import int_to_str

DEFER_CROSS_CHECKS = "defer_cross_checks"
"""Validation context key: when true, ``Settings`` skips its cross-field validator."""


def cross_issues(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rules spanning several entries, as (dotted key, reason) pairs.

    Works on the raw TOML table, tolerating entries of the wrong shape
    (those are reported by field validation), so that these problems show up
    in the same report as field errors.
    """
    tenant_ids = _FirstSeen()
    problems = _tenant_issues(data.get("tenants"), tenant_ids)
    problems += _template_issues(data.get("templates"), tenant_ids)
    problems += _node_issues(data)
    return problems


def _node_issues(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Several processes are several nodes: they share a database only on PostgreSQL."""
    server, storage = data.get("server"), data.get("storage")
    processes = server.get("processes", 1) if isinstance(server, Mapping) else 1
    backend = storage.get("backend", "sqlite") if isinstance(storage, Mapping) else "sqlite"
    if isinstance(processes, int) and processes > 1 and backend != "postgres":
        return [("server.processes",
                 'more than 1 needs [storage] backend = "postgres" (nodes share the database)')]
    return []


class _FirstSeen:
    """Where each value was first seen, to report the duplicates that follow."""

    def __init__(self) -> None:
        self.at: dict[object, str] = {}

    def clash(self, value: object, where: str) -> str | None:
        """Where ``value`` was seen before (``None``: first time, now recorded)."""
        if value in self.at:
            return self.at[value]
        self.at[value] = where
        return None


def _tenant_issues(tenants: object, tenant_ids: _FirstSeen) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    tokens, numbers = _FirstSeen(), _FirstSeen()
    for i, tenant in _entries(tenants):
        where = f"tenants[{i}]"
        tenant_id = tenant.get("id")
        if isinstance(tenant_id, str) and (first := tenant_ids.clash(tenant_id, where)):
            problems.append(
                (f"{where}.id", f"duplicate tenant id {tenant_id!r} (first at {first})")
            )
        token = tenant.get("api_token_sha256")
        if isinstance(token, str) and (first := tokens.clash(token, where)):
            problems.append((f"{where}.api_token_sha256", f"same API token as {first}"))
        for j, number in _entries(tenant.get("phone_numbers")):
            number_id = int_to_str(number.get("id"))
            number_where = f"{where}.phone_numbers[{j}]"
            if isinstance(number_id, str) and (first := numbers.clash(number_id, number_where)):
                reason = f"duplicate phone_number_id {number_id!r} (first at {first})"
                problems.append((f"{number_where}.id", reason))
    return problems


def _template_issues(templates: object, tenant_ids: _FirstSeen) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    identities = _FirstSeen()
    for k, template in _entries(templates):
        where = f"templates[{k}]"
        owner = template.get("tenant")
        if isinstance(owner, str) and owner not in tenant_ids.at:
            known = ", ".join(sorted(map(str, tenant_ids.at))) or "none"
            problems.append((f"{where}.tenant", f"unknown tenant {owner!r} (known: {known})"))
        identity = (owner, template.get("name"), template.get("language"))
        if all(isinstance(part, str) for part in identity) and (
            first := identities.clash(identity, where)
        ):
            reason = "duplicate (tenant, name, language) " + f"{identity} (first at {first})"
            problems.append((where, reason))
    return problems


def _entries(value: object) -> list[tuple[int, Mapping[str, Any]]]:
    if not isinstance(value, list):
        return []
    return [(i, entry) for i, entry in enumerate(value) if isinstance(entry, Mapping)]
