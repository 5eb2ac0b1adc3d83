"""The store: its writer thread and its readers, on either engine.

The tables are in :mod:`sqlite_schema` (and :mod:`outbound_schema`), the
operations of a write transaction in :mod:`store_tx`, the reads in
:mod:`store_reads` (and :mod:`outbound_store`): written once, run on
SQLite (:mod:`sqlite_store`, the embedded default) or PostgreSQL
(:mod:`pg_store`, several nodes) — a :class:`Database` is what differs.

Writes are *group-committed*: callers hand :meth:`Store.write` a function
of a :class:`Tx`; one writer thread runs every function queued meanwhile
inside one transaction, each in its own savepoint (a failing one is rolled
back alone and its caller gets the error), commits once, then answers them
all. Many shards writing at once thus share one commit instead of queueing
on a lock for one commit each.

Committed feed events are handed to ``on_commit`` by the writer thread,
right after their commit and before any caller hears of it: in commit
order, so a tenant's events reach the live feed in their ``seq`` order by
construction (callers publishing after their own write raced each other,
and every event that overtook another sent its subscribers back to the
store for the gap).

Reads use one connection per thread, off the writer.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

from lawhub_actors.adapters.sql import Connection
from lawhub_actors.adapters.sqlite_common import STOP, take_batch
from lawhub_actors.adapters.store_rows import FeedEvent
from lawhub_actors.adapters.store_tx import Sealer, Tx

log = logging.getLogger("lawhub.store")
T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class Written(Generic[T]):
    """What a write function returned, and the feed events it emitted."""

    value: T
    events: list[FeedEvent]


class StoreUnavailable(Exception):
    """The transaction could not be committed: nothing of it happened. Not
    about any one caller's work (that raises its own error, undone alone)."""


class Database(Protocol):
    """One engine under the store: its connections and what its errors mean."""

    name: str
    """``sqlite`` or ``postgres``."""

    begin: str
    """The statement that opens a write transaction."""

    row_lock: str
    """What makes a ``SELECT`` keep its rows locked until the commit (:class:`Tx`)."""

    integrity_errors: tuple[type[Exception], ...]
    """What a write breaking a unique key raises (e.g. a number taken meanwhile)."""

    writes_apart: bool
    """Whether :meth:`Store.apart` writes on a connection of its own. SQLite
    has one writer at a time: a second connection's write waits for the
    lock, which a busy writer takes again at once after every commit (a
    lease renewal starved for longer than the lease under a backlog), so
    there it goes through the writer's batches."""

    def prepare(self, tx_of: Callable[[Connection], Tx]) -> Connection:
        """Create or upgrade the schema (refusing one newer than this code);
        the writer's connection."""

    def run(self, conn: Connection, *statements: str) -> None:
        """Run ``statements`` (no parameters, no results) in order, in as
        few round trips as the engine allows."""

    def recover(self, writer: Connection) -> Connection:
        """The writer's connection to go on with after a failed commit: this
        one rolled back, or a new one if it broke (or this one, if the
        engine cannot be reached: the next commit tries again)."""

    def reader(self) -> Connection:
        """This thread's read connection."""

    def commit(self, writer: Connection, events: Sequence[FeedEvent]) -> None:
        """``COMMIT``, telling other nodes of ``events`` (PostgreSQL's NOTIFY,
        delivered at the commit, in commit order)."""

    def notify(self, conn: Connection, channel: str, payload: str) -> None:
        """Tell the other nodes (:mod:`channels`); at the commit when in a
        transaction."""

    def committed(self) -> None:
        """The writer committed (any housekeeping a commit calls for)."""

    def store_wide(self, error: Exception) -> bool:
        """Whether ``error`` is about the database rather than one work's
        data (a constraint, a value the engine cannot hold)."""

    def close(self) -> None:
        """Close every connection (after the writer's last commit)."""


def _store_wide(database: Database, error: BaseException) -> bool:
    """Whether ``error`` is about the store or the process rather than one
    work's data: then the whole batch is tried again, never quarantined."""
    if isinstance(error, MemoryError) or not isinstance(error, Exception):
        return True
    return database.store_wide(error)


_BATCH_MAX = 256
"""Queued requests one commit takes at most (a request may hold several works)."""

_Request = list[tuple[Callable[[Tx], Any], "Future[Any]"]]

OnCommit = Callable[[Sequence[FeedEvent]], None]


