"""The aiohttp application and the process around it.

``serve`` runs until SIGINT or SIGTERM (exit 0 after every actor stopped)
or until the supervision tree's root gives up (exit 1, after logging why),
so that systemd or Kubernetes restart the process. ``SIGHUP`` reloads the
config file live (see :mod:`lawhub_actors.web.config_api`).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import structlog
from aiohttp import web

from lawhub_actors.adapters.memory_release import map_big_allocations
from lawhub_actors.adapters.pg_notices import Notices
from lawhub_actors.adapters.store import OnCommit
from lawhub_actors.bridge import Bridge
from lawhub_actors.private_files import make_private
from lawhub_actors.provision import provision
from lawhub_actors.runtime import FOLLOW_S, AppRuntime, GiveUp
from lawhub_actors.settings import Secrets, Settings
from lawhub_actors.web import (
    admin,
    api,
    config_api,
    console,
    dlq,
    faults,
    metrics,
    send_api,
    webhook,
)
from lawhub_actors.web.auth import TenantTokens
from lawhub_actors.web.connections import (
    OTHER_FILES,
    Connections,
    Limits,
    raise_open_files_limit,
)
from lawhub_actors.web.feed import GOING_AWAY, FeedHub
from lawhub_actors.web.ingest_supervisor import IngestProcess, IngestState, passes_connections
from lawhub_actors.web.ingest_wire import handover
from lawhub_actors.web.keys import (
    ADMIN_TOKEN,
    APP_SECRET,
    BRIDGE,
    CONNECTIONS,
    FEED,
    INGEST,
    JOURNAL,
    RUNTIME,
    STORE,
    TENANT_TOKENS,
    VERIFY_TOKEN,
    WEBHOOK_MAX_BYTES,
)

log = structlog.get_logger("lawhub.web")

EXIT_OK = 0
EXIT_GAVE_UP = 1
BACKLOG = 65535
"""Connections the kernel queues before they are accepted (it caps this at
net.core.somaxconn): during a flood of new connections, a full queue drops
SYNs, and a webhook's sender retries only a second later."""

RuntimeFactory = Callable[[Settings, Secrets, OnCommit, GiveUp], AppRuntime]


def build_app(
    settings: Settings,
    secrets: Secrets,
    on_give_up: GiveUp,
    runtime_factory: RuntimeFactory = AppRuntime,
    config_text: str | None = None,
) -> web.Application:
    """``config_text``: the TOML ``settings`` came from, kept for operators to edit."""
    connections = Connections(Limits.of(settings.server))
    app = web.Application(client_max_size=settings.server.webhook_max_bytes,
                          middlewares=[connections.middleware()])
    app[CONNECTIONS] = connections
    app[WEBHOOK_MAX_BYTES] = settings.server.webhook_max_bytes
    app[INGEST] = IngestState()  # inline until run() starts the ack path's process
    app[TENANT_TOKENS] = TenantTokens((t.id, t.api_token_sha256) for t in settings.tenants)
    if secrets.admin_token is not None:
        app[ADMIN_TOKEN] = secrets.admin_token.get_secret_value()
    if secrets.app_secret is not None:
        app[APP_SECRET] = secrets.app_secret.get_secret_value().encode()
    else:
        log.warning("webhook_disabled", reason="LAWHUB_APP_SECRET is not set")
    if secrets.verify_token is not None:
        app[VERIFY_TOKEN] = secrets.verify_token.get_secret_value()

    async def runtime_context(app: web.Application) -> AsyncIterator[None]:
        bridge = Bridge(asyncio.get_running_loop())
        limits = settings.limits
        hub = FeedHub(bridge, limits.feed_queue_max, limits.feed_queue_bytes,
                      limits.feed_send_timeout_s)
        # Opening stores and starting actors blocks: keep it off the loop.
        runtime = await asyncio.to_thread(
            lambda: runtime_factory(settings, secrets, hub.publish, on_give_up).start()
        )
        runtime.config.replace(settings, config_text)
        notices = _notices(app, settings, secrets, runtime, hub)
        bridge.attach(runtime.tree.registry)
        app[RUNTIME], app[FEED], app[BRIDGE] = runtime, hub, bridge
        app[JOURNAL], app[STORE] = runtime.journal, runtime.store
        log.info("tree_started", tenants=len(settings.tenants))
        yield
        if notices is not None:
            await asyncio.to_thread(notices.stop)
        await asyncio.to_thread(runtime.stop)
        log.info("tree_stopped")

    app.cleanup_ctx.append(runtime_context)
    app.on_shutdown.append(_close_feed_clients)
    admin.add_routes(app)
    webhook.add_routes(app)
    api.add_routes(app)
    send_api.add_routes(app)
    dlq.add_routes(app)
    metrics.add_routes(app)
    faults.add_routes(app)
    config_api.add_routes(app)
    console.add_routes(app)
    return app


