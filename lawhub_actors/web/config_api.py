"""The running configuration for operators: read it, replace it live, see what changed.

``PUT /admin/config`` (a TOML body) and ``SIGHUP`` (the config file read
again) take one path, :func:`apply_text`: the same validation as
``python run.py check-config``, then the keys that only a restart can change
are refused by name; any problem → nothing changes (422 listing every
error, or one log line per error for SIGHUP). Otherwise the runtime adopts
the new config (see ``AppRuntime.reconfigure``) and tenants' API tokens
follow: a removed or replaced token stops working before the adoption
begins (its open feeds are closed), new ones work once it is done. The
change is audited: who (the admin token's fingerprint, or
``signal``), how, and the diff. Reloads run one at a time.

**Several nodes.** The applied text is kept in the store as the next
configuration version, in the audit entry's transaction (stored once,
audited once), and the other nodes are told (:data:`channels.CONFIG`):
each applies the highest version itself (:func:`apply_stored`), keeping its
own value of every key read only at start (its address, storage, cluster);
a node also applies it when it starts, and after losing touch with the
others' notices.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from lawhub_actors.adapters import channels, config_versions
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.config_changes import Change, diff, keep_node_own, restart_only
from lawhub_actors.settings import ConfigError, ConfigIssue, Settings, parse_text
from lawhub_actors.usecases import operator_audit
from lawhub_actors.web.auth import admin_refusal, fingerprint
from lawhub_actors.web.errors import error_response
from lawhub_actors.web.keys import (
    ADMIN_TOKEN,
    CONFIG_VERSION,
    FEED,
    RELOADS,
    RUNTIME,
    STORE,
    TENANT_TOKENS,
)
from lawhub_actors.web.metrics import METRICS

log = structlog.get_logger("lawhub.config")

PUT_FILE = "<request body>"
CLUSTER_FILE = "<stored config>"
MAX_BODY_BYTES = 1024 * 1024


@dataclass
class Applied:
    """What a reload did: the problems that refused it, or the changes made
    (and any actor that could not adopt its part)."""

    issues: list[ConfigIssue] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    not_adopted: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        if self.issues:
            return {"errors": [{"file": i.file, "key": i.key, "reason": i.reason}
                               for i in self.issues]}
        return {"changes": [c.to_dict() for c in self.changes], "not_adopted": self.not_adopted}


def add_routes(app: web.Application) -> None:
    app[RELOADS] = asyncio.Lock()
    app[CONFIG_VERSION] = 0
    app.router.add_get("/admin/config", get_config)
    app.router.add_put("/admin/config", put_config)
    app.router.add_get("/admin/config/changes", changes)


async def get_config(request: web.Request) -> web.Response:
    """The running configuration (secrets never: they live only in the
    environment; tenants' API tokens appear as their hashes): JSON, or with
    ``?format=toml`` the TOML it was read from, for editing."""
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    config = request.app[RUNTIME].config
    fmt = request.query.get("format", "json")
    if fmt == "toml":
        return web.Response(text=config.text, content_type="text/plain")
    if fmt != "json":
        return error_response(422, "invalid_query", "format must be json or toml")
    return web.json_response(config.current.model_dump(mode="json"))


async def put_config(request: web.Request) -> web.Response:
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return error_response(413, "too_large", f"a config is at most {MAX_BODY_BYTES} bytes")
    try:
        text = (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        return web.json_response({"errors": [
            {"file": PUT_FILE, "key": "(file)", "reason": "not valid UTF-8"}]}, status=422)
    applied = await apply_text(request.app, text, PUT_FILE, by=fingerprint(request), via="api")
    return web.json_response(applied.to_dict(), status=422 if applied.issues else 200)


def _record(app: web.Application, text: str, *, by: str, via: str,
            changed: list[dict[str, Any]], not_adopted: list[str]) -> int:
    """Keep the applied config as the next version with its audit entry
    (one transaction), then tell the other nodes; the version."""
    store = app[STORE]

    def write(tx: Tx) -> int:
        operator_audit.config_changed(tx, by=by, via=via, changes=changed,
                                      not_adopted=not_adopted)
        return config_versions.record(tx, text, by=by, via=via)

    for _ in range(3):  # another node stored one at the same moment: the next number
        try:
            version = store.write(write).value
            break
        except store.database.integrity_errors:
            continue
    else:
        raise RuntimeError("the config could not be given a version number")
    store.apart(lambda tx: store.database.notify(tx.conn, channels.CONFIG, str(version)))
    return version


def _revoked(old: Settings, new: Settings) -> set[str]:
    """Tenants whose API token stops working: removed, or given a new one."""
    now = {t.id: t.api_token_sha256 for t in new.tenants}
    return {t.id for t in old.tenants if now.get(t.id) != t.api_token_sha256}


async def changes(request: web.Request) -> web.Response:
    """The audited configuration changes, newest first."""
    refusal = admin_refusal(request, request.app.get(ADMIN_TOKEN))
    if refusal is not None:
        return refusal
    entries = await asyncio.to_thread(request.app[STORE].read_tx, operator_audit.config_history)
    return web.json_response({"entries": entries})


async def reload_file(app: web.Application, path: Path) -> Applied:
    """SIGHUP: read the config file again and apply it like a PUT."""
    try:
        text = await asyncio.to_thread(path.read_text, "utf-8")
    except (OSError, UnicodeDecodeError) as error:
        applied = Applied(issues=[ConfigIssue(str(path), "(file)", f"cannot read: {error}")])
    else:
        applied = await apply_text(app, text, str(path), by="signal", via="sighup")
    for issue in applied.issues:
        log.error("config_reload_refused", file=issue.file, key=issue.key, reason=issue.reason)
    return applied


async def apply_text(app: web.Application, text: str, file: str, *, by: str, via: str) -> Applied:
    """Validate ``text`` whole, then apply it live or change nothing."""
    applied = await _apply(app, text, file, by=by, via=via)
    result = "refused" if applied.issues else "applied" if applied.changes else "unchanged"
    app[METRICS].config_reloads.labels(via, result).inc()
    return applied


async def _apply(app: web.Application, text: str, file: str, *, by: str, via: str) -> Applied:
    async with app[RELOADS]:
        try:
            new = parse_text(text, file)
        except ConfigError as error:
            return Applied(issues=error.issues)
        return await _adopt(app, new, text, file, by=by, via=via, stored=None)


async def apply_stored(app: web.Application) -> Applied:
    """Run the cluster's highest configuration version if this node runs an
    older one (not stored nor audited again: the node that applied it did)."""
    async with app[RELOADS]:
        store = app[STORE]
        latest = await asyncio.to_thread(store.read_tx, config_versions.latest)
        if latest is None or latest.version <= app[CONFIG_VERSION]:
            return Applied()
        try:
            stored = parse_text(latest.text, CLUSTER_FILE)
        except ConfigError as error:  # a newer node's config this one cannot read
            app[CONFIG_VERSION] = latest.version
            for issue in error.issues:
                log.error("stored_config_refused", version=latest.version, key=issue.key,
                          reason=issue.reason)
            return Applied(issues=error.issues)
        new = keep_node_own(app[RUNTIME].settings, stored)
        return await _adopt(app, new, latest.text, CLUSTER_FILE, by=latest.by, via="cluster",
                            stored=latest.version)


async def _adopt(app: web.Application, new: Settings, text: str, file: str, *, by: str,
                 via: str, stored: int | None) -> Applied:
    """Have the runtime run ``new``; ``stored``: the version it already is
    (else it is stored as the next one, audited, and the others told)."""
    runtime = app[RUNTIME]
    found = diff(runtime.settings, new)
    refused = restart_only(found, file)
    if refused:
        return Applied(issues=refused)
    if not found:
        if stored is not None:
            app[CONFIG_VERSION] = stored
        return Applied()
    old, tokens = runtime.settings, app[TENANT_TOKENS]
    revoked = _revoked(old, new)
    if revoked:  # no request of theirs is admitted while the tree adopts
        tokens.replace((t.id, t.api_token_sha256) for t in old.tenants if t.id not in revoked)
        app[FEED].revoke(revoked)
    not_adopted = await asyncio.to_thread(runtime.reconfigure, new, text)
    tokens.replace((t.id, t.api_token_sha256) for t in new.tenants)
    changed = [c.to_dict() for c in found]
    if stored is None:
        app[CONFIG_VERSION] = await asyncio.to_thread(
            _record, app, text, by=by, via=via, changed=changed, not_adopted=not_adopted)
    else:
        app[CONFIG_VERSION] = stored
    log.info("config_applied", by=by, via=via, keys=[c.key for c in found],
             not_adopted=not_adopted)
    if not_adopted:
        log.error("config_not_adopted", paths=not_adopted)
    return Applied(changes=found, not_adopted=not_adopted)
