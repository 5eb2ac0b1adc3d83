"""``python run.py demo``: a real process with its simulated Meta, clamd and clients,
watched through the gateway's own HTTP API; and the parts it is made of.

Every wait polls with a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lawhub_actors import cli
from lawhub_actors.core.assist import RuleClassifier, Urgency
from lawhub_actors.core.masking import mask
from lawhub_actors.core.media import EicarScanner, MediaKind, check_type
from lawhub_actors.demo import demo_settings
from lawhub_actors.settings import load
from lawhub_actors.simulator import driver, samples
from lawhub_actors.simulator.driver import TrafficDriver
from lawhub_actors.simulator.graph import GraphStandIn
from lawhub_actors.simulator.scenario import OPENINGS, URGENT, Inbound, Scenario, firms_of
from lawhub_actors.web.auth import TenantTokens
from tests.conftest import REPO

# The demo starts clamd, the gateway and its own traffic: one at a time on one worker.
pytestmark = pytest.mark.xdist_group("demo")

DEMO_CONFIG = REPO / "config" / "demo.toml"
BANNER_DEADLINE_S = 30.0
TRAFFIC_DEADLINE_S = 45.0
STOP_DEADLINE_S = 20.0
POLL_S = 0.2


# -- the real process ------------------------------------------------------------------


@dataclass
class Demo:
    process: subprocess.Popen[str]
    url: str
    admin_token: str
    tenant_tokens: dict[str, str]
    data_dir: Path
    log_path: Path
    banner: str

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def _banner_lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _read_banner(process: subprocess.Popen[str], log_path: Path) -> Demo:
    lines = _banner_lines(process)
    seen: list[str] = []
    deadline = time.monotonic() + BANNER_DEADLINE_S
    while not any(line.startswith("  curl ") for line in seen):
        if time.monotonic() > deadline or process.poll() is not None:
            raise AssertionError(f"no banner: {seen}\n{log_path.read_text()[-3000:]}")
        try:
            seen.append(lines.get(timeout=POLL_S))
        except queue.Empty:
            continue
    text = "".join(seen)

    def field(label: str) -> str:
        found = re.search(rf"^  {label}\s+(\S+)", text, re.MULTILINE)
        assert found, f"no {label!r} in the banner:\n{text}"
        return found.group(1)

    console = field("console")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/console", console), console
    tokens = dict(re.findall(r"^  tenant token\s+(\S+)\s+(\S+)", text, re.MULTILINE))
    return Demo(process, console.removesuffix("/console"), field("admin token"), tokens,
                Path(field("data")), log_path, text)


# Runs the command line with clamd taken away, as on a machine without it.
WITHOUT_CLAMD = (
    "import sys; from lawhub_actors.simulator import clamav; "
    "clamav.clamd_binary = lambda: None; from lawhub_actors.cli import main; "
    "sys.exit(main())"
)


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator[Callable[..., Demo]]:
    """Starts ``run.py demo --port 0`` (stderr, the JSON logs, to a file) and reads its
    banner; whatever a test leaves running is killed."""
    started: list[subprocess.Popen[str]] = []

    def start(*, clamd: bool = True) -> Demo:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAWHUB_")}
        log_path = tmp_path / f"demo-{len(started)}.log"
        program = ["run.py"] if clamd else ["-c", WITHOUT_CLAMD]
        with log_path.open("w") as log_file:
            process = subprocess.Popen(
                [sys.executable, *program, "demo", "--port", "0", "--rate", "6",
                 "--duration", "300"],
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=log_file, text=True,
            )
        started.append(process)
        return _read_banner(process, log_path)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_DEADLINE_S)


async def _until(check: Callable[[], Any], what: str, demo: Demo) -> Any:
    """``check()`` (awaited when it is a coroutine) until it gives something truthy,
    within the deadline."""
    deadline = time.monotonic() + TRAFFIC_DEADLINE_S
    while True:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{demo.log_tail()}")
        await asyncio.sleep(POLL_S)


@asynccontextmanager
async def _feeds(
    session: aiohttp.ClientSession, demo: Demo
) -> AsyncIterator[dict[str, list[dict[str, Any]]]]:
    """Every tenant's feed from its first event on, collected as it comes, by tenant."""
    frames: dict[str, list[dict[str, Any]]] = {tenant: [] for tenant in demo.tenant_tokens}

    async def follow(tenant: str, token: str) -> None:
        async with session.ws_connect(f"{demo.url}/ws?since=0",
                                      headers={"Authorization": f"Bearer {token}"}) as ws:
            async for message in ws:
                frames[tenant].append(json.loads(message.data))

    tasks = [asyncio.create_task(follow(*item)) for item in demo.tenant_tokens.items()]
    try:
        yield frames
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _admin_get(session: aiohttp.ClientSession, demo: Demo, path: str) -> Any:
    headers = {"Authorization": f"Bearer {demo.admin_token}"}
    async with session.get(f"{demo.url}{path}", headers=headers) as response:
        assert response.status == 200, f"{path}: {response.status}"
        return await response.json()


