"""A psycopg 3 connection that speaks :class:`~lawhub_actors.adapters.sql.Connection`:
the store's operations, written once with ``?`` placeholders, run on
PostgreSQL unchanged.

The connection is in autocommit mode and transactions are the caller's
statements (``BEGIN``, ``SAVEPOINT``, ``COMMIT``), as on SQLite. Python's
``bool`` is stored as 0/1, as SQLite stores it (the flag columns are
integers on both engines).

Statements run on libpq directly (:class:`_Statements`), not through
psycopg's cursors: each statement is prepared once per connection and then
executed with one blocking ``PQexecPrepared`` (the GIL released while it
waits), its parameters made from the few Python types the store binds and
its rows read in text form. Measured on this machine kind: ~8 us of client
CPU and ~28 us wall per statement, against ~43 us and ~92 us through a
cursor — and the store's cost is its statements (an inbound message takes
several, a send some thirty). A statement with another parameter type
goes through psycopg as before.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors, pq
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
        # psycopg prepares nothing here: it would DEALLOCATE ALL after any ROLLBACK
        # (a work undone to its savepoint), the thin path's statements with its own.
        conn.prepare_threshold = None
        self.replans = Replans(time.monotonic)
        self._statements = _Statements(conn)

    @classmethod
    def connect(cls, url: str, *, application_name: str = "lawhub") -> PgConnection:
        return cls(psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                   application_name=application_name))

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    @property
    def closed(self) -> bool:
        return (self.raw.closed or self.raw.broken
                or self.raw.pgconn.status != pq.ConnStatus.OK)

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        rows = self._statements.run(sql, parameters)
        if rows is None:  # a parameter type the thin path does not make
            return self.raw.execute(pg_sql(sql), tuple(parameters))
        return rows

    def script(self, sql: str) -> None:
        """Statements without parameters, ``;``-separated, in one round trip
        (the simple query protocol)."""
        self._statements.script(sql)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        """``sql`` for each row of ``parameters``. An ``INSERT ... VALUES (?, ...)``
        becomes one statement of many rows (a journal commit's bodies, a
        commit's events: one round trip); any other, one per row."""
        rows = [tuple(row) for row in parameters]
        match = _ONE_ROW.fullmatch(sql)
        changed = 0
        if match is None or len(rows) < 2:
            for row in rows:
                changed += max(self.execute(sql, row).rowcount, 0)
            return _Rows([], changed)
        for start in range(0, len(rows), MANY_ROWS_MAX):
            chunk = rows[start:start + MANY_ROWS_MAX]
            many = match["head"] + ", ".join([match["row"]] * len(chunk))
            flat = [value for row in chunk for value in row]
            # unprepared: its text changes with the count of rows
            done: Cursor | None = self._statements.run(many, flat, prepare=False)
            if done is None:  # a parameter type the thin path does not make
                done = self.raw.execute(pg_sql(many), flat)
            changed += max(done.rowcount, 0)
        return _Rows([], changed)

    def close(self) -> None:
        self.raw.close()


_ONE_ROW = re.compile(r"(?P<head>INSERT\b.*\bVALUES\s*)(?P<row>\((?:\s*\?\s*,)*\s*\?\s*\))\s*",
                      re.DOTALL | re.IGNORECASE)
"""An insert of one row of parameters and nothing after it."""
MANY_ROWS_MAX = 1000
"""Rows in one statement of :meth:`PgConnection.executemany` (libpq takes at
most 65,535 parameters in one)."""
_TEXT, _BINARY = 0, 1
_INT8, _FLOAT8, _BYTEA, _UNKNOWN = 20, 701, 17, 0
PREPARED_MAX = 512
"""Statements prepared per connection; past it, a new one runs unnamed
(the store's SQL is a fixed set of about a hundred)."""
_PREPARABLE = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"})


def _load_bool(data: bytes) -> bool:
    return data == b"t"


def _load_bytea(data: bytes) -> bytes:
    if data[:2] == b"\\x":  # bytea_output = hex, the server's default
        return bytes.fromhex(data[2:].decode())
    return pq.Escaping().unescape_bytea(data)  # bytea_output = escape


def _load_text(data: bytes) -> str:
    return data.decode()


_LOADERS: dict[int, Callable[[bytes], Any]] = {
    16: _load_bool, 17: _load_bytea, 20: int, 21: int, 23: int, 26: int, 700: float,
    701: float, 1700: lambda data: Decimal(data.decode()), 25: _load_text,
    1043: _load_text, 19: _load_text, 1042: _load_text,
}
"""Text-form values by type oid, as psycopg loads them; any other type
is loaded by psycopg's own loader for it."""


class _Rows:
    """A statement's outcome as :class:`~lawhub_actors.adapters.sql.Cursor`:
    its rows read at once (the store's results are small)."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    def close(self) -> None:
        self._rows = []


class _Statements:
    """One connection's statements run on libpq (see the module's text)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._names: dict[tuple[str, tuple[int, ...]], bytes] = {}

    def run(self, sql: str, parameters: Sequence[Any], *, prepare: bool = True) -> _Rows | None:
        """The outcome, or ``None`` when a parameter's type is not one this
        path makes (then the caller uses psycopg). ``prepare`` false: run it
        unnamed (a statement whose text is seldom the same twice)."""
        made = _params(parameters)
        if made is None:
            return None
        values, types, formats = made
        pgconn = self._conn.pgconn
        key = (sql, types)
        name = self._names.get(key)
        if name is None and prepare and len(self._names) < PREPARED_MAX and (
                sql.split(None, 1)[0].upper() in _PREPARABLE):
            name = f"lh{len(self._names)}".encode()
            self._check(pgconn.prepare(name, _numbered(sql).encode(), types))
            self._names[key] = name
        if name is None:
            result = pgconn.exec_params(_numbered(sql).encode(), values, types, formats)
        else:
            # libpq takes None for a NULL, which psycopg's stub does not say
            result = pgconn.exec_prepared(name, values, formats)  # type: ignore[arg-type]
        self._check(result)  # an error keeps its result: psycopg reads its details later
        try:
            return self._rows(result)
        finally:
            result.clear()

    def script(self, sql: str) -> None:
        """``sql`` by the simple query protocol (libpq answers with the last
        statement's result, or the first that failed)."""
        result = self._conn.pgconn.exec_(sql.encode())
        self._check(result)  # an error keeps its result: psycopg reads its details later
        result.clear()

    def _check(self, result: pq.abc.PGresult) -> None:
        if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            return
        pgconn = self._conn.pgconn
        if pgconn.status != pq.ConnStatus.OK or result.error_field(
                pq.DiagnosticField.SQLSTATE) is None:
            message = (result.error_message or pgconn.error_message).decode(errors="replace")
            raise psycopg.OperationalError(message.strip() or "the connection failed")
        raise errors.error_from_result(result, encoding=self._conn.info.encoding)

    def _rows(self, result: pq.abc.PGresult) -> _Rows:
        count = result.command_tuples
        if result.status != pq.ExecStatus.TUPLES_OK:
            return _Rows([], -1 if count is None else count)
        columns = range(result.nfields)
        loaders = [self._loader(result.ftype(column)) for column in columns]
        rows = []
        for row in range(result.ntuples):
            values = []
            for column in columns:
                data = result.get_value(row, column)
                values.append(None if data is None else loaders[column](data))
            rows.append(tuple(values))
        return _Rows(rows, len(rows) if count is None else count)

    def _loader(self, oid: int) -> Callable[[bytes], Any]:
        loader = _LOADERS.get(oid)
        if loader is not None:
            return loader
        adapters = self._conn.adapters  # a type psycopg does not know: text, as it does
        load = adapters.get_loader(oid, pq.Format.TEXT) or adapters.get_loader(
            _UNKNOWN, pq.Format.TEXT)
        assert load is not None
        return load(oid, self._conn).load


