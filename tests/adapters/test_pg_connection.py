"""The PostgreSQL connection's own statement path (prepared once, run on
libpq): values go in and come back as psycopg would give them, the
database's errors keep psycopg's classes, and a lost connection is one
the store replaces."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest

from lawhub_actors.adapters.pg_connection import PgConnection


@pytest.fixture
def conn(postgres_url: str) -> Iterator[PgConnection]:
    conn = PgConnection.connect(postgres_url)
    conn.execute("DROP TABLE IF EXISTS kinds")
    conn.execute("CREATE TABLE kinds (id TEXT PRIMARY KEY, n INTEGER, big BIGINT,"
                 " f DOUBLE PRECISION, b BYTEA, flag INTEGER, note TEXT)")
    yield conn
    conn.close()


ROW = ("k1", 7, 2**40, 1.25, bytes(range(256)), True, "sidang ditunda ✓")


def test_each_type_the_store_binds_comes_back_as_it_went_in(conn: PgConnection) -> None:
    conn.execute("INSERT INTO kinds VALUES (?, ?, ?, ?, ?, ?, ?)", ROW)
    conn.execute("INSERT INTO kinds (id) VALUES (?)", ("k2",))
    rows = conn.execute("SELECT id, n, big, f, b, flag, note FROM kinds ORDER BY id").fetchall()
    assert rows == [(*ROW[:5], 1, ROW[6]), ("k2", None, None, None, None, None, None)]


def test_a_value_of_a_type_it_does_not_read_itself_is_read_as_psycopg_reads_it(
        conn: PgConnection) -> None:
    row = conn.execute("SELECT 1.5::numeric, true, pg_advisory_unlock_all(), ?::jsonb",
                       ('{"a": 1}',)).fetchone()
    assert row == (Decimal("1.5"), True, "", {"a": 1})
    conn.execute("INSERT INTO kinds VALUES (?, ?, ?, ?, ?, ?, ?)", ROW)
    assert conn.execute("SELECT SUM(big) FROM kinds").fetchone() == (Decimal(2**40),)


def test_a_parameter_of_another_type_goes_through_psycopg(conn: PgConnection) -> None:
    assert conn.execute("SELECT ? + 1", (Decimal("1.5"),)).fetchone() == (Decimal("2.5"),)


def test_rowcount_counts_the_rows_a_statement_changed_or_read(conn: PgConnection) -> None:
    for key in ("a", "b", "c"):
        conn.execute("INSERT INTO kinds (id, n) VALUES (?, ?)", (key, 1))
    assert conn.execute("UPDATE kinds SET n = n + ? WHERE n = 1", (1,)).rowcount == 3
    assert conn.execute("DELETE FROM kinds WHERE id = ?", ("nobody",)).rowcount == 0
    assert conn.execute("INSERT INTO kinds (id) VALUES (?) ON CONFLICT DO NOTHING",
                        ("a",)).rowcount == 0
    cursor = conn.execute("SELECT id FROM kinds ORDER BY id")
    assert (cursor.rowcount, cursor.fetchone(), list(cursor)) == (3, ("a",), [("b",), ("c",)])


def test_the_databases_errors_keep_psycopgs_classes(conn: PgConnection) -> None:
    conn.execute("INSERT INTO kinds (id) VALUES (?)", ("k",))
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO kinds (id) VALUES (?)", ("k",))
    with pytest.raises(psycopg.DataError):
        conn.execute("INSERT INTO kinds (id, n) VALUES (?, ?)", ("big", 2**40))
    with pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("SELECT 1 FROM nowhere WHERE 1 = ?", (1,))
    assert conn.execute("SELECT COUNT(*) FROM kinds").fetchone() == (1,)


def test_statements_prepared_in_a_transaction_undone_still_serve_after_it(
        conn: PgConnection) -> None:
    for _ in range(6):  # what psycopg itself would prepare (and drop at a ROLLBACK)
        conn.execute("SELECT ? + 1", (Decimal(1),))
    conn.script("BEGIN; SAVEPOINT one")
    conn.execute("INSERT INTO kinds (id, n) VALUES (?, ?)", ("undone", 1))
    conn.script("ROLLBACK TO SAVEPOINT one; RELEASE SAVEPOINT one; COMMIT")
    conn.execute("INSERT INTO kinds (id, n) VALUES (?, ?)", ("kept", 2))
    conn.script("BEGIN")
    conn.execute("INSERT INTO kinds (id, n) VALUES (?, ?)", ("undone too", 3))
    conn.script("ROLLBACK")
    conn.execute("INSERT INTO kinds (id, n) VALUES (?, ?)", ("kept too", 4))
    assert conn.execute("SELECT id FROM kinds ORDER BY n").fetchall() == [("kept",),
                                                                          ("kept too",)]


def test_a_connection_the_server_ended_raises_an_operational_error_and_reads_closed(
        conn: PgConnection, postgres_url: str) -> None:
    assert conn.execute("SELECT 1 WHERE 1 = ?", (1,)).fetchone() == (1,)
    with psycopg.connect(postgres_url, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (conn.raw.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1 WHERE 1 = ?", (1,))
    assert conn.closed


def test_many_rows_of_one_insert_go_as_one_statement_and_others_row_by_row(
        conn: PgConnection) -> None:
    rows = [(f"k{n}", n, b"\x00" * n) for n in range(5)]
    many = conn.executemany("INSERT INTO kinds (id, n, b) VALUES (?, ?, ?)", rows)
    again = conn.executemany("INSERT INTO kinds (id, n) VALUES (?, ?) ON CONFLICT DO NOTHING",
                             [("k1", 9), ("k9", 9)])
    assert (many.rowcount, again.rowcount) == (5, 1)
    assert conn.execute("SELECT id, n, b FROM kinds WHERE id <> ? ORDER BY id",
                        ("k9",)).fetchall() == rows


def test_a_script_fails_at_its_first_failing_statement_with_psycopgs_class(
        conn: PgConnection) -> None:
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.script("BEGIN; INSERT INTO kinds (id) VALUES ('a'); INSERT INTO kinds (id)"
                    " VALUES ('a'); INSERT INTO kinds (id) VALUES ('b')")
    assert conn.in_transaction  # the transaction failed: the caller rolls it back
    conn.script("ROLLBACK")
    assert conn.execute("SELECT COUNT(*) FROM kinds").fetchone() == (0,)


def test_more_rows_than_one_statement_may_carry_are_inserted_in_several(
        conn: PgConnection) -> None:
    rows = [(f"k{n}", n, float(n), None) for n in range(17_000)]  # 68,000 parameters
    done = conn.executemany("INSERT INTO kinds (id, n, f, note) VALUES (?, ?, ?, ?)", rows)
    assert done.rowcount == 17_000
    assert conn.execute("SELECT COUNT(*), MAX(n) FROM kinds").fetchone() == (17_000, 16_999)


def test_an_error_of_a_script_keeps_its_details(conn: PgConnection) -> None:
    conn.execute("INSERT INTO kinds (id) VALUES (?)", ("a",))
    with pytest.raises(psycopg.errors.UniqueViolation) as raised:
        conn.script("INSERT INTO kinds (id) VALUES ('a')")
    assert raised.value.diag.constraint_name == "kinds_pkey"


def test_bytes_come_back_whichever_way_the_server_writes_them(conn: PgConnection) -> None:
    conn.execute("INSERT INTO kinds (id, b) VALUES (?, ?)", ("k", bytes(range(256))))
    conn.execute("SET bytea_output = 'escape'")
    assert conn.execute("SELECT b FROM kinds").fetchone() == (bytes(range(256)),)
