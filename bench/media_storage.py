"""Media storage for several nodes: the shared directory the gateway uses
(``adapters/media_files.py``) against PostgreSQL large objects, the other
way every node could reach every media ref.

Both store the same thing: the file sealed by ``Keyring.seal_stream``
(per-tenant key, 64 KiB frames), made durable before it counts as kept.

- *Directory*: what the gateway does — seal into ``.partial/<node>/``,
  fsync, rename into ``clean/<tenant>/``, fsync the directory; read back by
  streaming the file through ``open_stream``.
- *Large objects*: one transaction per file on a private PostgreSQL
  (``synchronous_commit`` on): ``lo_create``, the sealed frames written in
  256 KiB pieces (``lo_put``), a row naming the object, commit; read back
  with ``lo_get`` in 256 KiB pieces through ``open_stream``.

Files of 200 KB (a photo) and 5 MB (a scanned document), written one after
the other, then read. *CPU ms per MB* counts this process and the database
server (``utime + stime``), so the work PostgreSQL does is counted; *MB/s*
is the wall rate. A shared directory needs a filesystem every node mounts
(NFS, a cluster filesystem); on one machine it is the data dir, as here.

Reading the first run (2026-12-07): the directory costs 3 to 20 times less
CPU per MB than large objects (a 200 KB photo: ~5 against ~18 ms/MB to
write, ~1 against ~12 to read), and reads 10 times faster: large objects
go through the database's WAL and buffers and a round trip per 256 KiB
piece. Hence the shared directory: the sealed files need nothing of a
database (no query, no transaction across files), and the database keeps
only the row that names them.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg

from bench.common import cpu_times
from bench.nodes import MASTER_KEY, postmaster_pid
from bench.report import print_section
from lawhub_actors.adapters.media_files import MediaFiles
from lawhub_actors.core.crypto import DEFAULT_CHUNK_SIZE, Keyring
from lawhub_actors.simulator.postgres import run_postgres

SIZES = {"200 KB": 200_000, "5 MB": 5_000_000}
BYTES_EACH = 50_000_000
"""Bytes written per size (so 250 photos, 10 documents)."""
PIECE = 256 * 1024
TENANT = "firm-a"


def _keyring() -> Keyring:
    return Keyring({1: base64.b64decode(MASTER_KEY)}, 1)


def _plain(size: int) -> Iterator[bytes]:
    block = os.urandom(DEFAULT_CHUNK_SIZE)
    for start in range(0, size, DEFAULT_CHUNK_SIZE):
        yield block[:min(DEFAULT_CHUNK_SIZE, size - start)]


class _LargeObjects:
    def __init__(self, url: str, keyring: Keyring) -> None:
        self._conn = psycopg.connect(url, autocommit=True)
        self._conn.execute("CREATE TABLE media (ref TEXT PRIMARY KEY, oid OID NOT NULL)")
        self._keyring = keyring

    def write(self, ref: str, chunks: Iterator[bytes]) -> None:
        aad = f"media:{TENANT}:{ref}".encode()
        frames = self._keyring.seal_stream(TENANT, chunks, DEFAULT_CHUNK_SIZE, aad)
        with self._conn.transaction():
            (oid,) = self._conn.execute("SELECT lo_create(0)").fetchone()  # type: ignore[misc]
            offset, piece = 0, bytearray()
            for frame in frames:
                piece += frame
                if len(piece) >= PIECE:
                    self._conn.execute("SELECT lo_put(%s, %s, %s)", (oid, offset, bytes(piece)))
                    offset += len(piece)
                    piece.clear()
            if piece:
                self._conn.execute("SELECT lo_put(%s, %s, %s)", (oid, offset, bytes(piece)))
            self._conn.execute("INSERT INTO media (ref, oid) VALUES (%s, %s)", (ref, oid))

    def read(self, ref: str) -> Iterator[bytes]:
        (oid,) = self._conn.execute(  # type: ignore[misc]
            "SELECT oid FROM media WHERE ref = %s", (ref,)).fetchone()

        def blobs() -> Iterator[bytes]:
            offset = 0
            while True:
                (data,) = self._conn.execute(  # type: ignore[misc]
                    "SELECT lo_get(%s, %s, %s)", (oid, offset, PIECE)).fetchone()
                if not data:
                    return
                yield bytes(data)
                offset += len(data)

        return self._keyring.open_stream(TENANT, blobs(), f"media:{TENANT}:{ref}".encode())

    def close(self) -> None:
        self._conn.close()


def _measure(write: Callable[[int], str], read: Callable[[str], Iterator[bytes]],
             size: int, pids: Sequence[int]) -> dict[str, float]:
    count = max(BYTES_EACH // size, 1)
    mb = count * size / 1e6

    def cpu() -> float:
        return sum(sum(cpu_times(pid)) for pid in pids)

    cpu0, wall0 = cpu(), time.perf_counter()
    refs = [write(size) for _ in range(count)]
    cpu1, wall1 = cpu(), time.perf_counter()
    read_bytes = sum(len(chunk) for ref in refs for chunk in read(ref))
    cpu2, wall2 = cpu(), time.perf_counter()
    assert read_bytes == count * size
    return {"write MB/s": mb / (wall1 - wall0), "write CPU ms/MB": (cpu1 - cpu0) * 1000 / mb,
            "read MB/s": mb / (wall2 - wall1), "read CPU ms/MB": (cpu2 - cpu1) * 1000 / mb}


def run() -> dict[str, Any]:
    keyring = _keyring()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp, run_postgres() as server:
        files = MediaFiles(Path(tmp) / "media", keyring, node="bench")

        def write_file(size: int) -> str:
            with files.partial(TENANT) as partial:
                partial.fill(_plain(size))
                return partial.keep("clean")

        def read_file(ref: str) -> Iterator[bytes]:
            return files.read("clean", TENANT, ref)

        objects = _LargeObjects(server.dsn(), keyring)
        refs = iter(range(10**9))

        def write_object(size: int) -> str:
            ref = f"ref{next(refs)}"
            objects.write(ref, _plain(size))
            return ref

        try:
            for label, size in SIZES.items():
                on_disk = _measure(write_file, read_file, size, [os.getpid()])
                in_pg = _measure(write_object, objects.read, size,
                                 [os.getpid(), postmaster_pid(server)])
                for what in ("write", "read"):
                    figures[f"{label}, {what}: directory / large objects, MB/s"] = (
                        f"{on_disk[f'{what} MB/s']:.0f} / {in_pg[f'{what} MB/s']:.0f}")
                    figures[f"{label}, {what}: directory / large objects, CPU ms per MB"] = (
                        f"{on_disk[f'{what} CPU ms/MB']:.1f} / {in_pg[f'{what} CPU ms/MB']:.1f}")
        finally:
            objects.close()
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m bench.media_storage").parse_args(argv)
    print_section(sys.modules[__name__], run())


if __name__ == "__main__":
    main()
