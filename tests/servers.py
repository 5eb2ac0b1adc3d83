"""Fixtures that run REAL servers for tests (never a fake).

``redis_server`` starts one ``redis-server`` per pytest process (session
scope: under pytest-xdist every worker is its own process, so each gets its
own server) listening only on a unix socket in a private temp dir, with no
persistence. ``redis_url`` hands each test that server after ``FLUSHALL``.

To share them, import them into a conftest (or a test module)::

    from tests.servers import redis_server, redis_url  # noqa: F401

The clamd fixtures (``clamd_server``, ``clamd_process``, ``clamd_down``) are
described with their code below.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


# --- clamd -------------------------------------------------------------------
#
# ``clamd_server`` starts one ``clamd`` per pytest process (session scope), on
# a unix socket in a private temp dir, with a hand-written signature database
# only (no download is possible, nor wanted: it starts in well under a second
# with a few MB). ``clamd_process`` starts a private clamd for one test, which
# the test may kill; ``clamd_down`` is a socket path where nothing listens.
#
#     from tests.servers import clamd_down, clamd_process, clamd_server
#
# (silencing F401 with noqa, as for redis above).
#
# The database matches EICAR (as an MD5 ``.hdb`` signature of the whole file
# and as an ``.ndb`` body signature that finds it anywhere, both named
# ``Eicar-Signature``) and ``CLAMD_CUSTOM_MARKER`` anywhere in a file
# (``LawHub.Test.Custom``). clamd reports signatures from databases it did
# not sign itself with a ``.UNOFFICIAL`` suffix: see ``CLAMD_*_SIGNATURE``.
# Streams longer than ``CLAMD_STREAM_MAX_BYTES`` are refused.

# Assembled at runtime so that no antivirus on a developer machine flags this file.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CLAMD_CUSTOM_MARKER = b"LAWHUB-TEST-" + b"MALWARE-7f3a9c"
CLAMD_EICAR_SIGNATURE = "Eicar-Signature.UNOFFICIAL"
CLAMD_CUSTOM_SIGNATURE = "LawHub.Test.Custom.UNOFFICIAL"
CLAMD_STREAM_MAX_BYTES = 2 * 1024 * 1024
_CLAMD_PORT_ATTEMPTS = 5


@dataclass
class ClamdProcess:
    """A running clamd: ``address`` is what ``Clamd(address, …)`` takes."""

    address: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def kill(self) -> None:
        """SIGKILL clamd and reap it: its socket file stays behind, refusing connections."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=STOP_DEADLINE_S)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _clamd_binary() -> str:
    binary = shutil.which("clamd") or shutil.which("clamd", path="/usr/sbin:/usr/local/sbin")
    if binary is None:
        pytest.fail("clamd is not installed: `make test` installs it (scripts/ensure-system-deps)")
    return binary


def _write_clamd_database(db_dir: Path) -> None:
    db_dir.mkdir()
    (db_dir / "lawhub-test.hdb").write_text(
        f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:Eicar-Signature\n"
    )
    ndb = [
        f"Eicar-Signature:0:*:{EICAR.hex()}",
        f"LawHub.Test.Custom:0:*:{CLAMD_CUSTOM_MARKER.hex()}",
    ]
    (db_dir / "lawhub-test.ndb").write_text("\n".join(ndb) + "\n")


def _clamd_ping(address: str) -> bool:
    """PING -> PONG, stdlib only (independent of the client under test)."""
    sockaddr: str | tuple[str, int]
    if address.startswith("tcp://"):
        host, _, port = address.removeprefix("tcp://").rpartition(":")
        family, sockaddr = socket.AF_INET, (host, int(port))
    else:
        family, sockaddr = socket.AF_UNIX, address
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(sockaddr)
            sock.sendall(b"zPING\0")
            return sock.recv(16) == b"PONG\0"
    except OSError:
        return False


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_clamd_once(binary: str, tmp: Path, tcp_port: int | None) -> ClamdProcess | None:
    """A started clamd, or None when it lost its TCP port to someone else."""
    sock = tmp / "clamd.sock"
    log_path = tmp / "clamd.log"
    lines = [
        "Foreground yes",
        f"DatabaseDirectory {tmp / 'db'}",
        "OfficialDatabaseOnly no",
        "Bytecode no",
        f"PidFile {tmp / 'clamd.pid'}",
        f"TemporaryDirectory {tmp}",
        f"LogFile {log_path}",
        f"StreamMaxLength {CLAMD_STREAM_MAX_BYTES // (1024 * 1024)}M",
        "ConcurrentDatabaseReload no",
        "MaxThreads 4",
    ]  # no `User`: clamd then keeps the uid it was started with (root in CI is fine)
    if tcp_port is None:
        lines += [f"LocalSocket {sock}", "LocalSocketMode 600", "FixStaleSocket yes"]
        address = str(sock)
    else:
        lines += ["TCPAddr 127.0.0.1", f"TCPSocket {tcp_port}"]
        address = f"tcp://127.0.0.1:{tcp_port}"
    conf = tmp / "clamd.conf"
    conf.write_text("\n".join(lines) + "\n")
    # clamd in the foreground also writes its log to stdout/stderr: keep it with the log.
    with (tmp / "clamd.out").open("wb") as out:
        proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    server = ClamdProcess(address=address, proc=proc, log_path=log_path)
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while not _clamd_ping(address):
        if proc.poll() is not None:
            log = server.log()
            if tcp_port is not None and "bind" in log:
                return None
            out_text = (tmp / "clamd.out").read_text(errors="replace")
            pytest.fail(f"clamd exited with {proc.returncode}:\n{log}\n{out_text}")
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"clamd did not answer PING within {STARTUP_DEADLINE_S} s:\n{server.log()}")
        time.sleep(0.01)
    return server


@contextmanager
def run_clamd(*, tcp: bool = False) -> Iterator[ClamdProcess]:
    """A private clamd for the ``with`` block (unix socket; ``tcp=True``: 127.0.0.1)."""
    binary = _clamd_binary()
    tmp = _short_tempdir("lawhub-clamd-")
    server: ClamdProcess | None = None
    try:
        _write_clamd_database(tmp / "db")
        for _ in range(_CLAMD_PORT_ATTEMPTS if tcp else 1):
            server = _start_clamd_once(binary, tmp, _free_tcp_port() if tcp else None)
            if server is not None:
                break
        if server is None:
            pytest.fail(f"clamd found no free TCP port in {_CLAMD_PORT_ATTEMPTS} attempts")
        yield server
    finally:
        if server is not None:
            _stop(server.proc)
        shutil.rmtree(tmp, ignore_errors=True)


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
