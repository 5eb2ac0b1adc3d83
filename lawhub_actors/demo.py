"""``python run.py demo``: the gateway with a simulated Meta and clients, all local.

What runs, in one process and one event loop:

- Meta's Graph API stand-in (:mod:`lawhub_actors.simulator.graph`) on
  127.0.0.1 and a port the OS picks, knowing the config's numbers and
  templates; it sends status webhooks (sent, delivered, read), signed, back
  to the gateway after each send it takes;
- the gateway itself, through :func:`lawhub_actors.web.app.run` (the path
  ``serve`` takes), always on 127.0.0.1 (the banner prints secrets);
- a :class:`~lawhub_actors.simulator.driver.TrafficDriver` started once the
  gateway listens: clients write in, lawyers answer through the REST API;
- a private clamd (:mod:`lawhub_actors.simulator.clamav`) when clamd is
  installed; otherwise the built-in checks only, as the banner says.

Every secret (app secret, verify token, Graph token, master key, admin
token, one API token per tenant) is made up at start and lives in memory;
the data goes to a fresh temp dir, deleted on exit, so a real install under
``var/`` is never touched. SIGINT/SIGTERM stop everything (exit 0);
``duration`` sends the process a SIGTERM of its own after that long, so the
timed stop takes exactly the path of a Ctrl-C.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import random
import secrets as random_source
import signal
import sys
import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import structlog
from pydantic import SecretBytes, SecretStr

from lawhub_actors import logs
from lawhub_actors.settings import MASTER_KEY_BYTES, Secrets, Settings
from lawhub_actors.simulator import clamav, graph
from lawhub_actors.simulator.driver import TrafficDriver
from lawhub_actors.simulator.scenario import Scenario, firms_of
from lawhub_actors.web import app

__all__ = ["DEFAULT_RATE", "DemoOptions", "demo_settings", "run"]

log = structlog.get_logger("lawhub.demo")

HOST = "127.0.0.1"
DEFAULT_RATE = 2.0  # messages a second
STATUS_DELAY_S = 0.4  # between a send and its "sent", "sent" and "delivered", …
EXIT_INTERRUPTED = 130  # Ctrl-C before the gateway was up (shell convention)
EXIT_CANNOT_LISTEN = 2  # as for a bad environment: the port is taken or not ours


@dataclass(frozen=True, slots=True)
class DemoOptions:
    port: int | None = None  # None: [server] port
    duration: float | None = None  # seconds; None: until SIGINT/SIGTERM
    rate: float = DEFAULT_RATE


def run(settings: Settings, options: DemoOptions) -> int:
    """Run the demo until a signal (or ``options.duration``); the gateway's exit code."""
    secrets = _made_up_secrets()
    tokens = {tenant.id: random_source.token_urlsafe(24) for tenant in settings.tenants}
    logs.configure(level=settings.logging.level, secrets=secrets)
    for token in tokens.values():
        logs.register_secret(token)
    try:
        with ExitStack() as stack:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="lawhub-demo-"))
            scanning, clamd_socket = _scanner(stack)
            settings = demo_settings(settings, tokens, clamd_socket)
            secrets = secrets.model_copy(update={"data_dir": Path(data_dir)})
            return asyncio.run(_serve(settings, secrets, tokens, options, scanning))
    except KeyboardInterrupt:  # before the gateway took over SIGINT
        return EXIT_INTERRUPTED


def _made_up_secrets() -> Secrets:
    return Secrets(
        app_secret=SecretStr(random_source.token_urlsafe(32)),
        verify_token=SecretStr(random_source.token_urlsafe(16)),
        access_token=SecretStr(random_source.token_urlsafe(32)),
        master_key=SecretBytes(random_source.token_bytes(MASTER_KEY_BYTES)),
        admin_token=SecretStr(random_source.token_urlsafe(24)),
    )


def _scanner(stack: ExitStack) -> tuple[str, str | None]:
    """A private clamd when installed: (what the banner says, its socket or None)."""
    if clamav.clamd_binary() is None:
        return "off: clamd is not installed; built-in checks only (they know EICAR)", None
    try:
        clamd = stack.enter_context(clamav.run_clamd())
    except clamav.ClamdStartError as error:
        log.warning("demo_clamd_failed", reason=str(error))
        return "off: clamd did not start (see the log); built-in checks only", None
    return "clamd (a private one; its test signatures know EICAR)", clamd.address


