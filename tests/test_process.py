"""The real process: ``python run.py`` starts, serves, and ends cleanly."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from lawhub_actors.adapters.dedupe import WARN_EVERY_S
from lawhub_actors.adapters.sqlite_store import Store
from lawhub_actors.core.crypto import Keyring
from lawhub_actors.core.signature import sign
from lawhub_actors.runtime import AppRuntime
from lawhub_actors.settings import parse_text
from lawhub_actors.web.app import EXIT_GAVE_UP, EXIT_OK, run
from supervisors import Actor, ChildSpec, SupervisorFlags, Tree, supervisor_spec
from tests import payloads
from tests.conftest import ADMIN_TOKEN, APP_SECRET, REPO, TENANT_TOKENS, test_environment


class Served:
    """A ``run.py`` child process whose JSON log lines are read as they come."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        env = {**os.environ, **test_environment(tmp_path / "var", **(env or {}))}
        self.process = subprocess.Popen(
            [sys.executable, "run.py", "--port", "0", *args],
            cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for_event(self, event: str, timeout: float = 15.0) -> dict[str, Any]:
        while True:
            line = self.lines.get(timeout=timeout)
            self.seen.append(line)
            record = json.loads(line)
            if record.get("event") == event:
                return record

    def get(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_healthz_and_exits_zero_on_signal_within_5s(tmp_path: Path, signum: int) -> None:
    served = Served(tmp_path)
    try:
        url = served.wait_for_event("listening")["url"]
        status, body = served.get(f"{url}/healthz")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        status, body = served.get(f"{url}/admin/tree", {"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert status == 200 and json.loads(body)["state"] == "running"
        served.process.send_signal(signum)
        assert served.process.wait(timeout=5) == 0
    finally:
        if served.process.poll() is None:
            served.process.kill()
    remaining = served.seen + [served.lines.get() for _ in range(served.lines.qsize())]
    assert any('"stopped_cleanly"' in line for line in remaining)
    assert all(ADMIN_TOKEN not in line for line in remaining)


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


def test_run_keeps_serving_and_the_store_dedupes_while_redis_is_down(tmp_path: Path) -> None:
    """The configured Redis (the dedupe fast path) is not there: the dispatcher
    warns once and goes on, and a retried webhook is absorbed by the store's
    unique keys instead (the same message, stored once)."""
    config = tmp_path / "lawhub.toml"
    config.write_text(GIVES_UP_ON_FIRST_CRASH + '\n[logging]\nlevel = "debug"\n')
    no_redis = tmp_path / "redis-is-down.sock"  # nothing listens here
    served = Served(
        tmp_path, "--config", str(config), env={"LAWHUB_REDIS_URL": f"unix://{no_redis}"}
    )
    try:
        url = served.wait_for_event("listening")["url"]
        body = payloads.raw("text")
        assert served.post(f"{url}/webhook", body, _signed(body)) == (200, b"ok")
        warning = served.wait_for_event("dedupe_redis_unavailable")
        first = served.wait_for_event("message_stored")
        assert served.post(f"{url}/webhook", body, _signed(body)) == (200, b"ok")  # Meta retries
        again = served.wait_for_event("message_stored")
        assert again["msg_id"] == first["msg_id"] and again["wamid"] == TEXT["id"]

        status, page = served.get(
            f"{url}/api/v1/conversations/{TEXT['from']}/messages",
            {"Authorization": f"Bearer {TENANT_TOKENS['firm-a']}"},
        )
        assert status == 200
        assert [m["wamid"] for m in json.loads(page)["messages"]] == [TEXT["id"]]
        assert served.get(f"{url}/readyz")[0] == 200
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=10) == 0
    finally:
        if served.process.poll() is None:
            served.process.kill()
    assert (warning["level"], warning["op"], warning["error"]) == ("warning", "seen", "ConnectionError")
    remaining = served.seen + [served.lines.get() for _ in range(served.lines.qsize())]
    warnings = [line for line in remaining if '"dedupe_redis_unavailable"' in line]
    assert all(TEXT["from"] not in line for line in warnings)
    # At least three calls failed (seen, mark, seen: the retry waited for the
    # first to settle); warnings are at most one per WARN_EVERY_S (this test
    # takes about a second: one warning).
    times = [datetime.fromisoformat(json.loads(line)["timestamp"]) for line in warnings]
    assert all((b - a).total_seconds() >= WARN_EVERY_S for a, b in itertools.pairwise(times))


def test_run_logs_why_and_exits_1_when_the_root_gives_up(tmp_path: Path) -> None:
    """A real failure in a real process: the store's database file is
    corrupted on disk while the gateway runs. The store was left by an
    earlier run, so the new process has only read its schema; the first
    signed webhook is journaled (a separate file) and acknowledged, then the
    session shard's store transaction reads a table page of garbage and
    fails. Intensity 0 allows no restart, so the tenant's pool gives up,
    then sessions, inbound and the root: the process logs why and exits 1."""
    config = tmp_path / "lawhub.toml"
    config.write_text(GIVES_UP_ON_FIRST_CRASH)
    data_dir = tmp_path / "var"  # LAWHUB_DATA_DIR of Served
    store_file = parse_text(GIVES_UP_ON_FIRST_CRASH, str(config)).storage.sqlite_path(data_dir)
    # An earlier run's store, closed cleanly: everything is in the main file
    # (checkpointed, no WAL), none of it in the next process's page cache.
    Store(store_file, Keyring({1: os.urandom(32)}, 1)).close()
    assert not store_file.with_name(store_file.name + "-wal").exists()

    served = Served(tmp_path, "--config", str(config))
    try:
        url = served.wait_for_event("listening")["url"]
        assert served.get(f"{url}/readyz")[0] == 200
        with store_file.open("r+b") as file:  # "disk corruption": every byte, header included
            file.write(b"\xff" * store_file.stat().st_size)
        body = payloads.raw("text")
        assert served.post(f"{url}/webhook", body, _signed(body)) == (200, b"ok")
        record = served.wait_for_event("exiting_after_root_gave_up")
        assert served.process.wait(timeout=10) == 1  # EXIT_GAVE_UP
    finally:
        if served.process.poll() is None:
            served.process.kill()
    assert record["level"] == "critical"
    # Why, from the root down to the child that failed and its error.
    reason = record["reason"]
    for supervisor in ("root", "inbound", "inbound/sessions", "inbound/sessions/firm-a"):
        assert f"{supervisor}: more than 0 restarts" in reason
    assert "DatabaseError" in reason and "database disk image is malformed" in reason
    lines = [json.loads(line) for line in served.seen]
    failed_commit = next(line for line in lines if line["event"] == "store commit failed")
    assert failed_commit["error"] == "DatabaseError('database disk image is malformed')"
    first_crash = next(line for line in lines if line["event"] == "actor crashed")
    assert first_crash["path"].startswith("inbound/sessions/firm-a/"), "a session shard failed"
    assert first_crash["exception"].endswith(
        "sqlite3.DatabaseError: database disk image is malformed"
    )
    remaining = served.seen + [served.lines.get() for _ in range(served.lines.qsize())]
    assert not any('"stopped_cleanly"' in line for line in remaining)


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
    tmp_path: Path,
) -> None:
    config = tmp_path / "lawhub.toml"
    shipped = (REPO / "config" / "lawhub.toml").read_text()
    config.write_text(shipped)
    served = Served(tmp_path, "--config", str(config))
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        url = served.wait_for_event("listening")["url"]

        def running() -> dict[str, Any]:
            return json.loads(served.get(f"{url}/admin/config", admin)[1])

        before = running()
        config.write_text(shipped + "\n[supervision.pools]\nsession_shards = 0\nworkerz = 1\n")
        served.process.send_signal(signal.SIGHUP)
        refused = [served.wait_for_event("config_reload_refused") for _ in range(2)]
        assert {r["key"] for r in refused} == {"supervision.pools.session_shards",
                                               "supervision.pools.workerz"}
        assert all(r["file"] == str(config) and r["reason"] for r in refused)
        assert running() == before

        config.write_text(shipped + "\n[supervision.pools]\nsession_shards = 2\n")
        served.process.send_signal(signal.SIGHUP)
        applied = served.wait_for_event("config_applied")
        assert applied["via"] == "sighup" and applied["keys"] == ["supervision.pools.session_shards"]
        assert running()["supervision"]["pools"]["session_shards"] == 2
        status, body = served.get(f"{url}/admin/config/changes", admin)
        assert status == 200 and json.loads(body)["entries"][0]["data"]["by"] == "signal"
    finally:
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=15) == EXIT_OK
