"""The store on SQLite (WAL), the embedded default: one file, one process.

``synchronous=NORMAL`` is enough here: the journal (``synchronous=FULL``)
is the truth and the partitions' cursors commit with the facts, so a lost
tail is replayed. The file, its readers and its checkpointer are a
:class:`~lawhub_actors.adapters.sqlite_common.SqliteFile`, as the journal's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from lawhub_actors.adapters.outbound_schema import OUTBOUND_SCHEMA
from lawhub_actors.adapters.sql import Connection
from lawhub_actors.adapters.sqlite_common import SqliteFile
from lawhub_actors.adapters.sqlite_schema import SCHEMA
from lawhub_actors.adapters.store_migrations import check_refs, migrate
from lawhub_actors.adapters.store_rows import FeedEvent
from lawhub_actors.adapters.store_tx import Tx


class SqliteDatabase:
    name = "sqlite"
    begin = "BEGIN IMMEDIATE"
    row_lock = ""
    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
    writes_apart = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = SqliteFile(path, synchronous="NORMAL")

    def prepare(self, tx_of: Callable[[Connection], Tx]) -> Connection:
        writer = self._file.open(SCHEMA + OUTBOUND_SCHEMA)
        migrate(writer, tx_of)
        check_refs(writer, tx_of(writer))
        return writer

    def run(self, conn: Connection, *statements: str) -> None:
        for statement in statements:  # in-process: no round trips to save
            conn.execute(statement)

    def recover(self, writer: Connection) -> Connection:
        assert isinstance(writer, sqlite3.Connection)
        return self._file.recover(writer)

    def reader(self) -> Connection:
        return self._file.reader()

    def commit(self, writer: Connection, events: Sequence[FeedEvent]) -> None:
        writer.execute("COMMIT")  # one node: its hub hears its own commits

    def notify(self, conn: Connection, channel: str, payload: str) -> None:
        return None  # one node: no one to tell

    def committed(self) -> None:
        self._file.committed()

    def store_wide(self, error: Exception) -> bool:
        """A constraint or a value SQLite cannot hold is the work's own fault."""
        return isinstance(error, sqlite3.DatabaseError) and not isinstance(
            error, sqlite3.IntegrityError | sqlite3.DataError)

    def close(self) -> None:
        self._file.close()
