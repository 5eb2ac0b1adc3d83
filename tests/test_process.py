"""The real process: ``python run.py`` starts, serves, and ends cleanly."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import os
import signal
import threading
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from lawhub_actors.adapters.dedupe import WARN_EVERY_S
from lawhub_actors.adapters.sqlite_store import SqliteDatabase
from lawhub_actors.adapters.store import Store
from lawhub_actors.core.crypto import Keyring
from lawhub_actors.core.signature import sign
from lawhub_actors.runtime import AppRuntime
from lawhub_actors.settings import parse_text
from lawhub_actors.web.app import EXIT_GAVE_UP, EXIT_OK, run
from supervisors import Actor, ChildSpec, SupervisorFlags, Tree, supervisor_spec
from tests import payloads
from tests.conftest import ADMIN_TOKEN, APP_SECRET, MASTER_KEY, REPO, TENANT_TOKENS
from tests.e2e.outbound_helpers import Gateways, gateways  # noqa: F401 - fixture

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_healthz_and_exits_zero_on_signal_within_5s(
    tmp_path: Path, gateways: Gateways, signum: int  # noqa: F811
) -> None:
    gateway = gateways.start(tmp_path / "var")
    status, body = _get(f"{gateway.url}/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, body = _get(f"{gateway.url}/admin/tree", ADMIN)
    assert status == 200 and json.loads(body)["state"] == "running"
    assert gateway.stop(signum, timeout=5) == 0
    assert any(record.get("event") == "stopped_cleanly" for record in gateway.log_events())
    assert ADMIN_TOKEN not in gateway.log_text()


# One tenant, and a supervision intensity of 0: the first restart anywhere
# is one too many, so the first crash escalates through every supervisor.
GIVES_UP_ON_FIRST_CRASH = f"""
[[tenants]]
id = "firm-a"
api_token_sha256 = "{hashlib.sha256(TENANT_TOKENS["firm-a"].encode()).hexdigest()}"

[[tenants.phone_numbers]]
id = "{payloads.FIRM_A_PNID}"
display = "+62 811 1000 001"
tier = "2K"

