"""Command line: ``python run.py [serve|check-config|migrate|demo] ...``.

Without a command it serves. Exit codes: 0 success, 2 bad config or bad
environment (``migrate``: or a database newer than this code), 1 a database
that cannot be reached; ``serve`` and ``demo`` return the server's own code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from lawhub_actors import logs
from lawhub_actors.settings import (
    ConfigError,
    ConfigIssue,
    Secrets,
    Settings,
    check,
    load,
    load_with_text,
    preflight,
)

DEFAULT_CONFIG = "config/lawhub.toml"
DEMO_CONFIG = "config/demo.toml"
EXIT_CONFIG = 2


def default_config(environ: Mapping[str, str]) -> str:
    """``$LAWHUB_CONFIG`` when set, else ``config/lawhub.toml`` (relative to the cwd)."""
    return environ.get("LAWHUB_CONFIG") or DEFAULT_CONFIG


def main(argv: list[str] | None = None) -> int:
    args = _parser(default_config(os.environ)).parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.path)
    if args.command == "migrate":
        return _migrate(args.config)
    if args.command == "demo":
        return _demo(args.demo_config, args.demo_port, args.duration, args.rate)
    return _serve(args.config, args.host, args.port, args.node_id, bool(args.in_group))


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be within 0..65535, got {port}")
    return port


def _add_serve_options(
    parser: argparse.ArgumentParser, config_default: str, default: object
) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=config_default,
        help="config file to serve with (default: $LAWHUB_CONFIG or config/lawhub.toml)",
    )
    parser.add_argument("--host", default=default, help="listen address (default: [server] host)")
    parser.add_argument(
        "--port", type=_port, default=default, help="listen port (default: [server] port)"
    )
    parser.add_argument(
        "--node-id", default=default,
        help="this node's name among several (default: $LAWHUB_NODE_ID, else host:port)")
    parser.add_argument("--in-group", action="store_true", default=default,
                        help=argparse.SUPPRESS)  # one of [server] processes: serve one node


def _parser(config_default: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="LawHub Actors: WhatsApp Cloud API gateway for law firms.",
    )
    _add_serve_options(parser, config_default, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.set_defaults(command="serve")
    # SUPPRESS: options given after "serve" override those given before it,
    # and absent ones do not reset them.
    _add_serve_options(
        commands.add_parser("serve", help="run the gateway (the default command)"),
        argparse.SUPPRESS,
        argparse.SUPPRESS,
    )
    check_parser = commands.add_parser(
        "check-config", help="validate a config file; exit 0 when valid, 2 with every error"
    )
    check_parser.add_argument(
        "path", nargs="?", default=config_default, help=f"default: {config_default}"
    )
    migrate = commands.add_parser(
        "migrate", help="create or upgrade the database schema, then exit",
        description="Create or upgrade the store's schema (PostgreSQL: the journal's too) "
        "and exit; nodes also do it at start unless [storage] auto_migrate = false.")
    migrate.add_argument("--config", metavar="PATH", default=config_default,
                         help="config file naming the database (default: $LAWHUB_CONFIG or "
                         "config/lawhub.toml)")
    _add_demo_parser(commands)
    return parser


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _add_demo_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="serve with a simulated Meta, law firms and their clients (all local)",
        description="The gateway on 127.0.0.1 with a local stand-in for Meta and made-up "
        "traffic; data in a temp dir, secrets made up in memory.",
    )
    # Own dests: the top-level --config/--port are serve's and default to its config.
    demo.add_argument("--config", dest="demo_config", metavar="PATH", default=DEMO_CONFIG,
                      help=f"tenants and templates to simulate (default: {DEMO_CONFIG})")
    demo.add_argument("--port", dest="demo_port", type=_port, default=None,
                      help="listen port (default: [server] port; 0: any free port)")
    demo.add_argument("--duration", type=_positive, default=None, metavar="SECONDS",
                      help="stop after this long (default: until Ctrl-C or SIGTERM)")
    demo.add_argument("--rate", type=_positive, default=None, metavar="PER_SECOND",
                      help="messages a second (default: 2)")


def _check_config(path: str) -> int:
    issues = check(path)
    if issues:
        _report(issues)
        return EXIT_CONFIG
    sys.stdout.write(f"ok: {path}\n")
    return 0


def _loaded(path: str) -> tuple[Settings, str, Secrets] | None:
    """The config, its text and the environment's secrets, checked together;
    ``None`` once every problem is reported."""
    try:
        settings, text = load_with_text(path)
        secrets = Secrets.from_env(os.environ)
    except ConfigError as exc:
        _report(exc.issues)
        return None
    issues = preflight(settings, secrets)
    if issues:
        _report(issues)
        return None
    return settings, text, secrets


def _migrate(path: str) -> int:
    loaded = _loaded(path)
    if loaded is None:
        return EXIT_CONFIG
    settings, _, secrets = loaded
    logs.configure(level=settings.logging.level, secrets=secrets)
    # Imported here: check-config must not need the database drivers.
    from lawhub_actors.adapters.databases import migrate  # noqa: PLC0415
    from lawhub_actors.adapters.store_migrations import SchemaTooNew  # noqa: PLC0415
    from lawhub_actors.provision import provision  # noqa: PLC0415
    from lawhub_actors.runtime import keyring_of  # noqa: PLC0415

    try:
        before, now = migrate(settings, secrets, keyring_of(provision(secrets, admin_token=False)))
    except SchemaTooNew as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_CONFIG
    except Exception as exc:  # noqa: BLE001 - the database is away or refuses: say so, exit 1
        sys.stderr.write(f"migrate failed: {exc}\n")
        return 1
    backend = settings.storage.backend
    sys.stdout.write(f"{backend}: schema version {before} -> {now}\n" if before != now
                     else f"{backend}: schema already at version {now}\n")
    return 0


def _serve(path: str, host: str | None, port: int | None, node_id: str | None = None,
           in_group: bool = False) -> int:
    loaded = _loaded(path)
    if loaded is None:
        return EXIT_CONFIG
    settings, text, secrets = loaded
    if node_id is not None:
        secrets = secrets.model_copy(update={"node_id": node_id})
    if settings.server.processes > 1 and not in_group:
        logs.configure(level=settings.logging.level, secrets=secrets)
        from lawhub_actors.process_group import serve_group  # noqa: PLC0415

        host = settings.server.host if host is None else host
        port = settings.server.port if port is None else port
        return serve_group(processes=settings.server.processes, config=Path(path), host=host,
                           port=port, node=secrets.node_id)
    logs.configure(level=settings.logging.level, secrets=secrets)
    # Imported here: the web stack is heavy, and check-config must not need it.
    from lawhub_actors.web.app import serve  # noqa: PLC0415

    return serve(
        settings,
        secrets,
        host=settings.server.host if host is None else host,
        port=settings.server.port if port is None else port,
        config_path=Path(path),
        config_text=text,
    )


def _demo(path: str, port: int | None, duration: float | None, rate: float | None) -> int:
    try:
        settings = load(path)
    except ConfigError as exc:
        _report(exc.issues)
        return EXIT_CONFIG
    # Imported here, as for serve: the web stack is heavy.
    from lawhub_actors import demo  # noqa: PLC0415

    options = demo.DemoOptions(port=port, duration=duration,
                               rate=demo.DEFAULT_RATE if rate is None else rate)
    return demo.run(settings, options)


def _report(issues: Iterable[ConfigIssue]) -> None:
    for issue in issues:
        sys.stderr.write(f"{issue}\n")
