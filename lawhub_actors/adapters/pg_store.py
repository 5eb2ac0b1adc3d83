"""The store on PostgreSQL, the system of record when several nodes share it.

The same operations as on SQLite (:mod:`store_tx`, run through
:class:`~lawhub_actors.adapters.pg_connection.PgConnection`); what differs
is here: the schema is brought up to date at open (or only checked, when
migrating is left to ``python run.py migrate``), a connection that broke is
replaced at the next commit or read, and PostgreSQL's errors are sorted
into the work's own (a constraint, a value it cannot hold: the work is
undone alone) and the database's (the whole batch fails and is tried again).
Readers each have their own connection (autocommit: every statement reads
a committed snapshot, never blocking the writer).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg

from lawhub_actors.adapters.pg_connection import PgConnection
from lawhub_actors.adapters.pg_schema import migrate
from lawhub_actors.adapters.sql import Connection
from lawhub_actors.adapters.store_tx import Tx


class PgDatabase:
    name = "postgres"
    begin = "BEGIN"

    def __init__(self, url: str, *, auto_migrate: bool = True) -> None:
        self.url = url
        self._auto_migrate = auto_migrate
        self._writer: PgConnection | None = None
        self._local = threading.local()
        self._readers: list[PgConnection] = []
        self._lock = threading.Lock()

    def prepare(self, tx_of: Callable[[Connection], Tx]) -> Connection:
        self._writer = writer = PgConnection.connect(self.url, application_name="lawhub-store")
        migrate(writer, tx_of, upgrade=self._auto_migrate)
        return writer

    def recover(self, writer: Connection) -> Connection:
        assert isinstance(writer, PgConnection)
        try:
            if not writer.closed:
                if writer.in_transaction:
                    writer.execute("ROLLBACK")
                return writer
        except psycopg.Error:
            pass
        try:
            self._writer = PgConnection.connect(self.url, application_name="lawhub-store")
        except psycopg.Error:
            return writer  # still unreachable: the next commit fails and comes back here
        writer.close()
        return self._writer

    def reader(self) -> Connection:
        conn: PgConnection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = PgConnection.connect(self.url, application_name="lawhub-reader")
            self._local.conn = conn
            with self._lock:
                self._readers = [*(c for c in self._readers if not c.closed), conn]
        return conn

    def committed(self) -> None:
        return None

    def store_wide(self, error: Exception) -> bool:
        """A constraint or a value PostgreSQL cannot hold is the work's own fault."""
        return isinstance(error, psycopg.Error) and not isinstance(
            error, psycopg.IntegrityError | psycopg.DataError)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        with self._lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