def _notices(app: web.Application, settings: Settings, secrets: Secrets, runtime: AppRuntime,
             hub: FeedHub) -> Notices | None:
    """Several nodes: other nodes' events reach this node's feed clients, the
    sends they accept for this node's partitions its workers, and the
    configuration they apply this node (also now: it may have started with
    an older file than the cluster runs)."""
    if settings.storage.backend != "postgres" or secrets.database_url is None:
        return None
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[object]] = set()

    def config_changed(_version: int | None = None) -> None:  # on the listener's thread
        def apply() -> None:
            task = asyncio.ensure_future(config_api.apply_stored(app))
            pending.add(task)
            task.add_done_callback(pending.discard)

        loop.call_soon_threadsafe(apply)

    def gap() -> None:
        hub.heard_all()
        config_changed()

    return Notices(secrets.database_url.get_secret_value(), runtime.ownership.node,
                   on_feed=hub.heard, on_send=runtime.heard_send, on_config=config_changed,
                   on_gap=gap).start()


async def _start_ingest(settings: Settings, secrets: Secrets, app: web.Application,
                        runner: web.AppRunner, *, host: str, port: int,
                        give_up: Callable[[str], None]) -> tuple[IngestProcess, int]:
    """Bind the port, hand it to the ack path's process, and serve here the
    connections it passes back (everything but the webhook's)."""
    loop = asyncio.get_running_loop()
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]  # IPv6 too
    listener = socket.create_server((host, port), family=family, backlog=BACKLOG,
                                    reuse_port=settings.server.processes > 1)
    taking: set[asyncio.Task[object]] = set()
    server = runner.server
    assert server is not None
    guarded = app[CONNECTIONS].factory(server)

    def take(connection: socket.socket) -> None:
        connection.setblocking(False)
        task = asyncio.ensure_future(loop.connect_accepted_socket(guarded, connection))
        taking.add(task)
        task.add_done_callback(taking.discard)

    counted = app[metrics.METRICS]

    def count(statuses: dict[str, int], latencies: list[float]) -> None:
        for status, answers in statuses.items():
            counted.webhook_requests.labels(status).inc(answers)
        for latency in latencies:
            counted.webhook_ack_seconds.observe(latency)

    bound = int(listener.getsockname()[1])
    app[JOURNAL].share(FOLLOW_S)  # the child appends to it too from now on
    # The listener stays open here too: a restarted child gets it again, and
    # connections wait in its backlog meanwhile. IngestProcess.stop closes it.
    ingest = IngestProcess(handover(settings, secrets), listener, take=take, count=count,
                           committed=app[JOURNAL].saw, give_up=give_up, state=app[INGEST])
    try:
        await ingest.start()
    except BaseException:
        listener.close()
        raise
    return ingest, bound


async def _close_feed_clients(app: web.Application) -> None:
    """Stopping: every websocket client (tenants' ``/ws``, operators'
    ``/admin/ws``) is told 1001 at once rather than keep the shutdown waiting
    on clients that would never hang up (past Kubernetes' grace period); they
    reconnect once the gateway is back, tenants with ``since``."""
    if FEED in app:
        closed = app[FEED].close_all(GOING_AWAY, "gateway stopping")
        log.info("feed_clients_closed", clients=closed)


