"""The journal on SQLite (WAL), the embedded default: its own file,
``synchronous=FULL`` (Meta's 200 waits for the fsync). The file's write
lock (``BEGIN IMMEDIATE``) keeps a second writer — the ack path in a
process of its own — out while a commit takes its numbers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lawhub_actors.adapters.sql import Connection
from lawhub_actors.adapters.sqlite_common import SqliteFile, connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    key_id TEXT NOT NULL,
    body BLOB NOT NULL
);
"""


class SqliteJournalFile:
    several_writers = False

    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._file = SqliteFile(path, synchronous="FULL", busy_timeout_ms=busy_timeout_ms)

    def open_writer(self) -> Connection:
        return self._file.open(SCHEMA)

    def begin(self, writer: Connection) -> None:
        writer.execute("BEGIN IMMEDIATE")

    def recover(self, writer: Connection) -> Connection:
        assert isinstance(writer, sqlite3.Connection)
        return self._file.recover(writer)

    def reader(self) -> Connection:
        return self._file.reader()

    def connect(self) -> Connection:
        return connect(self.path, synchronous="FULL")

    def committed(self) -> None:
        self._file.committed()

    def close(self) -> None:
        self._file.close()
