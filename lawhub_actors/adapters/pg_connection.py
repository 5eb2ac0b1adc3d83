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
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.numeric import IntDumper

from lawhub_actors.adapters.sql import Cursor

CONNECT_TIMEOUT_S = 10


class _BoolAsInt(IntDumper):
    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class PgConnection:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn
        conn.adapters.register_dumper(bool, _BoolAsInt)

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