def serve(settings: Settings, secrets: Secrets, *, host: str, port: int,
          config_path: Path | None = None, config_text: str | None = None) -> int:
    """Run the gateway until a signal or the tree's end; the exit code.
    ``config_path``: the file SIGHUP reads again; ``config_text``: what it held."""
    soft, raised, hard = raise_open_files_limit()
    log.info("open_files_limit", soft_before=soft, soft=raised, hard=hard,
             max_connections=settings.server.max_connections)
    if raised < settings.server.max_connections + OTHER_FILES:
        log.warning("open_files_limit_low", soft=raised,
                    needed=settings.server.max_connections + OTHER_FILES,
                    fix="raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower"
                        " [server] max_connections")
    for wide in make_private(secrets.data_dir):
        log.warning("data_dir_not_private", detail=wide.describe(),
                    fix="chmod 700 on the data dir and 600 on its files")
    # Several nodes tell each other apart by host and port; one embedded node
    # keeps one name whatever its port, to hold its partitions again at once
    # after a crash.
    node = f"{socket.gethostname()}:{port}"
    named = secrets.node_id or (node if settings.storage.backend == "postgres" else None)
    secrets = secrets.model_copy(update={"node_id": named, "node_address": node})
    return asyncio.run(run(settings, provision(secrets), host=host, port=port,
                           config_path=config_path, config_text=config_text))


async def run(
    settings: Settings,
    secrets: Secrets,
    *,
    host: str,
    port: int,
    runtime_factory: RuntimeFactory = AppRuntime,
    started: Callable[[int], None] | None = None,
    config_path: Path | None = None,
    config_text: str | None = None,
) -> int:
    # Webhook bodies up to 4 MiB: once freed, their memory goes back to the OS.
    log.info("big_allocations_mapped", applied=map_big_allocations())
    if settings.server.ingest == "process" and not passes_connections():
        server = settings.server.model_copy(update={"ingest": "inline"})
        settings = settings.model_copy(update={"server": server})
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    gave_up: list[BaseException | None] = []

    def on_give_up(reason: BaseException | None) -> None:  # on an actor thread
        def mark() -> None:
            gave_up.append(reason)
            stop.set()

        loop.call_soon_threadsafe(mark)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    app = build_app(settings, secrets, on_give_up, runtime_factory, config_text)
    reloads: set[asyncio.Task[object]] = set()

    def on_hangup() -> None:
        if config_path is None or RUNTIME not in app:
            log.warning("sighup_ignored", reason="no config file, or not started yet")
            return
        task = asyncio.create_task(config_api.reload_file(app, config_path))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    ingest: IngestProcess | None = None
    listening: asyncio.Server | None = None
    try:
        if settings.server.ingest == "process":
            ingest, bound = await _start_ingest(
                settings, secrets, app, runner, host=host, port=port,
                give_up=lambda why: on_give_up(RuntimeError(why)))
        else:
            assert runner.server is not None
            listening = await loop.create_server(
                app[CONNECTIONS].factory(runner.server), host, port, backlog=BACKLOG,
                reuse_address=True, reuse_port=settings.server.processes > 1)
            bound = int(listening.sockets[0].getsockname()[1])
        gc.freeze()  # start-up's objects live as long as we do: no collection rescans them
        log.info("listening", url=f"http://{host}:{bound}", ingest=settings.server.ingest)
        if started is not None:
            started(bound)
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        if ingest is not None:  # no webhook is taken once the rest stops
            await ingest.stop(settings.server.shutdown_timeout_s)
        if listening is not None:
            listening.close()
        await runner.cleanup()
    if gave_up:
        log.critical("exiting_after_root_gave_up", reason=repr(gave_up[0]))
        return EXIT_GAVE_UP
    log.info("stopped_cleanly")
    return EXIT_OK
