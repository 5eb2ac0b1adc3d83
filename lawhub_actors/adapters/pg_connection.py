"""A psycopg 3 connection that speaks :class:`~lawhub_actors.adapters.sql.Connection`:
the store's operations, written once with ``?`` placeholders, run on
PostgreSQL unchanged.

The connection is in autocommit mode and transactions are the caller's
statements (``BEGIN``, ``SAVEPOINT``, ``COMMIT``), as on SQLite. Python's
``bool`` is stored as 0/1, as SQLite stores it (the flag columns are
integers on both engines).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.numeric import IntDumper

from lawhub_actors.adapters.sql import Connection, Cursor

CONNECT_TIMEOUT_S = 10


class _BoolAsInt(IntDumper):
    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


REPLAN_FIRST_S = 2.0
REPLAN_EVERY_S = 60.0


class Replans:
    """When a connection drops its cached plans (``pg_store`` says why):
    ``REPLAN_FIRST_S`` after it opens, then at doubling intervals up to
    every ``REPLAN_EVERY_S``."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._after = REPLAN_FIRST_S
        self._at = clock() + self._after

    def due(self) -> bool:
        now = self._clock()
        if now < self._at:
            return False
        self._after = min(self._after * 2, REPLAN_EVERY_S)
        self._at = now + self._after
        return True


class PgConnection:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn
        conn.adapters.register_dumper(bool, _BoolAsInt)
        self.replans = Replans(time.monotonic)

    @classmethod
    def connect(cls, url: str, *, application_name: str = "lawhub") -> PgConnection:
        return cls(psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                   application_name=application_name))

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    @property
    def closed(self) -> bool:
        return self.raw.closed or self.raw.broken

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return self.raw.execute(pg_sql(sql), tuple(parameters))

    def script(self, sql: str) -> None:
        """Statements without parameters, ``;``-separated, in one round trip
        (the simple query protocol)."""
        self.raw.execute(sql.encode(), prepare=False)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        cursor = self.raw.cursor()
        cursor.executemany(pg_sql(sql), [tuple(row) for row in parameters])
        return cursor

    def close(self) -> None:
        self.raw.close()


@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """``sql`` with psycopg's placeholders: ``?`` becomes ``%s`` (and a literal
    ``%``, ``%%``). The store's SQL has no ``?`` inside a string literal."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgConnections:
    """A writer's and per-thread readers' connections to one database:
    a connection that broke is replaced when next asked for."""

    def __init__(self, url: str, name: str, *, setup: Sequence[str] = ()) -> None:
        self.url = url
        self._name = name
        self._setup = tuple(setup)
        self._local = threading.local()
        self._opened: list[PgConnection] = []
        self._lock = threading.Lock()

    def connect(self, role: str = "writer") -> PgConnection:
        """A new connection (``setup`` statements run on it), closed with the rest."""
        conn = PgConnection.connect(self.url, application_name=f"{self._name}-{role}")
        for statement in self._setup:
            conn.execute(statement)
        with self._lock:
            self._opened = [*(c for c in self._opened if not c.closed), conn]
        return conn

    def reader(self) -> PgConnection:
        """This thread's read connection (autocommit: every statement reads a
        committed snapshot, never blocking the writer)."""
        conn: PgConnection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = self.connect("reader")
        elif conn.replans.due():
            conn.execute("DISCARD PLANS")
        return conn

    def recover(self, writer: Connection) -> Connection:
        """``writer`` rolled back, or a new connection if it broke (or
        ``writer`` itself while the database cannot be reached: the next
        commit fails and comes back here)."""
        assert isinstance(writer, PgConnection)
        try:
            if not writer.closed:
                if writer.in_transaction:
                    writer.execute("ROLLBACK")
                return writer
        except psycopg.Error:
            pass
        try:
            fresh = self.connect()
        except psycopg.Error:
            return writer
        writer.close()
        return fresh

    def close(self) -> None:
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()
