"""Sealed media files: never plaintext on disk, bound to tenant and ref, never half-kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lawhub_actors.adapters.media_files import MediaFiles
from lawhub_actors.core.crypto import CryptoError, Keyring

DATA = b"%PDF-1.7 surat kuasa " + os.urandom(300_000)


@pytest.fixture
def files(tmp_path: Path) -> MediaFiles:
    return MediaFiles(tmp_path / "media", Keyring({1: bytes(range(32))}, 1))


def _keep(files: MediaFiles, tenant: str = "firm-a") -> str:
    with files.partial(tenant) as partial:
        partial.fill(DATA[i : i + 10_000] for i in range(0, len(DATA), 10_000))
        assert b"".join(partial.plaintext()) == DATA
        return partial.keep("clean")


def test_a_kept_file_is_sealed_on_disk_and_reads_back_identical(files: MediaFiles) -> None:
    ref = _keep(files)
    raw = (files.root / "clean" / "firm-a" / ref).read_bytes()
    assert DATA[:32] not in raw and DATA[-32:] not in raw
    assert b"".join(files.read("clean", "firm-a", ref)) == DATA


def test_a_file_opens_only_for_its_own_tenant_and_name(files: MediaFiles) -> None:
    ref = _keep(files)
    stolen = files.root / "clean" / "firm-b" / ref
    stolen.parent.mkdir(parents=True)
    stolen.write_bytes((files.root / "clean" / "firm-a" / ref).read_bytes())
    with pytest.raises(CryptoError):
        b"".join(files.read("clean", "firm-b", ref))


def test_a_tampered_file_fails_to_open(files: MediaFiles) -> None:
    ref = _keep(files)
    path = files.root / "clean" / "firm-a" / ref
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(CryptoError):
        b"".join(files.read("clean", "firm-a", ref))


def test_a_partial_file_not_kept_is_deleted_and_leftovers_are_swept_at_start(
    files: MediaFiles, tmp_path: Path
) -> None:
    with files.partial("firm-a") as partial:
        partial.fill([DATA])
        path = partial.path
        assert path.exists()
    assert not path.exists()
    (files.partial_dir / "left-by-a-crash").write_bytes(b"half")
    (files.root / ".partial" / "from-before-nodes").write_bytes(b"half")  # the old layout
    other = MediaFiles(files.root, files.keyring, node="box/1")  # another node on the same dir
    (other.partial_dir / "being-written").write_bytes(b"half")
    MediaFiles(files.root, files.keyring)
    assert list(files.partial_dir.iterdir()) == []
    assert [p.name for p in other.partial_dir.iterdir()] == ["being-written"]  # not its own
    assert not (files.root / ".partial" / "from-before-nodes").exists()
