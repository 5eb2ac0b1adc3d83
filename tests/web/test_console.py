"""The operator console in a real browser: Debian's /usr/bin/chromium driven by
Playwright (never a downloaded browser), against a gateway whose Graph API is
the project's Meta stand-in.

The page is signed in through its form, then watched as the gateway changes
under it: nothing is reloaded, everything it shows arrives over /admin/ws or
from the REST calls the page makes itself. A screenshot of the console with
an open breaker and a dead letter is kept in ``test-artifacts/console.png``.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from lawhub_actors.settings import Secrets
from lawhub_actors.simulator import traffic
from lawhub_actors.simulator.graph import GraphStandIn, serve_in_thread
from lawhub_actors.web.app import build_app
from lawhub_actors.web.console import PAGE_HEADERS
from tests.conftest import ADMIN_TOKEN, APP_SECRET, REPO, test_environment
from tests.e2e.gateway import post
from tests.e2e.outbound_helpers import customers_wrote, describe

pytestmark = pytest.mark.xdist_group("browser")  # one worker runs every browser test

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "test-artifacts"
NUMBER_A = "106540352242922"
GRAPH_TOKEN = "graph-access-token-for-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
expect.set_options(timeout=10_000)  # ms; live changes come within a tree sample (0.5 s)
# Short retries; a breaker that stays open long enough to be looked at.
OUTBOUND = ("\n[retry]\nmax_attempts = 3\nbase_s = 0.05\nmax_s = 0.2\nsettle_grace_s = 0.3\n"
            "\n[breaker]\nfailure_threshold = 2\nwindow = 20\ncooldown_s = 30\n"
            "cooldown_max_s = 60\nhalf_open_probes = 1\n")


@pytest.fixture
def meta() -> Iterator[GraphStandIn]:
    """Meta's stand-in on its own loop and thread, as Meta is a server of its own."""
    stand_in = GraphStandIn(GRAPH_TOKEN)
    with serve_in_thread(stand_in) as base_url:
        stand_in.base_url = base_url  # type: ignore[attr-defined]
        yield stand_in


