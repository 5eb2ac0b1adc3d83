"""The journal on PostgreSQL, in the store's database (its table is made
by the store's migrations, :mod:`pg_schema`).

Every node appends, so a commit takes its sequence numbers after taking a
transaction-scoped advisory lock that every writer takes: numbers are given
in commit order, and a reader that has seen ``seq`` never meets a smaller
one later (a ``BIGSERIAL`` would hand numbers out at insert time, and a
transaction that took a lower one could commit after a higher one was
read past). The lock waits at most ``lock_timeout_ms``: a writer stuck
holding it makes appends fail (503: Meta sends again), never hang.
``synchronous_commit`` is on for the writer whatever the server's default:
the 200 waits for the WAL flush.
"""

from __future__ import annotations

from lawhub_actors.adapters.pg_connection import PgConnections
from lawhub_actors.adapters.pg_schema import require_current
from lawhub_actors.adapters.sql import Connection

JOURNAL_LOCK = 0x1A_48_0B_02
"""The advisory lock key every journal writer takes (any number, the same on every node)."""


class PgJournalDatabase:
    several_writers = True

    def __init__(self, url: str, *, lock_timeout_ms: int = 5000) -> None:
        self._connections = PgConnections(url, "lawhub-journal", setup=(
            "SET synchronous_commit = on", f"SET lock_timeout = {int(lock_timeout_ms)}",
            # a writer stopped holding the lock frees it after as long
            f"SET idle_in_transaction_session_timeout = {int(lock_timeout_ms)}"))

    def open_writer(self) -> Connection:
        writer = self._connections.connect()
        require_current(writer)
        return writer

    def begin(self, writer: Connection) -> None:
        writer.execute("BEGIN")
        writer.execute("SELECT pg_advisory_xact_lock(?)", (JOURNAL_LOCK,))

    def recover(self, writer: Connection) -> Connection:
        return self._connections.recover(writer)

    def reader(self) -> Connection:
        return self._connections.reader()

    def connect(self) -> Connection:
        return self._connections.connect("follower")

    def committed(self) -> None:
        return None

    def close(self) -> None:
        self._connections.close()
