"""The PostgreSQL store's own behaviour: the writer drops its cached plans
soon after it opens and then now and again, so that a plan made on nearly
empty tables does not outlive them."""

from __future__ import annotations

import itertools

from lawhub_actors.adapters.pg_connection import PgConnection
from lawhub_actors.adapters.pg_store import REPLAN_EVERY_S, REPLAN_FIRST_S, PgDatabase, Replans


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
    def __init__(self) -> None:  # no server needed: only what would be sent is kept
        self.sent: list[tuple[str, ...]] = []

    def script(self, sql: str) -> None:
        self.sent.append(tuple(sql.split("; ")))


def test_the_writer_drops_its_plans_before_the_first_transaction_that_is_due() -> None:
    database = PgDatabase("postgresql:///unused")
    now = [0.0]
    database._replans = Replans(lambda: now[0])
    conn = _Recording()
    database.run(conn, "BEGIN", "SAVEPOINT one_work")
    now[0] = REPLAN_FIRST_S
    database.run(conn, "RELEASE SAVEPOINT one_work", "SAVEPOINT one_work")  # not a new one
    database.run(conn, "BEGIN", "SAVEPOINT one_work")
    database.run(conn, "BEGIN", "SAVEPOINT one_work")
    assert conn.sent == [("BEGIN", "SAVEPOINT one_work"),
                         ("RELEASE SAVEPOINT one_work", "SAVEPOINT one_work"),
                         ("DISCARD PLANS", "BEGIN", "SAVEPOINT one_work"),
                         ("BEGIN", "SAVEPOINT one_work")]
