"""Which engine holds the journal and the store: the settings' choice
(``[storage] backend``) made into the two databases the runtime opens.

SQLite: two files under the data dir (the journal apart, fsynced at every
commit; the store beside it). PostgreSQL: one database for both, at
``LAWHUB_DATABASE_URL`` (``preflight`` makes sure it is set).
"""

from __future__ import annotations

from pathlib import Path

from lawhub_actors.adapters.journal import JournalDatabase
from lawhub_actors.adapters.pg_journal import PgJournalDatabase
from lawhub_actors.adapters.pg_store import PgDatabase
from lawhub_actors.adapters.sqlite_journal import SqliteJournalFile
from lawhub_actors.adapters.sqlite_store import SqliteDatabase
from lawhub_actors.adapters.store import Database
from lawhub_actors.settings import Secrets, Settings

JOURNAL_FILE = "journal.sqlite3"


def _database_url(secrets: Secrets) -> str:
    if secrets.database_url is None:
        raise ValueError('[storage] backend = "postgres" needs LAWHUB_DATABASE_URL')
    return secrets.database_url.get_secret_value()


def store_database(settings: Settings, secrets: Secrets) -> Database:
    if settings.storage.backend == "postgres":
        return PgDatabase(_database_url(secrets), auto_migrate=settings.storage.auto_migrate)
    return SqliteDatabase(settings.storage.sqlite_path(secrets.data_dir))


def journal_database(settings: Settings, secrets: Secrets) -> JournalDatabase:
    """The journal's (on PostgreSQL, open it after the store: the store's
    migrations make its table)."""
    if settings.storage.backend == "postgres":
        return PgJournalDatabase(_database_url(secrets))
    return SqliteJournalFile(journal_file(secrets.data_dir))


def journal_file(data_dir: Path) -> Path:
    return data_dir / JOURNAL_FILE
