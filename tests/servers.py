"""Fixtures that run REAL servers for tests (never a fake).

``redis_server`` starts one ``redis-server`` per pytest process (session
scope: under pytest-xdist every worker is its own process, so each gets its
own server) listening only on a unix socket in a private temp dir, with no
persistence. ``redis_url`` hands each test that server after ``FLUSHALL``.

To share them, import them into a conftest (or a test module)::

    from tests.servers import redis_server, redis_url  # noqa: F401
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

STARTUP_DEADLINE_S = 10.0
STOP_DEADLINE_S = 5.0
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes on Linux, NUL included


def _short_tempdir(prefix: str) -> Path:
    """A temp dir whose socket path fits in sun_path (a long $TMPDIR may not)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if len(str(path / "redis.sock")) > _SUN_PATH_MAX:
        path.rmdir()
        path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    return path


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


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_DEADLINE_S)


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
