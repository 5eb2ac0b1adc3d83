"""The store's and the journal's tables on PostgreSQL, and their version.

One schema for both engines: the SQLite DDL of :mod:`sqlite_schema` and
:mod:`outbound_schema`, with PostgreSQL's names for its types
(:func:`pg_ddl`), plus what SQLite has without asking — a ``rowid`` that
orders rows as they were inserted — and the journal.

:func:`migrate` brings a database to :data:`VERSION` under an advisory
lock (nodes starting together migrate once); a database newer than this
code is refused (:class:`SchemaTooNew`), as is one this code would have to
upgrade when migrating is left to ``python run.py migrate``
(:class:`SchemaOutdated`). Version 5 is the first on PostgreSQL (SQLite's
steps 2 to 5 are in :mod:`store_migrations`); later steps are added to
:data:`STEPS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lawhub_actors.adapters.outbound_schema import OUTBOUND_SCHEMA
from lawhub_actors.adapters.sql import Connection
from lawhub_actors.adapters.sqlite_schema import SCHEMA
from lawhub_actors.adapters.store_migrations import VERSION, SchemaTooNew, check_refs
from lawhub_actors.adapters.store_tx import Tx

__all__ = ["VERSION", "SchemaOutdated", "SchemaTooNew", "migrate", "pg_ddl", "require_current",
           "schema_version"]

MIGRATION_LOCK = 0x1A_48_0B_01
"""The advisory lock key migrations hold (any number, the same on every node)."""

_TYPES = {"REAL": "DOUBLE PRECISION", "INTEGER": "BIGINT", "BLOB": "BYTEA"}

JOURNAL = """
CREATE TABLE IF NOT EXISTS journal (
    seq BIGINT PRIMARY KEY,             -- taken under JOURNAL_LOCK: commit order is seq order
    received_at DOUBLE PRECISION NOT NULL,
    key_id TEXT NOT NULL,
    body BYTEA NOT NULL                 -- sealed
);
"""

INSERTION_ORDER = ("audit", "outbound")
"""Tables whose reads break ties by ``rowid`` (insertion order)."""


class SchemaOutdated(Exception):
    """The database is older than this code and migrating at start is off."""


def pg_ddl(sqlite_ddl: str) -> str:
    """``sqlite_ddl`` with PostgreSQL's names for its column types."""
    return re.sub(r"\b(REAL|INTEGER|BLOB)\b", lambda m: _TYPES[m.group(1)], sqlite_ddl)


def _first_version(conn: Connection) -> None:
    for statement in (pg_ddl(SCHEMA + OUTBOUND_SCHEMA) + JOURNAL).split(";"):
        if statement.strip():
            conn.execute(statement)
    for table in INSERTION_ORDER:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN rowid BIGINT"
                     " GENERATED ALWAYS AS IDENTITY")


def _cluster_tables(conn: Connection) -> None:
    """Nodes and partition leases, and outbound messages by recipient (made
    by version 5 since they joined the schema; a database made before has
    them added)."""
    schema = pg_ddl(SCHEMA)
    for table in ("nodes", "partitions", "config_versions", "conversation_seq"):
        start = schema.index(f"CREATE TABLE IF NOT EXISTS {table} (")
        conn.execute(schema[start:schema.index(";", start)])
    conn.execute("CREATE INDEX IF NOT EXISTS outbound_recipient"
                 " ON outbound (tenant, recipient, state)")


STEPS: tuple[tuple[int, Callable[[Connection], None]], ...] = (
    (5, _first_version), (6, _cluster_tables))
"""Each version and the step that makes it, in order."""


def schema_version(conn: Connection) -> int:
    """The database's schema version (0: none yet)."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def require_current(conn: Connection, *, upgrading: bool = False) -> int:
    """The database's version, if this code can run on it (after migrating,
    when ``upgrading``)."""
    version = schema_version(conn)
    if version > VERSION:
        raise SchemaTooNew(f"the database's schema is version {version}; this code knows "
                           f"up to {VERSION}: run a newer gateway")
    if version < VERSION and not upgrading:
        raise SchemaOutdated(f"the database's schema is version {version}, this code needs "
                             f"{VERSION}: run `python run.py migrate`")
    return version


def migrate(conn: Connection, tx_of: Callable[[Connection], Tx], *, upgrade: bool = True) -> int:
    """Bring the database to :data:`VERSION` (``upgrade=False``: only check
    that it is there); the version it was at. ``conn`` is in autocommit mode."""
    conn.execute("SELECT pg_advisory_lock(?)", (MIGRATION_LOCK,))
    try:
        version = require_current(conn, upgrading=upgrade)
        for step, run in STEPS:
            if version < step:
                conn.execute("BEGIN")
                try:
                    run(conn)
                    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (step,))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        check_refs(conn, tx_of(conn))
        return version
    finally:
        conn.execute("SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK,))
