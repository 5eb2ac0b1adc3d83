"""End to end with real ``run.py`` processes: start, signal, SIGKILL and stop
gateways and follow their logs (every test that needs the real process uses these);
for outbound, let customers write in, send through the API and wait until sent.

Every wait polls with a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lawhub_actors.simulator import traffic
from lawhub_actors.simulator.graph import GraphStandIn, serve_in_thread
from tests.conftest import APP_SECRET, REPO, SHIPPED_CONFIG, TENANT_TOKENS, test_environment

NUMBER_A = "106540352242922"
"""firm-a's first number in the shipped config."""
GRAPH_TOKEN = "graph-access-token-for-tests"
SENT_OR_LATER = frozenset({"sent", "delivered", "read"})
START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 15.0
POLL_S = 0.05


def auth(tenant: str = "firm-a") -> dict[str, str]:
    return {"Authorization": f"Bearer {TENANT_TOKENS[tenant]}"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- gateway processes ---------------------------------------------------------------


@dataclass
class Gateway:
    """A ``run.py`` process: its base URL and the file it logs to (JSON lines)."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    _read_bytes: int = 0
    _unread: deque[dict[str, Any]] = field(default_factory=deque)

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_DEADLINE_S)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = STOP_DEADLINE_S) -> int:
        """``signum`` (SIGTERM or SIGINT: the graceful ways out); its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the gateway did not stop on {signal.Signals(signum).name} within {timeout} s:"
                f" {self.log_tail()}") from None

    def wait_for_event(self, event: str, timeout: float = 15.0) -> dict[str, Any]:
        """The next log record of ``event``: records are read in order, each once,
        so two calls for the same event answer two records."""
        deadline = time.monotonic() + timeout
        while True:
            while self._unread:
                record = self._unread.popleft()
                if record.get("event") == event:
                    return record
            exited = self.process.poll() is not None  # before reading: its last lines count
            self._unread.extend(self._new_records())
            if self._unread:
                continue
            if exited or time.monotonic() > deadline:
                state = f"exited {self.process.returncode}" if exited else f"not in {timeout} s"
                raise AssertionError(f"no {event!r} logged ({state}): {self.log_tail()}")
            time.sleep(POLL_S)

    def _new_records(self) -> list[dict[str, Any]]:
        """The records of the lines written since the last call (whole lines only)."""
        with self.log_path.open("rb") as log:
            log.seek(self._read_bytes)
            written = log.read()
        whole = written[:written.rfind(b"\n") + 1]
        self._read_bytes += len(whole)
        return _json_lines(whole.decode(errors="replace"))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def log_events(self) -> list[dict[str, Any]]:
        """Every record it logged so far (whatever :meth:`wait_for_event` read)."""
        return _json_lines(self.log_text())

    def errors(self, limit: int = 3) -> list[str]:
        """The first error lines it logged, each with its exception's last line."""
        found = []
        for record in self.log_events():
            if record.get("level") in ("error", "critical"):
                exception = str(record.get("exception", "")).strip().splitlines()[-1:]
                found.append(" ".join([str(record.get("event")), str(record.get("path", "")),
                                       *exception]))
        return found[:limit]