_MAKERS: dict[type, tuple[int, int, Callable[[Any], bytes]]] = {
    str: (_UNKNOWN, _TEXT, str.encode),
    int: (_INT8, _TEXT, lambda value: str(value).encode()),
    float: (_FLOAT8, _TEXT, lambda value: repr(value).encode()),
    bytes: (_BYTEA, _BINARY, bytes),
    bool: (_INT8, _TEXT, lambda value: b"1" if value else b"0"),
}
"""By a parameter's type: its type oid, format, and bytes. Ints (and bools,
as 0/1) go as int8, floats as float8, str as text of an unknown type
(PostgreSQL takes the column's, as psycopg sends it), bytes as binary bytea."""


def _params(parameters: Sequence[Any]) -> tuple[list[bytes | None], tuple[int, ...],
                                                list[int]] | None:
    """Each parameter's value, type oid and format (None as NULL); ``None``
    when one is of a type :data:`_MAKERS` does not hold."""
    values: list[bytes | None] = []
    types: list[int] = []
    formats: list[int] = []
    for value in parameters:
        if value is None:
            values.append(None)
            types.append(_UNKNOWN)
            formats.append(_TEXT)
            continue
        maker = _MAKERS.get(type(value))
        if maker is None:
            return None
        oid, form, dump = maker
        values.append(dump(value))
        types.append(oid)
        formats.append(form)
    return values, tuple(types), formats


@functools.lru_cache(maxsize=1024)
def _numbered(sql: str) -> str:
    """``sql`` with libpq's placeholders: the n-th ``?`` becomes ``$n``. The
    store's SQL has no ``?`` inside a string literal."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


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
