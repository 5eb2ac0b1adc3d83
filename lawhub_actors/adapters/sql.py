"""What the store's and the journal's operations ask of a database
connection, whichever engine is behind it.

Every operation (:mod:`store_tx`, :mod:`store_reads`, :mod:`outbound_store`)
is written once, in the SQL both engines speak — ``?`` placeholders,
``ON CONFLICT``, ``CASE`` instead of SQLite's two-argument ``MAX`` — against
this protocol. A ``sqlite3.Connection`` is one as it is;
:class:`~lawhub_actors.adapters.pg_connection.PgConnection` makes a psycopg
connection one (it rewrites the placeholders).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...

    def close(self) -> None: ...


class Connection(Protocol):
    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...

    def close(self) -> None: ...
