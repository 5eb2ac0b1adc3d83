"""The PostgreSQL schema: made once by whichever node comes first, checked
by every node, and a database newer than the code is refused (SQLite too)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import pytest

from lawhub_actors.adapters import pg_schema
from lawhub_actors.adapters.pg_connection import PgConnection
from lawhub_actors.adapters.pg_store import PgDatabase
from lawhub_actors.adapters.sqlite_store import SqliteDatabase
from lawhub_actors.adapters.store import Store
from lawhub_actors.adapters.store_migrations import SchemaTooNew
from lawhub_actors.adapters.store_tx import Tx
from tests.adapters.conftest import KEYRING


def _migrate(url: str) -> int:
    conn = PgConnection.connect(url)
    try:
        return pg_schema.migrate(conn, lambda c: Tx(c, KEYRING, time.time()))
    finally:
        conn.close()


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_a_new_database_gets_every_table_once_and_a_second_migrate_changes_nothing(
        postgres_url: str) -> None:
    assert _migrate(postgres_url) == 0
    assert {"journal", "messages", "outbound", "events", "audit", "dlq", "cursors",
            "schema_version", "store_meta"} <= _tables(postgres_url)
    assert _migrate(postgres_url) == pg_schema.VERSION
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (2,)


def test_nodes_starting_together_migrate_once(postgres_url: str) -> None:
    gate = threading.Barrier(4)
    results: list[int | BaseException] = []

    def node() -> None:
        gate.wait()
        try:
            results.append(_migrate(postgres_url))
        except BaseException as error:
            results.append(error)

    threads = [threading.Thread(target=node) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r for r in results if isinstance(r, int)) == [0, *[pg_schema.VERSION] * 3], results


def test_a_node_told_not_to_migrate_refuses_an_old_schema_until_it_is_migrated(
        postgres_url: str) -> None:
    with pytest.raises(pg_schema.SchemaOutdated, match=r"run\.py migrate"):
        Store(PgDatabase(postgres_url, auto_migrate=False), KEYRING)
    _migrate(postgres_url)
    Store(PgDatabase(postgres_url, auto_migrate=False), KEYRING).close()


def test_a_database_a_newer_gateway_made_is_refused(postgres_url: str) -> None:
    _migrate(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (pg_schema.VERSION + 1,))
    with pytest.raises(SchemaTooNew, match="newer gateway"):
        Store(PgDatabase(postgres_url), KEYRING)


def test_a_store_file_a_newer_gateway_made_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    Store(SqliteDatabase(path), KEYRING).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={pg_schema.VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew, match="newer gateway"):
        Store(SqliteDatabase(path), KEYRING)
