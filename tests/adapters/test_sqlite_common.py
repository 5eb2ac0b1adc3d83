"""WAL checkpoints on a thread of their own, never inside a writer's commit."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from lawhub_actors.adapters.sqlite_common import Checkpointer, connect
from tests.waits import until_sync

ROW = os.urandom(64 * 1024)
ROWS = 96
"""6 MiB in 96 commits: past SQLite's automatic checkpoint (1,000 pages, ~4 MiB)."""


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A writer of ``tmp_path/db`` that leaves checkpoints to a checkpointer
    (up to its backstop, far beyond what a test writes), kept open (closing
    the last connection would checkpoint)."""
    conn = connect(tmp_path / "db", synchronous="NORMAL", checkpointer=True)
    conn.execute("CREATE TABLE t (b BLOB)")
    yield conn
    conn.close()


def _write(conn: sqlite3.Connection) -> None:
    for _ in range(ROWS):
        conn.execute("INSERT INTO t VALUES (?)", (ROW,))


def _in_database(tmp_path: Path) -> int:
    """Bytes of the database file proper (what checkpoints copied there)."""
    return (tmp_path / "db").stat().st_size


def test_a_writer_with_a_checkpointer_does_not_copy_the_wal_in_its_commits(
        writer: sqlite3.Connection, tmp_path: Path) -> None:
    _write(writer)
    assert _in_database(tmp_path) < len(ROW) * 2
    assert (tmp_path / "db-wal").stat().st_size > len(ROW) * ROWS


def test_the_checkpointer_copies_the_wal_soon_after_a_commit_is_noted(
        writer: sqlite3.Connection, tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path / "db", synchronous="NORMAL", every_s=0.01)
    try:
        _write(writer)
        assert checkpointer.checkpoints == 0  # nothing noted, nothing done
        checkpointer.noted()
        until_sync(lambda: checkpointer.checkpoints == 1, what="a checkpoint")
        assert _in_database(tmp_path) > len(ROW) * ROWS
    finally:
        checkpointer.close()


def test_the_wal_starts_over_after_a_checkpoint_instead_of_growing(
        writer: sqlite3.Connection, tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path / "db", synchronous="NORMAL", every_s=0.01)
    try:
        _write(writer)
        checkpointer.noted()
        until_sync(lambda: checkpointer.checkpoints == 1, what="a checkpoint")
        wal = (tmp_path / "db-wal").stat().st_size
        _write(writer)
        assert (tmp_path / "db-wal").stat().st_size == wal
    finally:
        checkpointer.close()


def test_close_makes_a_last_checkpoint(writer: sqlite3.Connection, tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path / "db", synchronous="NORMAL", every_s=60)
    _write(writer)
    checkpointer.noted()
    checkpointer.close()
    assert _in_database(tmp_path) > len(ROW) * ROWS
    assert checkpointer.checkpoints == 1


def test_a_failed_checkpoint_is_logged_and_asked_again_by_the_next_commit(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "db").write_bytes(b"not a database" * 100)
    conn: sqlite3.Connection | None = None
    checkpointer = Checkpointer(tmp_path / "db", synchronous="NORMAL", every_s=0.01)
    try:
        checkpointer.noted()
        until_sync(lambda: "checkpoint failed" in caplog.text, what="the failure's log line")
        assert checkpointer.checkpoints == 0
        (tmp_path / "db").unlink()
        conn = connect(tmp_path / "db", synchronous="NORMAL", checkpointer=True)
        conn.execute("CREATE TABLE t (b BLOB)")
        _write(conn)
        checkpointer.noted()
        until_sync(lambda: checkpointer.checkpoints == 1, what="a checkpoint")
        assert _in_database(tmp_path) > len(ROW) * ROWS
    finally:
        checkpointer.close()
        if conn is not None:
            conn.close()


def test_the_checkpointer_leaves_no_connection_open_so_the_last_close_removes_the_wal(
        writer: sqlite3.Connection, tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path / "db", synchronous="NORMAL", every_s=60)
    _write(writer)
    checkpointer.close()
    writer.close()
    assert not (tmp_path / "db-wal").exists()


def test_under_a_steady_stream_of_commits_the_wal_stays_bounded(tmp_path: Path) -> None:
    """A checkpoint racing commits never finds every frame copied, so only the
    writer's backstop lets the WAL start over (without it: 12.8 MB here; with
    it ~1-4 MB, depending on how the checkpointer thread is scheduled)."""
    conn = connect(tmp_path / "db", synchronous="NORMAL", checkpointer=True, backstop_pages=100)
    conn.execute("CREATE TABLE t (b BLOB)")
    checkpointer = Checkpointer(tmp_path / "db", synchronous="NORMAL", every_s=0.005)
    largest = 0
    try:
        for _ in range(200):
            conn.execute("INSERT INTO t VALUES (?)", (ROW,))
            checkpointer.noted()
            largest = max(largest, (tmp_path / "db-wal").stat().st_size)
    finally:
        checkpointer.close()
        conn.close()
    assert largest < 6 * 1024 * 1024, largest
