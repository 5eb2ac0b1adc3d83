"""The journal on SQLite (WAL), the embedded default: its own file,
``synchronous=FULL`` (Meta's 200 waits for the fsync). The file's write
lock (``BEGIN IMMEDIATE``) keeps a second writer — the ack path in a
process of its own — out while a commit takes its numbers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lawhub_actors.adapters.sql import Connection
from lawhub_actors.adapters.sqlite_common import Checkpointer, Readers, connect

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
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: sqlite3.Connection | None = None
        self._checkpointer: Checkpointer | None = None
        self._readers = Readers(path, synchronous="FULL")

    def open_writer(self) -> Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = writer = connect(self.path, synchronous="FULL",
                                        busy_timeout_ms=self._busy_timeout_ms, checkpointer=True)
        writer.executescript(SCHEMA)
        self._checkpointer = Checkpointer(self.path, synchronous="FULL")
        return writer

    def begin(self, writer: Connection) -> None:
        writer.execute("BEGIN IMMEDIATE")

    def recover(self, writer: Connection) -> Connection:
        if writer.in_transaction:
            writer.execute("ROLLBACK")
        return writer

    def reader(self) -> Connection:
        return self._readers.get()

    def connect(self) -> Connection:
        return connect(self.path, synchronous="FULL")

    def committed(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.noted()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        if self._writer is not None:
            self._writer.close()
        self._readers.close()
