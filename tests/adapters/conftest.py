"""The store's and the journal's suites run on both engines: ``backend`` is
SQLite (a file in the test's temp dir) or PostgreSQL (a fresh database on
the session's private server)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from lawhub_actors.adapters.journal import JournalDatabase
from lawhub_actors.adapters.pg_journal import PgJournalDatabase
from lawhub_actors.adapters.pg_store import PgDatabase
from lawhub_actors.adapters.sqlite_journal import SqliteJournalFile
from lawhub_actors.adapters.sqlite_store import SqliteDatabase
from lawhub_actors.adapters.store import Database, Store
from lawhub_actors.core.crypto import Keyring
from lawhub_actors.simulator.postgres import postgres_bin

KEYRING = Keyring({1: os.urandom(32)}, 1)
"""The suites' keys (a store refuses another master key than the one it began with)."""


@dataclass(frozen=True)
class Backend:
    name: str
    database: Callable[[], Database]
    """A new handle on this test's one database (reopening sees what was written)."""
    stored: Callable[[], bytes]
    """Everything the database holds, as the engine keeps or dumps it."""
    journal: Callable[[], JournalDatabase]
    """A new handle on this test's journal (on PostgreSQL its table is there)."""
    operational_error: type[Exception]
    integrity_error: type[Exception]
    url: str
    """PostgreSQL's URL of this test's database ("" on SQLite)."""
    read_only: str
    """A statement after which the writer's connection cannot commit a write."""
    writable: str


def _sqlite(tmp_path: Path) -> Backend:
    path = tmp_path / "store.sqlite3"
    return Backend(
        "sqlite", lambda: SqliteDatabase(path),
        lambda: b"".join(f.read_bytes() for f in sorted(tmp_path.iterdir()) if f.is_file()),
        lambda: SqliteJournalFile(tmp_path / "journal.sqlite3"), sqlite3.OperationalError,
        sqlite3.IntegrityError, "",
        "PRAGMA query_only = ON", "PRAGMA query_only = OFF")


def _postgres(url: str) -> Backend:
    def journal() -> JournalDatabase:
        Store(PgDatabase(url), KEYRING).close()  # its migrations make the journal's table
        return PgJournalDatabase(url)

    def dump() -> bytes:
        binaries = postgres_bin()
        assert binaries is not None
        return subprocess.run([str(binaries / "pg_dump"), "--data-only", "-d", url],
                              capture_output=True, check=True, timeout=60).stdout

    return Backend(
        "postgres", lambda: PgDatabase(url), dump, journal,
        psycopg.OperationalError, psycopg.IntegrityError, url,
        "SET default_transaction_read_only = on", "SET default_transaction_read_only = off")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return _sqlite(tmp_path)
    return _postgres(request.getfixturevalue("postgres_url"))


def in_clear(dumped: bytes, secret: str) -> bool:
    """Whether ``secret`` is in ``dumped`` as text, or as the hex a dump
    writes a binary column as."""
    raw = secret.encode()
    return raw in dumped or raw.hex().encode() in dumped.lower()