[supervision]
max_restarts = 0
"""

TEXT = payloads.load("text")["entry"][0]["changes"][0]["value"]["messages"][0]
"""The message of the ``text`` fixture: its ``id`` (wamid) and ``from`` (customer)."""


def _signed(body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign(APP_SECRET.encode(), body),
    }


def test_run_keeps_serving_and_the_store_dedupes_while_redis_is_down(
    tmp_path: Path, gateways: Gateways  # noqa: F811
) -> None:
    """The configured Redis (the dedupe fast path) is not there: the dispatcher
    warns once and goes on, and a retried webhook is absorbed by the store's
    unique keys instead (the same message, stored once)."""
    config = tmp_path / "lawhub.toml"
    config.write_text(GIVES_UP_ON_FIRST_CRASH + '\n[logging]\nlevel = "debug"\n')
    no_redis = tmp_path / "redis-is-down.sock"  # nothing listens here
    gateway = gateways.start(tmp_path / "var", config, LAWHUB_REDIS_URL=f"unix://{no_redis}")
    url = gateway.url
    body = payloads.raw("text")
    assert _post(f"{url}/webhook", body, _signed(body)) == (200, b"ok")
    warning = gateway.wait_for_event("dedupe_redis_unavailable")
    first = gateway.wait_for_event("message_stored")
    assert _post(f"{url}/webhook", body, _signed(body)) == (200, b"ok")  # Meta retries
    again = gateway.wait_for_event("message_stored")
    assert again["msg_id"] == first["msg_id"] and again["wamid"] == TEXT["id"]

    status, page = _get(
        f"{url}/api/v1/conversations/{TEXT['from']}/messages",
        {"Authorization": f"Bearer {TENANT_TOKENS['firm-a']}"},
    )
    assert status == 200
    assert [m["wamid"] for m in json.loads(page)["messages"]] == [TEXT["id"]]
    assert _get(f"{url}/readyz")[0] == 200
    assert gateway.stop(timeout=10) == 0
    assert (warning["level"], warning["op"], warning["error"]) == ("warning", "seen", "ConnectionError")
    warnings = [line for line in gateway.log_text().splitlines()
                if '"dedupe_redis_unavailable"' in line]
    assert all(TEXT["from"] not in line for line in warnings)
    # At least three calls failed (seen, mark, seen: the retry waited for the
    # first to settle); warnings are at most one per WARN_EVERY_S (this test
    # takes about a second: one warning).
    times = [datetime.fromisoformat(json.loads(line)["timestamp"]) for line in warnings]
    assert all((b - a).total_seconds() >= WARN_EVERY_S for a, b in itertools.pairwise(times))


def test_run_logs_why_and_exits_1_when_the_root_gives_up(
    tmp_path: Path, gateways: Gateways  # noqa: F811
) -> None:
    """A real failure in a real process: the store's database file is
    corrupted on disk while the gateway runs. The store was left by an
    earlier run, so the new process has only read its schema; the first
    signed webhook is journaled (a separate file) and acknowledged, then the
    session shard's store transaction reads a table page of garbage and
    fails. Intensity 0 allows no restart, so the tenant's pool gives up,
    then sessions, inbound and the root: the process logs why and exits 1."""
    config = tmp_path / "lawhub.toml"
    config.write_text(GIVES_UP_ON_FIRST_CRASH)
    data_dir = tmp_path / "var"
    store_file = parse_text(GIVES_UP_ON_FIRST_CRASH, str(config)).storage.sqlite_path(data_dir)
    # An earlier run's store, closed cleanly: everything is in the main file
    # (checkpointed, no WAL), none of it in the next process's page cache.
    Store(SqliteDatabase(store_file), Keyring({1: base64.b64decode(MASTER_KEY)}, 1)).close()
    assert not store_file.with_name(store_file.name + "-wal").exists()

    gateway = gateways.start(data_dir, config)
    url = gateway.url
    assert _get(f"{url}/readyz")[0] == 200
    with store_file.open("r+b") as file:  # "disk corruption": every byte, header included
        file.write(b"\xff" * store_file.stat().st_size)
    body = payloads.raw("text")
    assert _post(f"{url}/webhook", body, _signed(body)) == (200, b"ok")
    record = gateway.wait_for_event("exiting_after_root_gave_up")
    assert gateway.process.wait(timeout=10) == 1  # EXIT_GAVE_UP
    assert record["level"] == "critical"
    # Why, from the root down to the child that failed and its error.
    reason = record["reason"]
    for supervisor in ("root", "inbound", "inbound/sessions", "inbound/sessions/firm-a"):
        assert f"{supervisor}: more than 0 restarts" in reason
    # SQLite names the garbage by the page it reads first: the header or a table's.
    corrupt = ("DatabaseError('database disk image is malformed')",
               "DatabaseError('file is not a database')")
    lines = gateway.log_events()
    failed_commit = next(line for line in lines if line.get("event") == "store commit failed")
    assert failed_commit["error"] in corrupt
    assert failed_commit["error"].split("'")[1] in reason and "DatabaseError" in reason
    first_crash = next(line for line in lines if line.get("event") == "actor crashed")
    assert first_crash["path"].startswith("inbound/sessions/firm-a/"), "a session shard failed"
    assert first_crash["exception"].endswith(
        f"StoreUnavailable: the store could not commit: {failed_commit['error']}")
    assert not any(line.get("event") == "stopped_cleanly" for line in lines)


class Bomb(Actor):
    def receive(self, message: Any) -> Any:
        raise RuntimeError("boom")


def test_run_exits_non_zero_when_the_root_gives_up(settings, secrets) -> None:
    def factory(settings, secrets, publish, on_give_up) -> AppRuntime:
        runtime = AppRuntime(settings, secrets, publish, on_give_up)
        root = supervisor_spec("root", SupervisorFlags(max_restarts=0), [ChildSpec("bomb", Bomb)])
        runtime.tree = Tree(root, on_give_up=on_give_up)
        holder.append(runtime)
        return runtime

    holder: list[AppRuntime] = []
    code = asyncio.run(
        run(settings, secrets, host="127.0.0.1", port=0, runtime_factory=factory,
            started=lambda port: holder[0].tree.tell("bomb", "go"))
    )
    assert code == EXIT_GAVE_UP


def test_a_signal_stops_every_actor_and_leaves_no_thread(settings, secrets) -> None:
    baseline = threading.active_count()
    code = asyncio.run(
        run(settings, secrets, host="127.0.0.1", port=0,
            started=lambda port: os.kill(os.getpid(), signal.SIGTERM))
    )
    assert code == EXIT_OK
    assert threading.active_count() == baseline, [t.name for t in threading.enumerate()]


def test_sighup_reloads_the_config_file_live_and_refuses_an_invalid_one_with_every_error(
    tmp_path: Path, gateways: Gateways  # noqa: F811
) -> None:
    config = tmp_path / "lawhub.toml"
    shipped = (REPO / "config" / "lawhub.toml").read_text()
    config.write_text(shipped)
    gateway = gateways.start(tmp_path / "var", config)

    def running() -> dict[str, Any]:
        return json.loads(_get(f"{gateway.url}/admin/config", ADMIN)[1])

    before = running()
    config.write_text(shipped + "\n[supervision.pools]\nsession_shards = 0\nworkerz = 1\n")
    gateway.process.send_signal(signal.SIGHUP)
    refused = [gateway.wait_for_event("config_reload_refused") for _ in range(2)]
    assert {r["key"] for r in refused} == {"supervision.pools.session_shards",
                                           "supervision.pools.workerz"}
    assert all(r["file"] == str(config) and r["reason"] for r in refused)
    assert running() == before

    config.write_text(shipped + "\n[supervision.pools]\nsession_shards = 2\n")
    gateway.process.send_signal(signal.SIGHUP)
    applied = gateway.wait_for_event("config_applied")
    assert applied["via"] == "sighup" and applied["keys"] == ["supervision.pools.session_shards"]
    assert running()["supervision"]["pools"]["session_shards"] == 2
    status, body = _get(f"{gateway.url}/admin/config/changes", ADMIN)
    assert status == 200 and json.loads(body)["entries"][0]["data"]["by"] == "signal"
    assert gateway.stop() == EXIT_OK
