"""Fixtures that run REAL servers for tests (never a fake).

``redis_server`` starts one ``redis-server`` per pytest process (session
scope: under pytest-xdist every worker is its own process, so each gets its
own server) listening only on a unix socket in a private temp dir, with no
persistence. ``redis_url`` hands each test that server after ``FLUSHALL``.

To share them, import them into a conftest (or a test module)::

    from tests.servers import redis_server, redis_url  # noqa: F401

The clamd fixtures (``clamd_server``, ``clamd_process``, ``clamd_down``) and
the PostgreSQL ones (``postgres_server``, ``postgres_url``) are described
with their code below.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis

from lawhub_actors.simulator import clamav
from lawhub_actors.simulator.clamav import ClamdProcess
from lawhub_actors.simulator.postgres import PrivatePostgres, run_postgres

STARTUP_DEADLINE_S = 10.0
STOP_DEADLINE_S = clamav.STOP_DEADLINE_S
_short_tempdir = clamav.short_tempdir
_stop = clamav.stop_process


def _ping(socket_path: Path) -> bool:
    client = redis.Redis(
        unix_socket_path=str(socket_path), socket_timeout=0.5, socket_connect_timeout=0.5
    )
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """``unix://…/redis.sock`` of a private redis-server, stopped at session end."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: `make test` installs it (scripts/ensure-system-deps)")
    tmp = _short_tempdir("lawhub-redis-")
    sock = tmp / "redis.sock"
    log_path = tmp / "redis.log"
    cmd = [
        binary,
        "--port", "0",
        "--unixsocket", str(sock),
        "--unixsocketperm", "700",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(tmp),
        "--logfile", str(log_path),
        "--daemonize", "no",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while not _ping(sock):
            if proc.poll() is not None:
                log = log_path.read_text(errors="replace") if log_path.exists() else ""
                pytest.fail(f"redis-server exited with {proc.returncode}:\n{log}")
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server did not answer PING within {STARTUP_DEADLINE_S} s")
            time.sleep(0.01)
        yield f"unix://{sock}"
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's redis-server, emptied (FLUSHALL) before this test."""
    client = redis.Redis.from_url(redis_server, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server


# --- clamd -------------------------------------------------------------------
#
# ``clamd_server`` starts one ``clamd`` per pytest process (session scope), on
# a unix socket in a private temp dir, with the hand-written signature
# database of ``lawhub_actors.simulator.clamav`` (EICAR and
# ``CLAMD_CUSTOM_MARKER``; see that module). ``clamd_process`` starts a private
# clamd for one test, which the test may kill; ``clamd_down`` is a socket path
# where nothing listens.
#
#     from tests.servers import clamd_down, clamd_process, clamd_server
#
# (silencing F401 with noqa, as for redis above).

EICAR = clamav.EICAR
CLAMD_CUSTOM_MARKER = clamav.CUSTOM_MARKER
CLAMD_EICAR_SIGNATURE = clamav.EICAR_SIGNATURE
CLAMD_CUSTOM_SIGNATURE = clamav.CUSTOM_SIGNATURE
CLAMD_STREAM_MAX_BYTES = clamav.STREAM_MAX_BYTES


@contextmanager
def run_clamd(*, tcp: bool = False) -> Iterator[ClamdProcess]:
    """A private clamd for the ``with`` block (unix socket; ``tcp=True``: 127.0.0.1);
    the test fails when it cannot start (``make test`` installs clamd)."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(clamav.run_clamd(tcp=tcp))
        except clamav.ClamdStartError as error:
            pytest.fail(f"{error} (`make test` installs it: scripts/ensure-system-deps)")
        yield server


@pytest.fixture(scope="session")
def clamd_server() -> Iterator[str]:
    """Unix socket path of a private clamd (test signatures), stopped at session end."""
    with run_clamd() as server:
        yield server.address


@pytest.fixture
def clamd_process() -> Iterator[ClamdProcess]:
    """A clamd of this test's own, which the test may ``kill()``."""
    with run_clamd() as server:
        yield server


@pytest.fixture
def clamd_down() -> Iterator[str]:
    """A unix socket path where nothing listens (a stale socket file: connect is refused)."""
    tmp = _short_tempdir("lawhub-clamd-down-")
    path = tmp / "clamd.sock"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(str(path))  # bound, never listening, then closed: the file stays
        yield str(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- PostgreSQL --------------------------------------------------------------
#
# ``postgres_server`` runs one private PostgreSQL per pytest process (session
# scope; ``simulator.postgres.run_postgres``: initdb in a temp dir, a unix
# socket, no TCP). Its files are not fsynced (``fsync=off``): tests kill
# processes, never the machine. ``postgres_url`` is a new, empty database on
# it for one test, dropped afterwards.


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PrivatePostgres]:
    with run_postgres({"fsync": "off"}) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PrivatePostgres) -> Iterator[str]:
    import psycopg

    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield postgres_server.dsn(name)
    finally:
        with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
