"""A private ``clamd`` with a hand-written signature database (tests, benchmarks, demo).

No signature download is possible, nor wanted: the database matches EICAR
(an MD5 ``.hdb`` signature of the whole file and an ``.ndb`` body signature
that finds it anywhere, both named ``Eicar-Signature``) and
:data:`CUSTOM_MARKER` anywhere in a file (``LawHub.Test.Custom``), so clamd
starts in well under a second with a few MB. clamd reports signatures from
databases it did not sign itself with a ``.UNOFFICIAL`` suffix: see
:data:`EICAR_SIGNATURE` and :data:`CUSTOM_SIGNATURE`. Streams longer than
:data:`STREAM_MAX_BYTES` are refused.

:func:`run_clamd` starts one for a ``with`` block, on a unix socket in a
private temp dir (or on 127.0.0.1); :func:`clamd_binary` says whether clamd
is installed at all.
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

__all__ = [
    "CUSTOM_MARKER",
    "CUSTOM_SIGNATURE",
    "EICAR",
    "EICAR_SIGNATURE",
    "STREAM_MAX_BYTES",
    "ClamdProcess",
    "ClamdStartError",
    "clamd_binary",
    "run_clamd",
    "short_tempdir",
    "stop_process",
]

# Assembled at runtime so that no antivirus on a developer machine flags this file.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CUSTOM_MARKER = b"LAWHUB-TEST-" + b"MALWARE-7f3a9c"
EICAR_SIGNATURE = "Eicar-Signature.UNOFFICIAL"
CUSTOM_SIGNATURE = "LawHub.Test.Custom.UNOFFICIAL"
STREAM_MAX_BYTES = 2 * 1024 * 1024

STARTUP_DEADLINE_S = 10.0
STOP_DEADLINE_S = 5.0
_PORT_ATTEMPTS = 5
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes on Linux, NUL included


class ClamdStartError(RuntimeError):
    """clamd is missing, exited, or did not answer PING in time (the message says which)."""


@dataclass
class ClamdProcess:
    """A running clamd: ``address`` is what ``Clamd(address, …)`` and ``[limits]
    clamd_socket`` take."""

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


def clamd_binary() -> str | None:
    """The clamd executable (Debian puts it in /usr/sbin, often off a user's PATH)."""
    return shutil.which("clamd") or shutil.which("clamd", path="/usr/sbin:/usr/local/sbin")


def short_tempdir(prefix: str) -> Path:
    """A fresh temp dir whose socket paths fit in sun_path (a long $TMPDIR may not)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if len(str(path / "server.sock")) > _SUN_PATH_MAX:
        path.rmdir()
        path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    return path


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after :data:`STOP_DEADLINE_S`; reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_DEADLINE_S)


@contextmanager
def run_clamd(*, tcp: bool = False) -> Iterator[ClamdProcess]:
    """A private clamd for the ``with`` block (unix socket; ``tcp=True``: 127.0.0.1),
    stopped and its directory removed afterwards. :class:`ClamdStartError` when it
    cannot start."""
    binary = clamd_binary()
    if binary is None:
        raise ClamdStartError("clamd is not installed (Debian: apt-get install clamav-daemon)")
    tmp = short_tempdir("lawhub-clamd-")
    server: ClamdProcess | None = None
    try:
        _write_database(tmp / "db")
        for _ in range(_PORT_ATTEMPTS if tcp else 1):
            server = _start_once(binary, tmp, _free_tcp_port() if tcp else None)
            if server is not None:
                break
        if server is None:
            raise ClamdStartError(f"clamd found no free TCP port in {_PORT_ATTEMPTS} attempts")
        yield server
    finally:
        if server is not None:
            stop_process(server.proc)
        shutil.rmtree(tmp, ignore_errors=True)


def _write_database(db_dir: Path) -> None:
    db_dir.mkdir()
    (db_dir / "lawhub-test.hdb").write_text(
        f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:Eicar-Signature\n"  # noqa: S324 - clamd's format
    )
    ndb = [
        f"Eicar-Signature:0:*:{EICAR.hex()}",
        f"LawHub.Test.Custom:0:*:{CUSTOM_MARKER.hex()}",
    ]
    (db_dir / "lawhub-test.ndb").write_text("\n".join(ndb) + "\n")


def _ping(address: str) -> bool:
    """PING -> PONG, stdlib only (independent of the gateway's clamd client)."""
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


def _start_once(binary: str, tmp: Path, tcp_port: int | None) -> ClamdProcess | None:
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
        f"StreamMaxLength {STREAM_MAX_BYTES // (1024 * 1024)}M",
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
        proc = subprocess.Popen(  # noqa: S603 - our own binary and config
            [binary, "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    server = ClamdProcess(address=address, proc=proc, log_path=log_path)
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while not _ping(address):
        if proc.poll() is not None:
            log = server.log()
            if tcp_port is not None and "bind" in log:
                return None
            out_text = (tmp / "clamd.out").read_text(errors="replace")
            raise ClamdStartError(f"clamd exited with {proc.returncode}:\n{log}\n{out_text}")
        if time.monotonic() > deadline:
            stop_process(proc)
            raise ClamdStartError(
                f"clamd did not answer PING within {STARTUP_DEADLINE_S} s:\n{server.log()}"
            )
        time.sleep(0.01)
    return server