@pytest.fixture
async def gateway(aiohttp_client, make_settings, tmp_path: Path, meta: GraphStandIn) -> Any:
    secrets = Secrets.from_env(test_environment(
        tmp_path, LAWHUB_ACCESS_TOKEN=GRAPH_TOKEN,
        LAWHUB_GRAPH_BASE_URL=meta.base_url,  # type: ignore[attr-defined]
    ))
    config = (REPO / "config" / "lawhub.toml").read_text() + OUTBOUND
    client = await aiohttp_client(build_app(make_settings(config), secrets,
                                            on_give_up=lambda r: None))
    meta.deliver_statuses_to(str(client.make_url("/webhook")), APP_SECRET.encode(),
                             delay_s=0.01)
    return client


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
                    "(scripts/ensure-system-deps); the console tests never download a browser")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Console:
    """The console page, with every error the browser reported."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def errors(self) -> list[str]:
        return self.console_errors + self.page_errors

    def breaker(self, number: str) -> Any:
        return self.page.locator(f'#breakers tr[data-path="outbound/breakers/{number}"]')

    def dlq_row(self, message_id: str) -> Any:
        return self.page.locator(f'#dlq tr[data-id="{message_id}"]')


@pytest.fixture
async def console(browser: Browser, gateway: Any) -> AsyncIterator[Console]:
    """/console loaded (no token in the URL), signed in through its form, the
    live tree shown; closed before the gateway stops."""
    page = await browser.new_page(viewport={"width": 1440, "height": 1000})
    opened = Console(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            opened.console_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: opened.page_errors.append(str(error)))
    await page.goto(str(gateway.make_url("/console")))
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#panels")).to_be_hidden()
    await page.fill("#token", ADMIN_TOKEN)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator('#tree li[data-path="inbound/dispatcher"]')).to_be_visible()
    await expect(page.locator("#login")).to_be_hidden()
    await expect(page.locator("#link")).to_have_text("live")
    yield opened
    await page.close()


async def send(gateway: Any, to: str, body: str) -> tuple[int, dict[str, Any]]:
    response = await gateway.post("/api/v1/messages", headers={
        "Authorization": "Bearer demo-token-firm-a"}, json={
        "phone_number_id": NUMBER_A, "to": to, "type": "text", "text": {"body": body}})
    return response.status, await response.json()


def base_url(gateway: Any) -> str:
    return str(gateway.make_url("")).rstrip("/")


@pytest.mark.parametrize("path", [
    "/console", "/console/static/index.html", "/console/static/console.js",
    "/console/static/console.css", "/console/static/missing.js",
])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_every_console_file_carries_the_pages_security_headers(
    aiohttp_client, settings, secrets, path, method
) -> None:
    client = await aiohttp_client(build_app(settings, secrets, on_give_up=lambda r: None))
    response = await client.request(method, path)
    expected = 404 if path.endswith("missing.js") else 200
    assert response.status == expected
    assert {name: response.headers.get(name) for name in PAGE_HEADERS} == PAGE_HEADERS
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_the_console_loads_without_errors_and_shows_the_live_tree(console, gateway) -> None:
    page = console.page
    assert "token" not in page.url
    assert await page.evaluate("sessionStorage.getItem('lawhub.adminToken')") == ADMIN_TOKEN
    dispatcher = page.locator('#tree li[data-path="inbound/dispatcher"]')
    await expect(dispatcher).to_have_attribute("data-state", "running")
    await expect(page.locator("#status")).to_have_attribute("data-level", "ok")
    for path in ("inbound/sessions/firm-a", "outbound/workers", f"outbound/breakers/{NUMBER_A}"):
        await expect(page.locator(f'#tree li[data-path="{path}"]')).to_have_count(1)
    await expect(console.breaker(NUMBER_A).locator(".circuit")).to_have_text("closed")
    limiter = page.locator(f'#limiters tr[data-path="outbound/limiters/{NUMBER_A}"]')
    await expect(limiter).to_have_count(1)
    await expect(limiter.locator(".tier")).to_have_text("0 / 2000 (2K)")
    await expect(page.locator("#count-dlq")).to_have_text("0")
    assert console.errors() == []  # loaded, signed in, live: not one error

    # A rehearsed crash is refused by this config: the page says why.
    await dispatcher.locator(":scope > .node-row button.crash").click()
    await expect(page.locator("#tree-notice")).to_contain_text("allow_fault_injection")

    # Signed in for the tab's life: a reload goes straight to the tree.
    await page.reload()
    await expect(page.locator('#tree li[data-path="inbound/dispatcher"]')).to_be_visible()
    await expect(page.locator("#login")).to_be_hidden()
    await expect(page.locator("#link")).to_have_text("live")

    # A gateway going away closes the websocket (1001): the page comes back by itself.
    async with page.expect_websocket() as reconnected:
        await gateway.app.shutdown()
    assert "/admin/ws" in (await reconnected.value).url
    await expect(page.locator("#link")).to_have_text("live")
    assert console.page_errors == []
    assert all("403" in error for error in console.console_errors), console.console_errors


async def test_the_cluster_panel_shows_the_node_and_each_partitions_owner(console) -> None:
    page = console.page
    node = page.locator('#cluster-nodes tr[data-node="embedded"]')
    await expect(node.locator(".partitions")).to_have_text("64")
    await expect(page.locator("#cluster-partitions tbody tr")).to_have_count(64)
    first = page.locator('#cluster-partitions tr[data-partition="0"]')
    await expect(first.locator(".owner")).to_have_text("embedded")
    await expect(first.locator(".lag")).to_have_text("0")
    await expect(page.locator("#cluster-self")).to_have_text("(answered by embedded)")
    assert console.errors() == []


async def test_the_breaker_panel_shows_the_breaker_opening_without_a_reload(
    console, gateway, meta
) -> None:
    page = console.page
    await customers_wrote(gateway.session, base_url(gateway), ["6281234570001"])
    meta.fail_sends_next(5, status=401, code=190)  # the token is broken
    circuit = console.breaker(NUMBER_A).locator(".circuit")
    for attempt in range(5):  # send until the gateway refuses: the breaker is open
        status, _ = await send(gateway, "6281234570001", f"percobaan {attempt}")
        if status == 503:
            break
        await page.wait_for_timeout(200)
    await expect(circuit).to_have_text("open")
    await expect(circuit).to_have_attribute("data-circuit", "open")
    await expect(console.breaker(NUMBER_A).locator(".next-probe")).to_have_text(
        re.compile(r"\d\d:\d\d:\d\d"))  # a wall-clock time, [breaker] cooldown_s away
    await expect(page.locator("#status")).to_have_attribute("data-level", "bad")
    await expect(page.locator('#feed li[data-type="circuit.changed"]')).to_have_count(1)
    await expect(page.locator("#dlq tbody tr")).not_to_have_count(0)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)
    assert console.errors() == []


async def test_an_operator_replays_a_dead_letter_with_its_button(console, gateway, meta) -> None:
    await customers_wrote(gateway.session, base_url(gateway), ["6281234570002"])
    meta.fail_sends_next(1, status=400, code=131026)  # terminal: straight to the DLQ
    status, accepted = await send(gateway, "6281234570002", "coba lagi nanti")
    assert status == 202
    message_id = accepted["id"]
    row = console.dlq_row(message_id)
    await expect(row).to_be_visible()
    await expect(row).to_contain_text("131026")
    await row.locator("button.replay").click()
    await expect(row).to_have_count(0)
    await expect(console.page.locator("#dlq-notice")).to_contain_text("back to pending")
    dlq = await (await gateway.get("/admin/dlq", headers=ADMIN)).json()
    assert message_id not in [entry["id"] for entry in dlq["entries"]]
    deadline = time.monotonic() + 10
    while (got := await describe(gateway.session, base_url(gateway), message_id))["state"] != "sent":
        assert time.monotonic() < deadline, f"the replay was never sent: {got}"
        await console.page.wait_for_timeout(50)
    assert [s.status for s in meta.sends if s.callback == message_id] == [400, 200]

    # Delete takes a second click (no modal dialog), then the entry is gone for good.
    meta.fail_sends_next(1, status=400, code=131026)
    status, accepted = await send(gateway, "6281234570002", "yang ini dihapus")
    doomed = console.dlq_row(accepted["id"])
    await expect(doomed).to_be_visible()
    await doomed.locator("button.delete").click()
    await expect(doomed.locator("button.delete")).to_have_text("Confirm delete")
    await doomed.locator("button.delete").click()
    await expect(doomed).to_have_count(0)
    dlq = await (await gateway.get("/admin/dlq", headers=ADMIN)).json()
    assert dlq["entries"] == []
    assert console.errors() == []


async def test_an_invalid_config_edit_is_refused_with_its_error_inline(console, gateway) -> None:
    page = console.page
    editor = page.locator("#config-text")
    shards = re.compile(r"^session_shards\s*=\s*\d+", re.MULTILINE)
    await expect(editor).to_have_value(shards)  # the running config, every key spelled out
    edited = shards.sub("session_shards = 0", await editor.input_value())
    await editor.fill(edited)
    await page.click("#config-save")
    error = page.locator(".config-error", has_text="supervision.pools.session_shards")
    await expect(error).to_have_count(1)
    await expect(page.locator("#config-status")).to_contain_text("unchanged")
    assert console.page_errors == []
    running = await (await gateway.get("/admin/config", headers=ADMIN)).json()
    shards_before = running["supervision"]["pools"]["session_shards"]
    assert shards_before > 2  # untouched

    # A valid edit applies live: the change is listed, and the tree loses the shards.
    await editor.fill(shards.sub("session_shards = 2", edited))
    await page.click("#config-save")
    await expect(page.locator(".config-error")).to_have_count(0)
    change = page.locator(".config-change", has_text="supervision.pools.session_shards")
    await expect(change).to_contain_text(f"{shards_before} → 2")
    firm_a = page.locator('#tree li[data-path="inbound/sessions/firm-a"] > ul > li')
    await expect(firm_a).to_have_count(2)
    assert console.page_errors == []


async def test_an_operator_allows_rehearsals_then_crashes_an_actor_and_sees_it_restart(
    console, gateway
) -> None:
    page = console.page
    editor = page.locator("#config-text")
    switch = re.compile(r"^allow_fault_injection\s*=\s*false", re.MULTILINE)
    await expect(editor).to_have_value(switch)
    await editor.fill(switch.sub("allow_fault_injection = true", await editor.input_value()))
    await page.click("#config-save")
    await expect(page.locator(".config-change", has_text="admin.allow_fault_injection")
                 ).to_have_count(1)
    dispatcher = page.locator('#tree li[data-path="inbound/dispatcher"]')
    await dispatcher.locator(":scope > .node-row button.crash").click()
    await expect(page.locator("#tree-notice")).to_contain_text("will crash on its next message")
    change = traffic.text_message(NUMBER_A, "6281234570003", "halo")  # its next message
    assert await post(gateway, traffic.envelope(change)) == 200
    await expect(dispatcher).to_have_class(re.compile(r"\brestarted\b"))
    await expect(dispatcher.locator(":scope > .node-row .figures")).to_contain_text("↻ 1 ")
    await expect(dispatcher).to_have_attribute("data-state", "running")
    assert console.errors() == []
