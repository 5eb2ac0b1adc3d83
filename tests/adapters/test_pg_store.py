"""The PostgreSQL store's own behaviour: the writer drops its cached plans
soon after it opens and then now and again, so that a plan made on nearly
empty tables does not outlive them."""

from __future__ import annotations

import itertools

import psycopg

from lawhub_actors.adapters.pg_connection import (
    REPLAN_EVERY_S,
    REPLAN_FIRST_S,
    PgConnection,
    PgConnections,
    Replans,
)
from lawhub_actors.adapters.pg_store import PgDatabase


def test_plans_are_dropped_soon_after_opening_then_at_doubling_intervals_up_to_a_minute() -> None:
    now = [100.0]
    replans = Replans(lambda: now[0])
    dropped = []
    for _ in range(2000):
        now[0] += 0.5
        if replans.due():
            dropped.append(now[0] - 100.0)
    gaps = [b - a for a, b in itertools.pairwise(dropped)]
    assert dropped[0] == REPLAN_FIRST_S
    assert gaps[:4] == [4.0, 8.0, 16.0, 32.0]
    assert set(gaps[5:]) == {REPLAN_EVERY_S}


class _Recording(PgConnection):
    def __init__(self, replans: Replans) -> None:  # no server: what would be sent is kept
        self.sent: list[tuple[str, ...]] = []
        self.replans = replans

    def script(self, sql: str) -> None:
        self.sent.append(tuple(sql.split("; ")))


def test_the_writer_drops_its_plans_before_the_first_transaction_that_is_due() -> None:
    database = PgDatabase("postgresql:///unused")
    now = [0.0]
    conn = _Recording(Replans(lambda: now[0]))
    database.run(conn, "BEGIN", "SAVEPOINT one_work")
    now[0] = REPLAN_FIRST_S
    database.run(conn, "RELEASE SAVEPOINT one_work", "SAVEPOINT one_work")  # not a new one
    database.run(conn, "BEGIN", "SAVEPOINT one_work")
    database.run(conn, "BEGIN", "SAVEPOINT one_work")
    assert conn.sent == [("BEGIN", "SAVEPOINT one_work"),
                         ("RELEASE SAVEPOINT one_work", "SAVEPOINT one_work"),
                         ("DISCARD PLANS", "BEGIN", "SAVEPOINT one_work"),
                         ("BEGIN", "SAVEPOINT one_work")]


def test_a_reader_connection_drops_its_plans_too_when_due(postgres_url: str) -> None:
    connections = PgConnections(postgres_url, "test")
    try:
        reader = connections.reader()
        now = [0.0]
        reader.replans = Replans(lambda: now[0])
        assert connections.reader() is reader
        now[0] = REPLAN_FIRST_S
        assert connections.reader() is reader

        def last_query() -> str:
            with psycopg.connect(postgres_url, autocommit=True) as other:
                row = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s",
                                    (reader.raw.info.backend_pid,)).fetchone()
            assert row is not None
            return str(row[0])

        assert last_query() == "DISCARD PLANS"
        reader.execute("SELECT 1").fetchone()
        now[0] += 1.0  # not due again yet (the next is 4 s later)
        connections.reader()
        assert last_query() == "SELECT 1"
    finally:
        connections.close()