async def _quarantined_eicar(session: aiohttp.ClientSession, demo: Demo) -> dict[str, Any]:
    async def infected() -> list[dict[str, Any]]:
        media = (await _admin_get(session, demo, "/admin/quarantine"))["media"]
        return [m for m in media if m["verdict"] == "infected"]

    [eicar] = await _until(infected, "the EICAR file in quarantine", demo)
    return eicar


def _stops_cleanly_on_sigterm(demo: Demo) -> None:
    demo.process.send_signal(signal.SIGTERM)
    assert demo.process.wait(timeout=STOP_DEADLINE_S) == 0, demo.log_tail()
    assert not demo.data_dir.exists(), "the demo's temp data dir outlived it"
    records = [json.loads(line) for line in demo.log_path.read_text().splitlines()]
    assert records[-1]["event"] == "stopped_cleanly"
    assert not [r for r in records if r["level"] in ("error", "critical")], demo.log_tail()


async def test_the_demo_shows_every_part_working_and_stops_cleanly_on_sigterm(
    start_demo: Callable[..., Demo],
) -> None:
    demo = start_demo()
    assert set(demo.tenant_tokens) == {"firm-a", "firm-b", "firm-c"}
    async with aiohttp.ClientSession() as session, _feeds(session, demo) as feeds:
        tree = await _admin_get(session, demo, "/admin/tree")
        assert tree["services"]["malware_scanning"] == "clamd"  # `make test` installs clamd

        def tenants_written_to() -> list[str]:
            wrote = [tenant for tenant, frames in feeds.items()
                     if any(f["type"] == "message.received" for f in frames)]
            return wrote if len(wrote) >= 2 else []

        def lawyers_answers_delivered_or_read() -> list[dict[str, Any]]:
            frames = [f for tenant_frames in feeds.values() for f in tenant_frames]
            answers = {f["data"]["id"] for f in frames
                       if f["type"] == "outbound.accepted" and not f["data"]["automatic"]}
            return [f for f in frames if f["type"] == "message.status"
                    and f["data"]["id"] in answers
                    and f["data"]["state"] in ("delivered", "read")]

        await _until(tenants_written_to, "messages to two tenants", demo)
        await _until(lawyers_answers_delivered_or_read, "a lawyer's answer delivered", demo)
        eicar = await _quarantined_eicar(session, demo)
        assert (eicar["reason"], eicar["scanner"]) == ("Eicar-Test-Signature", "clamd")

    _stops_cleanly_on_sigterm(demo)


async def test_without_clamd_the_demo_says_so_and_the_built_in_checks_catch_the_eicar(
    start_demo: Callable[..., Demo],
) -> None:
    demo = start_demo(clamd=False)
    assert "malware scan   off: clamd is not installed" in demo.banner
    async with aiohttp.ClientSession() as session:
        tree = await _admin_get(session, demo, "/admin/tree")
        assert tree["services"]["malware_scanning"] == "off"
        eicar = await _quarantined_eicar(session, demo)
        assert (eicar["reason"], eicar["scanner"]) == ("Eicar-Test-Signature", "builtin")

    _stops_cleanly_on_sigterm(demo)