class Store:
    def __init__(self, database: Database, sealer: Sealer,
                 clock: Callable[[], float] = time.time,
                 on_commit: OnCommit | None = None) -> None:
        self.database = database
        self._sealer = sealer
        self._clock = clock
        self._on_commit = on_commit
        try:
            self._writer = database.prepare(lambda conn: Tx(conn, sealer, clock()))
        except BaseException:
            database.close()
            raise
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.commits = 0
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def write(self, work: Callable[[Tx], T]) -> Written[T]:
        """Run ``work`` atomically and durably (committed when this returns);
        raises what ``work`` raised, having undone all of its effects, or
        :class:`StoreUnavailable` when the commit failed or the store itself
        failed inside ``work`` (a deadlock, a lock wait, a lost connection:
        nothing about ``work``'s own data)."""
        future: Future[Written[T]] = Future()
        self._queue.put([(work, future)])
        try:
            return future.result()
        except StoreUnavailable:
            raise
        except BaseException as error:
            if _store_wide(self.database, error) and isinstance(error, Exception):
                raise StoreUnavailable(f"the store failed: {error!r}") from error
            raise

    def write_each(self, works: Sequence[Callable[[Tx], Any]]) -> list[Written[Any] | Exception]:
        """Run each of ``works`` in its own savepoint of one commit, in order:
        what each returned, or the error that undid that one alone (its
        neighbours keep their effects). Raises :class:`StoreUnavailable` when
        the commit failed (then none of them happened)."""
        futures: list[Future[Written[Any]]] = [Future() for _ in works]
        self._queue.put(list(zip(works, futures, strict=True)))
        outcomes: list[Written[Any] | Exception] = []
        for future in futures:
            error = future.exception()
            if error is None:
                outcomes.append(future.result())
            elif isinstance(error, StoreUnavailable):
                raise error
            elif _store_wide(self.database, error):
                raise StoreUnavailable(f"the store failed: {error!r}") from error
            else:
                assert isinstance(error, Exception)
                outcomes.append(error)
        return outcomes

    def _run(self) -> None:
        while (batch := take_batch(self._queue, _BATCH_MAX)) is not None:
            self._commit([pair for request in batch for pair in request])

    def _commit(self, batch: _Request) -> None:
        conn = self._writer
        answers: list[tuple[Future[Any], Any, BaseException | None]] = []
        run = self.database.run
        try:
            # Each work in its savepoint; a released savepoint and the next one
            # go in one round trip (one per work rather than two on PostgreSQL).
            opening: tuple[str, ...] = (self.database.begin,)
            now = self._clock()
            held: set[tuple[int, int]] = set()
            for work, future in batch:
                tx = Tx(conn, self._sealer, now, self.database.row_lock, held)
                held_before = set(held)
                run(conn, *opening, "SAVEPOINT one_work")
                try:
                    value = work(tx)
                except BaseException as error:  # noqa: BLE001 - the caller's error, handed back
                    run(conn, "ROLLBACK TO SAVEPOINT one_work", "RELEASE SAVEPOINT one_work")
                    held.intersection_update(held_before)  # the rollback released its locks
                    opening = ()
                    answers.append((future, None, error))
                else:
                    opening = ("RELEASE SAVEPOINT one_work",)
                    answers.append((future, (value, tx.pending), None))
            if opening == (self.database.begin,):  # an empty batch
                run(conn, *opening)
            # The last savepoint stays open: the COMMIT releases it (a round trip less).
            answers = self._numbered(conn, now, answers)
            self.database.commit(conn, [event for _, value, failure in answers
                                        if failure is None for event in value.events])
        except Exception as error:  # noqa: BLE001 - nothing committed: every caller hears it
            log.error("store commit failed", extra={"error": repr(error), "batch": len(batch)})
            self._writer = self.database.recover(conn)
            unavailable = StoreUnavailable(f"the store could not commit: {error!r}")
            unavailable.__cause__ = error
            for _, future in batch:
                future.set_exception(unavailable)
            return
        self.commits += 1
        self.database.committed()
        self._committed([event for _, value, failure in answers if failure is None
                         for event in value.events])
        for future, value, failure in answers:
            if failure is None:
                future.set_result(value)
            else:
                future.set_exception(failure)

    def _numbered(self, conn: Connection, now: float,
                  answers: list[tuple[Future[Any], Any, BaseException | None]]
                  ) -> list[tuple[Future[Any], Any, BaseException | None]]:
        """The works' events numbered and stored, last in the transaction
        (:meth:`Tx.number`); each answer's ``(value, pending)`` made its
        :class:`Written`."""
        pending = [event for _, done, failure in answers if failure is None
                   for event in done[1]]
        numbered = iter(Tx(conn, self._sealer, now, self.database.row_lock).number(pending))
        return [(future, None, failure) if failure is not None else
                (future, Written(done[0], [next(numbered) for _ in done[1]]), None)
                for future, done, failure in answers]

    def _committed(self, events: list[FeedEvent]) -> None:
        if not events or self._on_commit is None:
            return
        try:
            self._on_commit(events)
        except Exception as error:  # noqa: BLE001 - durable already: a feed client catches up
            log.error("feed publish failed", extra={"error": repr(error), "events": len(events)})

    def read(
        self, work: Callable[Concatenate[Connection, P], T],
        *args: P.args, **kwargs: P.kwargs,
    ) -> T:
        """``work(connection, *args, **kwargs)`` on this thread's read
        connection (never blocks the writer)."""
        return work(self.database.reader(), *args, **kwargs)

    def read_tx(
        self, work: Callable[Concatenate[Tx, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``work(tx, *args, **kwargs)`` with a :class:`Tx` on this thread's
        read connection, off the writer (it must not write)."""
        return work(Tx(self.database.reader(), self._sealer, self._clock()), *args, **kwargs)

    def apart(
        self, work: Callable[Concatenate[Tx, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``work(tx, *args, **kwargs)`` on this thread's own connection, off
        the writer and its batches: each statement commits by itself. For
        the lease keeper, whose one-statement writes may wait for another
        node's locks and must never hold the batches up (nor wait behind
        them). Where the engine has one writer (``writes_apart`` false), in
        the writer's next batch instead."""
        if not self.database.writes_apart:
            return self.write(lambda tx: work(tx, *args, **kwargs)).value
        return self.read_tx(work, *args, **kwargs)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(STOP)
            self._thread.join(10)
        self.database.close()