def demo_settings(
    settings: Settings, tokens: Mapping[str, str], clamd_socket: str | None
) -> Settings:
    """``settings`` with each tenant's token hash replaced, listening on 127.0.0.1 only,
    and scanning with ``clamd_socket`` when given."""
    data = settings.model_dump()
    for tenant in data["tenants"]:
        tenant["api_token_sha256"] = hashlib.sha256(tokens[tenant["id"]].encode()).hexdigest()
    data["server"]["host"] = HOST
    if clamd_socket is not None:
        data["limits"]["clamd_socket"] = clamd_socket
    return Settings.model_validate(data)


def _stand_in(settings: Settings, access_token: str) -> graph.GraphStandIn:
    """Meta as the config describes it: its numbers, their throughput, its templates."""
    meta = graph.GraphStandIn(access_token)
    meta.set_pair_rate(6.0 / settings.limits.pair_rate_per_6s, settings.limits.pair_burst)
    for tenant in settings.tenants:
        for number in tenant.phone_numbers:
            meta.add_phone_number(number.id, "".join(c for c in number.display if c.isdigit()))
            meta.set_throughput(number.id, number.throughput_mps)
    for template in settings.templates:
        meta.add_template(template.name, template.language, params=template.params,
                          category=template.category, status=template.status)
    return meta


async def _serve(
    settings: Settings,
    secrets: Secrets,
    tokens: Mapping[str, str],
    options: DemoOptions,
    scanning: str,
) -> int:
    assert secrets.access_token is not None and secrets.app_secret is not None
    app_secret = secrets.app_secret.get_secret_value().encode()
    meta = _stand_in(settings, secrets.access_token.get_secret_value())
    rng = random.Random()  # noqa: S311 - made-up traffic, not cryptography
    loop = asyncio.get_running_loop()
    traffic: list[asyncio.Task[None]] = []
    async with graph.serve(meta, HOST) as graph_url:
        secrets = secrets.model_copy(update={"graph_base_url": graph_url})

        def started(port: int) -> None:
            url = f"http://{HOST}:{port}"
            meta.deliver_statuses_to(f"{url}/webhook", app_secret, delay_s=STATUS_DELAY_S)
            scenario = Scenario(firms_of(settings, tokens), rng)
            driver = TrafficDriver(scenario, meta, url, app_secret, rate=options.rate, rng=rng)
            traffic.append(loop.create_task(driver.run()))
            if options.duration is not None:
                loop.call_later(options.duration, signal.raise_signal, signal.SIGTERM)
            sys.stdout.write(_banner(settings, secrets, tokens=tokens, url=url, graph_url=graph_url,
                                     scanning=scanning, options=options))
            sys.stdout.flush()

        port = settings.server.port if options.port is None else options.port
        try:
            return await app.run(settings, secrets, host=HOST, port=port, started=started)
        except OSError as error:
            if error.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
            sys.stderr.write(f"demo: cannot listen on {HOST}:{port} ({os.strerror(error.errno)});"
                             " choose another port with --port (0: any free one)\n")
            return EXIT_CANNOT_LISTEN
        finally:
            for task in traffic:
                task.cancel()
            for outcome in await asyncio.gather(*traffic, return_exceptions=True):
                if isinstance(outcome, Exception):  # the traffic ended early: say so
                    log.error("demo_traffic_failed", error=repr(outcome))


def _banner(
    settings: Settings,
    secrets: Secrets,
    *,
    tokens: Mapping[str, str],
    url: str,
    graph_url: str,
    scanning: str,
    options: DemoOptions,
) -> str:
    """Plain text for a person (stdout); the JSON logs go to stderr."""
    assert secrets.admin_token is not None
    admin_token = secrets.admin_token.get_secret_value()
    until = f"for {options.duration:g} s" if options.duration is not None else "until Ctrl-C"
    lines = [
        f"LawHub Actors demo: {len(settings.tenants)} law firms, their clients and a "
        "simulated Meta, all on this machine.",
        "",
        f"  console        {url}/console",
        f"  admin token    {admin_token}",
    ]
    lines += [
        f"  tenant token   {tenant.id}  {tokens[tenant.id]}  {tenant.name or ''}".rstrip()
        for tenant in settings.tenants
    ]
    lines += [
        f"  Meta stand-in  {graph_url} (status webhooks come back signed)",
        f"  malware scan   {scanning}",
        f"  data           {secrets.data_dir} (deleted on exit)",
        "",
        f"About {options.rate:g} messages a second {until}: clients write in Indonesian "
        "and English and",
        "send photos and PDFs (one PDF carries the EICAR test string), lawyers answer "
        "through the API,",
        "and now and then Meta fails a send. Open the console and paste the admin token, "
        "or try:",
        f'  curl -H "Authorization: Bearer {admin_token}" {url}/admin/tree',
        "",
    ]
    return "\n".join(lines)
