"""A small synchronous client for a ClamAV daemon (clamd), stdlib sockets only.

``Clamd(address, timeout_s)`` talks to clamd on a unix socket path (also
spelled ``unix:///path``) or on ``tcp://host:port``. One connection per call:

``ping()``   ``zPING\\0`` -> ``PONG\\0``; ``False`` when clamd is unreachable or
             answers anything else. Never raises.
``scan()``   ``zINSTREAM\\0``, then every chunk as ``<4-byte big-endian
             length><data>`` (split to at most ``chunk_size`` bytes; empty
             chunks are skipped, since a zero length ends the stream), then a
             zero-length chunk; the reply is read up to its ``\\0``::

                 stream: OK                    -> ScanResult(clean=True, signature=None)
                 stream: <name> FOUND          -> ScanResult(clean=False, signature=<name>)
                 <anything> ERROR              -> ClamdUnavailable
                 anything else, or no reply    -> ClamdUnavailable

Errors::

    ClamdError(Exception)              base; never raised by itself
     └── ClamdUnavailable              the content was NOT scanned: connection
                                       refused, socket file missing, timeout,
                                       reset / broken pipe (clamd resets a
                                       stream longer than its StreamMaxLength
                                       after replying "INSTREAM size limit
                                       exceeded. ERROR"), clamd stopped
                                       mid-scan, an ERROR reply, or a reply
                                       that is not the protocol above

A ``ClamdUnavailable`` must never be read as "clean". An exception raised by
the caller's ``chunks`` iterable propagates unchanged (the connection is
closed, clamd discards the partial stream).

Timeouts: ``timeout_s`` applies to EACH socket operation (connect, every
send, every receive), not to the scan as a whole, so a large upload is not
failed for being large, while a clamd that stops reading or answering is
detected within ``timeout_s`` of its last progress. The reply is capped at
``MAX_REPLY_BYTES``.

Signature names are clamd's: the databases a firm adds itself carry the
``.UNOFFICIAL`` suffix (``"Eicar-Signature.UNOFFICIAL"``). Nothing here logs;
exception messages carry the address and clamd's reply, never file contents.

Deployment warning (measured with clamd 1.4.6): a stream under
StreamMaxLength but over MaxFileSize / MaxScanSize is NOT scanned and
answers ``stream: OK`` (even with EICAR inside) unless clamd.conf says
``AlertExceedsMax yes``; then it answers ``Heuristics.Limits.Exceeded.MaxFileSize
FOUND`` (no ``.UNOFFICIAL`` suffix), which this client returns as not clean.
Set ``AlertExceedsMax yes``, or keep StreamMaxLength below both limits.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["MAX_REPLY_BYTES", "Clamd", "ClamdError", "ClamdUnavailable", "ScanResult"]

MAX_REPLY_BYTES = 4096
_MAX_CHUNK = 2**32 - 1  # the length prefix is an unsigned 32-bit integer
_LENGTH = struct.Struct(">I")
_END_OF_STREAM = _LENGTH.pack(0)
_STREAM_OK = "stream: OK"
_STREAM_PREFIX = "stream: "
_FOUND_SUFFIX = " FOUND"
_ERROR_SUFFIX = " ERROR"


class ClamdError(Exception):
    """Base of every error this client raises."""


class ClamdUnavailable(ClamdError):
    """clamd could not be asked, or did not answer usefully: the content was NOT scanned."""


@dataclass(frozen=True, slots=True)
class ScanResult:
    """clamd's verdict on one stream."""

    clean: bool
    signature: str | None  # the signature that matched, when not clean