def test_the_demo_stops_by_itself_after_its_duration(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAWHUB_")}
    result = subprocess.run(
        [sys.executable, "run.py", "demo", "--port", "0", "--duration", "2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "/console" in result.stdout
    assert '"event": "stopped_cleanly"' in result.stderr


def test_a_port_in_use_is_reported_plainly_and_exits_2() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAWHUB_")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "run.py", "demo", "--port", str(port), "--duration", "30"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
        )

    assert result.returncode == 2
    assert f"demo: cannot listen on 127.0.0.1:{port} (Address already in use)" in result.stderr
    assert "Traceback" not in result.stderr


# -- the command line --------------------------------------------------------------------


@pytest.mark.parametrize("option", [["--rate", "0"], ["--duration", "-1"], ["--port", "70000"]])
def test_demo_options_out_of_range_are_usage_errors(
    option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["demo", *option])

    assert caught.value.code == 2
    assert option[0] in capsys.readouterr().err


def test_demo_with_an_invalid_config_reports_it_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "demo.toml"
    path.write_text("[server]\nport = 70000\n")

    assert cli.main(["demo", "--config", str(path)]) == 2

    assert f"{path}: server.port: " in capsys.readouterr().err


# -- its parts ------------------------------------------------------------------------------


def test_the_demo_config_gets_fresh_tokens_and_listens_on_localhost_only() -> None:
    settings = load(DEMO_CONFIG)
    tokens = {tenant.id: f"fresh-{tenant.id}" for tenant in settings.tenants}

    changed = demo_settings(settings, tokens, "/tmp/clamd.sock")

    hashes = TenantTokens((t.id, t.api_token_sha256) for t in changed.tenants)
    assert {tenant: hashes.tenant_for(token) for tenant, token in tokens.items()} == {
        tenant: tenant for tenant in tokens}
    assert hashes.tenant_for("demo-token-firm-a") is None
    assert changed.server.host == "127.0.0.1"
    assert changed.limits.clamd_socket == "/tmp/clamd.sock"
    assert changed.templates == settings.templates


def test_urgent_openings_are_flagged_critical_and_the_others_are_not() -> None:
    classifier = RuleClassifier()

    def urgency(text: str) -> Urgency:
        return classifier.classify(mask(text)).urgency

    for texts in URGENT.values():
        assert {urgency(text) for text in texts} == {Urgency.CRITICAL}, texts
    for texts in OPENINGS.values():
        assert Urgency.CRITICAL not in {urgency(text) for text in texts}, texts


def test_the_scenario_writes_to_every_firm_first_and_sends_exactly_one_eicar() -> None:
    settings = load(DEMO_CONFIG)
    firms = firms_of(settings, {tenant.id: "token" for tenant in settings.tenants})
    scenario = Scenario(firms, random.Random(7), customers_per_firm=3)

    inbound = [scenario.next_inbound() for _ in range(300)]

    assert [m.customer.firm.tenant for m in inbound[:3]] == ["firm-a", "firm-b", "firm-c"]
    assert [i for i, m in enumerate(inbound) if _carries_eicar(m.data)] == [4]
    assert {m.kind for m in inbound} == {"text", "image", "document"}
    assert {m.customer.language for m in inbound} == {"id", "en"}
    customers = {m.customer.wa_id: m.customer for m in inbound}
    assert len(customers) <= 3 * 3
    for customer in customers.values():
        assert customer.number in customer.firm.numbers
        answer = scenario.reply(customer)
        assert (answer["phone_number_id"], answer["to"]) == (customer.number, customer.wa_id)
        if answer["type"] == "template":
            used = answer["template"]
            [template] = [t for t in customer.firm.templates
                          if (t.name, t.language) == (used["name"], used["language"])]
            assert len(used["params"]) == template.params
    firm_a = next(f for f in firms if f.tenant == "firm-a")
    assert "case_update" not in {t.name for t in firm_a.templates}  # pending at Meta


def _carries_eicar(data: bytes) -> bool:
    scanner = EicarScanner()
    scanner.feed(data)
    return scanner.found


def test_the_sample_files_pass_the_gateways_type_checks() -> None:
    photo = samples.document_photo(random.Random(1))
    document = samples.pdf(["SURAT KUASA (KHUSUS)"])

    assert photo != samples.document_photo(random.Random(2))
    assert check_type(MediaKind.IMAGE, "image/jpeg", photo[:512]).ok
    assert check_type(MediaKind.DOCUMENT, "application/pdf", document[:512]).ok
    assert b"(SURAT KUASA \\(KHUSUS\\)) '" in document
    offset = int(re.search(rb"startxref\n(\d+)", document).group(1))
    assert document[offset:].startswith(b"xref")


# -- the traffic driver against a stand-in gateway -----------------------------------------


@dataclass
class _Gateway:
    """Counts what the driver sends; answers lawyers' messages with ``answer``."""

    answer: Callable[[], web.Response]
    webhooks: int = 0
    answers: int = 0

    def app(self) -> web.Application:
        async def webhook(request: web.Request) -> web.Response:
            self.webhooks += 1
            return web.Response(status=200)

        async def messages(request: web.Request) -> web.Response:
            self.answers += 1
            return self.answer()

        app = web.Application()
        app.router.add_post("/webhook", webhook)
        app.router.add_post("/api/v1/messages", messages)
        return app


def _driver(scenario: Scenario, url: str) -> TrafficDriver:
    return TrafficDriver(scenario, GraphStandIn("graph-token"), url, b"app-secret",
                         rate=200.0, rng=random.Random(5))


def _scenario(kind: type[Scenario] = Scenario) -> Scenario:
    settings = load(DEMO_CONFIG)
    firms = firms_of(settings, {tenant.id: "token" for tenant in settings.tenants})
    return kind(firms, random.Random(5), customers_per_firm=2)


async def _drive(traffic_driver: TrafficDriver, enough: Callable[[], bool]) -> None:
    """Runs the driver until ``enough()``; fails if its traffic ends first."""
    task = asyncio.create_task(traffic_driver.run())
    deadline = time.monotonic() + 10.0
    try:
        while not enough():
            if task.done():
                raise AssertionError(f"the traffic stopped: {task.exception()!r}")
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_non_json_error_answer_is_a_counted_failed_step_and_traffic_goes_on(
    aiohttp_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver, "ANSWER_SHARE", 1.0)
    monkeypatch.setattr(driver, "ANSWER_DELAY_S", (0.0, 0.0))
    gateway = _Gateway(lambda: web.Response(status=502, text="<html>Bad Gateway</html>",
                                            content_type="text/html"))
    server = await aiohttp_server(gateway.app())
    traffic_driver = _driver(_scenario(), str(server.make_url("/")))

    # The stand-in counts an answer before the driver has read it: wait on the driver's count.
    await _drive(traffic_driver, lambda: traffic_driver.failed_steps >= 3 and gateway.webhooks >= 3)

    assert gateway.answers >= traffic_driver.failed_steps >= 3


async def test_a_step_that_raises_is_a_counted_failure_and_traffic_goes_on(aiohttp_server) -> None:
    class Flaky(Scenario):
        calls = 0

        def next_inbound(self) -> Inbound:
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("a bug in one step")
            return super().next_inbound()

    gateway = _Gateway(lambda: web.json_response({"id": "x"}, status=202))
    server = await aiohttp_server(gateway.app())
    traffic_driver = _driver(_scenario(Flaky), str(server.make_url("/")))

    await _drive(traffic_driver, lambda: gateway.webhooks >= 5)

    assert traffic_driver.failed_steps == 1