def _json_lines(text: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line being written, or not ours
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _environment(data_dir: Path, config: Path, extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any LAWHUB_* of the developer's shell, plus
    the test gateway's."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LAWHUB_")}
    return {**inherited, **test_environment(data_dir, LAWHUB_CONFIG=str(config), **extra)}


def start_gateway(data_dir: Path, config: Path = SHIPPED_CONFIG, *, port: int = 0,
                  **env: str) -> Gateway:
    """Start ``run.py`` on ``data_dir`` with ``config`` (logging to a file under the data
    dir: a pipe nobody reads would fill and stall the server) and wait for ``listening``;
    :meth:`Gateway.wait_for_event` reads on from there."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{len(list(data_dir.glob('server-*.log')))}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "run.py", "--config", str(config), "--port", str(port)],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            env=_environment(data_dir, config, env),
        )
    gateway = Gateway(process, "", log_path)
    try:
        gateway.url = gateway.wait_for_event("listening", START_DEADLINE_S)["url"]
    except AssertionError:
        gateway.kill()
        raise AssertionError(f"the gateway did not start (exit {process.returncode}): "
                             f"{gateway.log_tail()}") from None
    return gateway


@dataclass
class Gateways:
    """Every gateway a test started; whatever still runs at the end is killed."""

    started: list[Gateway] = field(default_factory=list)

    def start(self, data_dir: Path, config: Path = SHIPPED_CONFIG, *, port: int = 0,
              **env: str) -> Gateway:
        gateway = start_gateway(data_dir, config, port=port, **env)
        self.started.append(gateway)
        return gateway

    def close(self) -> None:
        for gateway in self.started:
            if gateway.process.poll() is None:
                gateway.kill()


@pytest.fixture
def gateways() -> Iterator[Gateways]:
    running = Gateways()
    try:
        yield running
    finally:
        running.close()


def config_with(base: Path | str, extra: str, path: Path) -> Path:
    """``base`` (a file, or TOML text) plus ``extra``, written to ``path``."""
    text = base.read_text() if isinstance(base, Path) else base
    path.write_text(text + "\n" + extra)
    return path


# -- Meta's stand-in ----------------------------------------------------------------------


@contextmanager
def meta_in_thread(throughput_mps: int | None) -> Iterator[GraphStandIn]:
    """Meta's stand-in, served from a thread of the test process (at its ``base_url``),
    holding NUMBER_A to ``throughput_mps`` (None: no limit)."""
    stand_in = GraphStandIn(GRAPH_TOKEN)
    stand_in.set_throughput(NUMBER_A, throughput_mps)
    with serve_in_thread(stand_in) as base_url:
        stand_in.base_url = base_url  # type: ignore[attr-defined]
        yield stand_in


def busiest_second(times: list[float]) -> int:
    """The most arrivals within any window [t, t + 1 s)."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


# -- the API and the webhook ------------------------------------------------------------


async def customers_wrote(
    session: aiohttp.ClientSession, url: str, customers: Iterable[str], *,
    number: str = NUMBER_A, tenant: str = "firm-a", timeout: float = 20.0,
) -> None:
    """Each customer writes in now (which opens the 24-hour window); returns once every
    message is stored."""
    customers = list(customers)
    for customer in customers:
        change = traffic.text_message(number, customer, "halo", timestamp=int(time.time()))
        signed = traffic.signed(traffic.envelope(change), APP_SECRET.encode())
        async with session.post(f"{url}/webhook", data=signed.body,
                                headers=signed.headers) as response:
            assert response.status == 200, await response.text()
    waiting = set(customers)
    deadline = time.monotonic() + timeout
    while waiting:
        for customer in sorted(waiting):
            async with session.get(f"{url}/api/v1/conversations/{customer}/messages",
                                   headers=auth(tenant)) as response:
                if response.status == 200 and (await response.json())["messages"]:
                    waiting.discard(customer)
        if waiting and time.monotonic() > deadline:
            raise AssertionError(f"never stored: the messages of {sorted(waiting)}")
        if waiting:
            await asyncio.sleep(POLL_S)


async def send_text(
    session: aiohttp.ClientSession, url: str, to: str, body: str, *,
    number: str = NUMBER_A, tenant: str = "firm-a",
) -> str:
    """POST /api/v1/messages; the id it answered 202 with."""
    async with session.post(f"{url}/api/v1/messages", headers=auth(tenant), json={
        "phone_number_id": number, "to": to, "type": "text", "text": {"body": body},
    }) as response:
        assert response.status == 202, f"{response.status}: {await response.text()}"
        return str((await response.json())["id"])


async def describe(
    session: aiohttp.ClientSession, url: str, message_id: str, tenant: str = "firm-a",
) -> dict[str, Any]:
    async with session.get(f"{url}/api/v1/messages/{message_id}",
                           headers=auth(tenant)) as response:
        assert response.status == 200, f"{response.status}: {await response.text()}"
        found: dict[str, Any] = await response.json()
        return found


async def all_sent(
    session: aiohttp.ClientSession, url: str, ids: Iterable[str], *,
    tenant: str = "firm-a", timeout: float = 30.0, concurrency: int = 16,
    statuses: bool = False,
) -> None:
    """Poll ``GET /api/v1/messages/{id}`` until every message is sent: its ``state`` is
    ``sent`` (the gateway holds Meta's wamid), and with ``statuses`` also its ``status``
    (from Meta's status webhooks) is sent or beyond."""
    waiting = set(ids)
    gate = asyncio.Semaphore(concurrency)
    last: dict[str, dict[str, Any]] = {}

    async def check(message_id: str) -> None:
        async with gate:
            got = await describe(session, url, message_id, tenant)
        last[message_id] = got
        if got["state"] == "sent" and (not statuses or got["status"] in SENT_OR_LATER):
            waiting.discard(message_id)

    deadline = time.monotonic() + timeout
    while waiting:
        await asyncio.gather(*(check(i) for i in sorted(waiting)))
        if not waiting:
            return
        if time.monotonic() > deadline:
            stuck = [{k: last[i][k] for k in ("id", "to", "status", "state", "attempts")}
                     for i in sorted(waiting)[:5]]
            raise AssertionError(f"{len(waiting)} never sent, e.g. {stuck}")
        await asyncio.sleep(POLL_S * 2)


