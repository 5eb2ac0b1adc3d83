"""Media files at rest: sealed per tenant, streamed, never whole in memory.

Layout under the data dir::

    media/.partial/<node>/<ref>   being written (a crash leaves it: its node sweeps it at start)
    media/clean/<tenant>/<ref>    passed every check: served to the tenant
    media/quarantine/<tenant>/<ref>  infected, refused or unscanned: operators only

A file holds :meth:`Keyring.seal_stream` output (a header, then one
authenticated frame per chunk) with ``media:<tenant>:<ref>`` as associated
data, so a file moved to another tenant's or another ref's name does not
open. Writes go to ``.partial`` and are renamed into place after an fsync:
a reader never sees half a file.

Several nodes serve any media ref when ``media/`` is one directory they all
mount (a shared filesystem; on one machine, the data dir of ``[server]
processes``): names are random refs, files are written once and renamed
into place, and each node sweeps only its own half-written files.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from lawhub_actors.core.crypto import DEFAULT_CHUNK_SIZE, Keyring

Shelf = Literal["clean", "quarantine"]
READ_BYTES = 256 * 1024


def _aad(tenant: str, ref: str) -> bytes:
    return f"media:{tenant}:{ref}".encode()


class Partial:
    """A sealed file being written; :meth:`keep` moves it into place, leaving
    the ``with`` block without keeping it deletes it."""

    def __init__(self, files: MediaFiles, tenant: str) -> None:
        self.tenant = tenant
        self.ref = uuid.uuid4().hex
        self.path = files.partial_dir / self.ref
        self._files = files
        self._kept = False

    def __enter__(self) -> Partial:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._kept:
            self.path.unlink(missing_ok=True)

    def fill(self, chunks: Iterable[bytes]) -> None:
        """Seal ``chunks`` into the file as they come, then make it durable."""
        frames = self._files.keyring.seal_stream(
            self.tenant, chunks, DEFAULT_CHUNK_SIZE, _aad(self.tenant, self.ref)
        )
        with self.path.open("wb") as out:
            for frame in frames:
                out.write(frame)
            out.flush()
            os.fsync(out.fileno())

    def plaintext(self) -> Iterator[bytes]:
        """What :meth:`fill` wrote, decrypted frame by frame (e.g. to scan it)."""
        return self._files.read_path(self.path, self.tenant, self.ref)

    def keep(self, shelf: Shelf) -> str:
        """Move into ``shelf``; the ref."""
        target = self._files.root / shelf / self.tenant / self.ref
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, target)
        _fsync_dir(target.parent)
        self._kept = True
        return self.ref


class MediaFiles:
    def __init__(self, root: Path, keyring: Keyring, node: str = "embedded") -> None:
        """``node``: whose half-written files are its own (several nodes may
        share ``root``: each clears only what it left itself)."""
        self.root = root
        self.keyring = keyring
        self.partial_dir = root / ".partial" / re.sub(r"[^A-Za-z0-9._-]", "_", node)
        if self.partial_dir.exists():  # a crash left them half-written: never acknowledged
            shutil.rmtree(self.partial_dir)
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        for left in self.partial_dir.parent.iterdir():  # the layout before nodes had dirs
            if left.is_file():
                left.unlink(missing_ok=True)

    def partial(self, tenant: str) -> Partial:
        return Partial(self, tenant)

    def read(self, shelf: Shelf, tenant: str, ref: str) -> Iterator[bytes]:
        """The plaintext of a kept file, frame by frame; raises
        ``FileNotFoundError`` or a ``CryptoError`` (tampered, wrong tenant)."""
        return self.read_path(self.root / shelf / tenant / ref, tenant, ref)

    def read_path(self, path: Path, tenant: str, ref: str) -> Iterator[bytes]:
        handle = path.open("rb")

        def blobs() -> Iterator[bytes]:
            with handle:
                while block := handle.read(READ_BYTES):
                    yield block

        return self.keyring.open_stream(tenant, blobs(), _aad(tenant, ref))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
