"""The store on PostgreSQL, the system of record when several nodes share it.

The same operations as on SQLite (:mod:`store_tx`, run through
:class:`~lawhub_actors.adapters.pg_connection.PgConnection`); what differs
is here: the schema is brought up to date at open (or only checked, when
migrating is left to ``python run.py migrate``), a connection that broke is
replaced at the next commit or read, and PostgreSQL's errors are sorted
into the work's own (a constraint, a value it cannot hold: the work is
undone alone) and the database's (the whole batch fails and is tried again).
Commits are synchronous (``synchronous_commit`` as the server has it: on by
default): an accepted send is durable when the API answers.

The writer's statements are prepared (psycopg does so from their fifth
use), and PostgreSQL keeps one generic plan per prepared statement until
the table's statistics change — which autovacuum notices only after up to
a minute. A plan made while a table was nearly empty can be a bad one for
the same table a few thousand rows later (measured: the message-by-wamid
lookup scanned the tenant's messages by another index, 0.36 ms per
message and growing, in a fresh database's first ten thousand messages).
So the writer drops its plans (``DISCARD PLANS``) 2 s after it opens, then
at doubling intervals up to every minute (``pg_connection.Replans``), and
so does each reader connection: each statement is planned again on the
tables as they have grown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg
from psycopg import sql

from lawhub_actors.adapters import channels
from lawhub_actors.adapters.pg_connection import PgConnection, PgConnections
from lawhub_actors.adapters.pg_schema import migrate
from lawhub_actors.adapters.sql import Connection
from lawhub_actors.adapters.store_rows import FeedEvent
from lawhub_actors.adapters.store_tx import Tx


class PgDatabase:
    name = "postgres"
    begin = "BEGIN"
    row_lock = " FOR SHARE"
    integrity_errors: tuple[type[Exception], ...] = (psycopg.IntegrityError,)
    writes_apart = True

    def __init__(self, url: str, *, auto_migrate: bool = True, stuck_after_s: float = 5.0,
                 node: str = "") -> None:
        """``stuck_after_s``: how long a statement waits for a lock, and how
        long PostgreSQL lets a transaction sit idle before it ends it and
        frees its locks (a node stopped in the middle of one must not hold
        a takeover up for long)."""
        stuck_ms = int(stuck_after_s * 1000)
        self._connections = PgConnections(url, "lawhub-store", setup=(
            f"SET lock_timeout = {stuck_ms}",
            f"SET idle_in_transaction_session_timeout = {stuck_ms}"))
        self._auto_migrate = auto_migrate
        self._node = node

    def prepare(self, tx_of: Callable[[Connection], Tx]) -> Connection:
        writer = self._connections.connect()
        migrate(writer, tx_of, upgrade=self._auto_migrate)
        return writer

    def run(self, conn: Connection, *statements: str) -> None:
        assert isinstance(conn, PgConnection)
        if statements[0] == self.begin and conn.replans.due():
            statements = ("DISCARD PLANS", *statements)
        conn.script("; ".join(statements))

    def recover(self, writer: Connection) -> Connection:
        return self._connections.recover(writer)

    def reader(self) -> Connection:
        return self._connections.reader()

    def commit(self, writer: Connection, events: Sequence[FeedEvent]) -> None:
        """One notice per tenant (its last event's ``seq``: ``node tenant
        seq``), sent with the ``COMMIT`` in one round trip."""
        assert isinstance(writer, PgConnection)
        last: dict[str, int] = {}
        for event in events:
            last[event.tenant] = max(event.seq, last.get(event.tenant, 0))
        notices = [f"SELECT pg_notify({sql.quote(channels.FEED, writer.raw)},"
                   f" {sql.quote(f'{self._node} {tenant} {seq}', writer.raw)})"
                   for tenant, seq in last.items()]
        writer.script("; ".join([*notices, "COMMIT"]))

    def notify(self, conn: Connection, channel: str, payload: str) -> None:
        conn.execute("SELECT pg_notify(?, ?)", (channel, payload))

    def committed(self) -> None:
        return None

    def store_wide(self, error: Exception) -> bool:
        """A constraint or a value PostgreSQL cannot hold is the work's own fault."""
        return isinstance(error, psycopg.Error) and not isinstance(
            error, psycopg.IntegrityError | psycopg.DataError)

    def close(self) -> None:
        self._connections.close()
