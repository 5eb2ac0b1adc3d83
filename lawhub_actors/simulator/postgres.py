"""A private PostgreSQL server for tests, benches and the demo: never the
machine's shared one.

:func:`run_postgres` makes a cluster in a fresh temp dir (``initdb``, trust
authentication, no fsync of its files at creation), starts it listening on a
unix socket in that dir only (no TCP), and removes it all afterwards.
PostgreSQL refuses to run as root: as root the programs run as the
``postgres`` system user (``runuser``), who is given the temp dir; as anyone
else they run as that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from lawhub_actors.simulator.clamav import short_tempdir

__all__ = ["PostgresStartError", "PrivatePostgres", "postgres_bin", "run_postgres"]

START_DEADLINE_S = 30
SYSTEM_USER = "postgres"
USER = "lawhub"
"""The cluster's superuser, made by ``initdb``."""


class PostgresStartError(RuntimeError):
    """PostgreSQL is not installed, or the cluster did not start (the message says why)."""


@dataclass(frozen=True, slots=True)
class PrivatePostgres:
    socket_dir: Path
    """The directory holding the server's socket (``host`` for a client)."""
    log: Path

    def dsn(self, database: str = "postgres") -> str:
        return f"host={self.socket_dir} user={USER} dbname={database}"


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` directory (Debian keeps it off PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@contextlib.contextmanager
def run_postgres(settings: Mapping[str, str] | None = None) -> Iterator[PrivatePostgres]:
    """A private cluster for the ``with`` block; ``settings`` are server
    options (``-c name=value``), e.g. ``{"fsync": "off"}`` for tests that
    only kill processes, never the machine."""
    binaries = postgres_bin()
    if binaries is None:
        raise PostgresStartError(
            "PostgreSQL is not installed: `make test` installs it (scripts/ensure-system-deps)")
    tmp = short_tempdir("lawhub-pg-")
    data, log = tmp / "data", tmp / "server.log"
    as_root = os.geteuid() == 0
    if as_root:
        owner = pwd.getpwnam(SYSTEM_USER)
        os.chown(tmp, owner.pw_uid, owner.pw_gid)
    options = {"listen_addresses": "''", "unix_socket_directories": f"'{tmp}'",
               **(settings or {})}

    def run(*command: str) -> None:
        prefix = ["runuser", "-u", SYSTEM_USER, "--"] if as_root else []
        done = subprocess.run(  # noqa: S603 - PostgreSQL's own programs, our arguments
            [*prefix, *command], capture_output=True, text=True, timeout=START_DEADLINE_S,
            check=False)
        if done.returncode != 0:
            raise PostgresStartError(
                f"{Path(command[0]).name} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}")

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", USER,
            "-E", "UTF8", "--locale=C", "--no-sync")
        run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
            "-t", str(START_DEADLINE_S), "-o",
            " ".join(f"-c {name}={value}" for name, value in options.items()), "start")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        yield PrivatePostgres(tmp, log)
    finally:
        with contextlib.suppress(PostgresStartError, subprocess.TimeoutExpired):
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)
