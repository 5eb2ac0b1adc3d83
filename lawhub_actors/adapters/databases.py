"""Which engine holds the journal and the store: the settings' choice
(``[storage] backend``) made into the two databases the runtime opens.

SQLite: two files under the data dir (the journal apart, fsynced at every
commit; the store beside it). PostgreSQL: one database for both, at
``LAWHUB_DATABASE_URL`` (``preflight`` makes sure it is set).
"""

from __future__ import annotations

import time
from pathlib import Path

from lawhub_actors.adapters import pg_schema, store_migrations
from lawhub_actors.adapters.journal import JournalDatabase
from lawhub_actors.adapters.pg_connection import PgConnection
from lawhub_actors.adapters.pg_journal import PgJournalDatabase
from lawhub_actors.adapters.pg_store import PgDatabase
from lawhub_actors.adapters.sqlite_journal import SqliteJournalFile
from lawhub_actors.adapters.sqlite_store import SqliteDatabase
from lawhub_actors.adapters.store import Database, Store
from lawhub_actors.adapters.store_tx import Sealer, Tx
from lawhub_actors.settings import Secrets, Settings

JOURNAL_FILE = "journal.sqlite3"
EMBEDDED_NODE = "embedded"
"""The node's name when none is given (one process: the embedded default)."""


def _database_url(secrets: Secrets) -> str:
    if secrets.database_url is None:
        raise ValueError('[storage] backend = "postgres" needs LAWHUB_DATABASE_URL')
    return secrets.database_url.get_secret_value()


def store_database(settings: Settings, secrets: Secrets) -> Database:
    if settings.storage.backend == "postgres":
        return PgDatabase(_database_url(secrets), auto_migrate=settings.storage.auto_migrate,
                          stuck_after_s=settings.cluster.lease_s / 2,
                          node=secrets.node_id or EMBEDDED_NODE)
    return SqliteDatabase(settings.storage.sqlite_path(secrets.data_dir))


def journal_database(settings: Settings, secrets: Secrets) -> JournalDatabase:
    """The journal's (on PostgreSQL, open it after the store: the store's
    migrations make its table)."""
    if settings.storage.backend == "postgres":
        return PgJournalDatabase(_database_url(secrets))
    return SqliteJournalFile(journal_file(secrets.data_dir))


def journal_file(data_dir: Path) -> Path:
    return data_dir / JOURNAL_FILE


def migrate(settings: Settings, secrets: Secrets, sealer: Sealer) -> tuple[int, int]:
    """Create or upgrade the schema (``python run.py migrate``): the version
    it was at and the one it is at now. Raises
    :class:`~lawhub_actors.adapters.store_migrations.SchemaTooNew` for a
    database a newer gateway made."""
    if settings.storage.backend == "postgres":
        conn = PgConnection.connect(_database_url(secrets), application_name="lawhub-migrate")
        try:
            return pg_schema.migrate(conn, lambda c: Tx(c, sealer, time.time())), pg_schema.VERSION
        finally:
            conn.close()
    path = settings.storage.sqlite_path(secrets.data_dir)
    before = store_migrations.file_version(path)
    Store(SqliteDatabase(path), sealer).close()  # opening a file upgrades it
    return before, store_migrations.VERSION