class Clamd:
    """A clamd at ``address`` (unix socket path, ``unix://path`` or ``tcp://host:port``)."""

    def __init__(self, address: str, timeout_s: float, chunk_size: int = 64 * 1024) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if not 0 < chunk_size <= _MAX_CHUNK:
            raise ValueError(f"chunk_size must be in 1..{_MAX_CHUNK}")
        self._address = address
        self._sockaddr = _parse_address(address)
        self._timeout_s = timeout_s
        self._chunk_size = chunk_size

    @property
    def address(self) -> str:
        return self._address

    def ping(self) -> bool:
        """True when clamd answers PONG; False otherwise (never raises)."""
        try:
            with self._connect() as sock:
                sock.sendall(b"zPING\0")
                return self._read_reply(sock) == "PONG"
        except (OSError, ClamdError):
            return False

    def scan(self, chunks: Iterable[bytes | bytearray | memoryview]) -> ScanResult:
        """Stream ``chunks`` to clamd (INSTREAM) and return its verdict.

        Raises ``ClamdUnavailable`` whenever the content was not scanned.
        """
        with self._connect() as sock:
            self._send(sock, b"zINSTREAM\0")
            for chunk in chunks:  # the caller's own exceptions propagate unchanged
                view = memoryview(chunk).cast("B")
                for start in range(0, len(view), self._chunk_size):
                    piece = view[start : start + self._chunk_size]
                    self._send(sock, _LENGTH.pack(len(piece)))
                    self._send(sock, piece)
            self._send(sock, _END_OF_STREAM)
            try:
                reply = self._read_reply(sock)
            except OSError as exc:
                raise ClamdUnavailable(
                    f"clamd at {self._address} gave no reply ({_describe(exc)})"
                ) from exc
        return self._verdict(reply)

    def _connect(self) -> socket.socket:
        try:
            if isinstance(self._sockaddr, tuple):
                return socket.create_connection(self._sockaddr, timeout=self._timeout_s)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self._timeout_s)
                sock.connect(self._sockaddr)
            except BaseException:
                sock.close()
                raise
            return sock
        except OSError as exc:
            raise ClamdUnavailable(
                f"clamd at {self._address} is unreachable ({_describe(exc)})"
            ) from exc

    def _send(self, sock: socket.socket, data: bytes | memoryview) -> None:
        try:
            sock.sendall(data)
        except OSError as exc:
            # clamd replies before it drops a stream it refuses (size limit): say why.
            # After a timeout clamd is stalled, so do not wait for it a second time.
            late = "" if isinstance(exc, TimeoutError) else self._late_reply(sock)
            raise ClamdUnavailable(
                f"clamd at {self._address} dropped the stream ({_describe(exc)}){late}"
            ) from exc

    def _read_reply(self, sock: socket.socket) -> str:
        """One NUL-terminated reply; ClamdUnavailable if cut short or oversized."""
        reply = bytearray()
        while True:
            data = sock.recv(MAX_REPLY_BYTES)
            if not data:
                raise ClamdUnavailable(
                    f"clamd at {self._address} closed the connection without a reply"
                    if not reply
                    else f"clamd at {self._address} sent an unterminated reply"
                )
            reply += data
            end = reply.find(b"\0")
            if end >= 0:
                return reply[:end].decode("utf-8", errors="replace").strip()
            if len(reply) > MAX_REPLY_BYTES:
                raise ClamdUnavailable(f"clamd at {self._address} sent an oversized reply")

    def _late_reply(self, sock: socket.socket) -> str:
        """clamd's reply after a failed send, as a message suffix ('' if there is none)."""
        try:
            return f": {self._read_reply(sock)!r}"
        except (OSError, ClamdError):
            return ""

    def _verdict(self, reply: str) -> ScanResult:
        if reply == _STREAM_OK:
            return ScanResult(clean=True, signature=None)
        if reply.endswith(_ERROR_SUFFIX):
            raise ClamdUnavailable(f"clamd at {self._address} could not scan: {reply!r}")
        if reply.startswith(_STREAM_PREFIX) and reply.endswith(_FOUND_SUFFIX):
            name = reply[len(_STREAM_PREFIX) : -len(_FOUND_SUFFIX)].strip()
            if name:
                return ScanResult(clean=False, signature=name)
        raise ClamdUnavailable(f"clamd at {self._address} sent an unexpected reply: {reply[:80]!r}")


def _parse_address(address: str) -> str | tuple[str, int]:
    """A unix socket path, or (host, port) for ``tcp://host:port``."""
    if address.startswith("tcp://"):
        parts = urlsplit(address)
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad clamd address {address!r}: {exc}") from exc
        if not parts.hostname or port is None or parts.path not in ("", "/"):
            raise ValueError(f"bad clamd address {address!r}: want tcp://host:port")
        return parts.hostname, port
    path = address.removeprefix("unix://")
    if not path or "://" in path:
        raise ValueError(f"bad clamd address {address!r}: want a socket path or tcp://host:port")
    return path


def _describe(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return exc.strerror or type(exc).__name__
