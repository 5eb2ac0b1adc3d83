"""The embedded store (SQLite, WAL): its writer thread and its readers.

The tables are in :mod:`sqlite_schema` (and :mod:`outbound_schema`), the
operations of a write transaction in :mod:`store_tx`, the reads in
:mod:`store_reads` (and :mod:`outbound_store`).

Writes are *group-committed*: callers hand :meth:`Store.write` a function
of a :class:`Tx`; one writer thread runs every function queued meanwhile
inside one transaction, each in its own savepoint (a failing one is rolled
back alone and its caller gets the error), commits once, then answers them
all. Many shards writing at once thus share one commit instead of queueing
on a lock for one commit each. ``synchronous=NORMAL`` is enough here: the
journal (``synchronous=FULL``) is the truth and the cursor commits with the
facts, so a lost tail is replayed.

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
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from lawhub_actors.adapters.outbound_schema import OUTBOUND_SCHEMA
from lawhub_actors.adapters.sqlite_common import (
    STOP,
    Checkpointer,
    Readers,
    connect,
    take_batch,
)
from lawhub_actors.adapters.sqlite_schema import SCHEMA
from lawhub_actors.adapters.store_migrations import check_refs, migrate
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


def _store_wide(error: BaseException) -> bool:
    """Whether ``error`` is about the store or the process rather than one
    work's data: then the whole batch is tried again, never quarantined.
    A constraint or a value SQLite cannot hold is the work's own fault."""
    if isinstance(error, MemoryError) or not isinstance(error, Exception):
        return True
    return isinstance(error, sqlite3.DatabaseError) and not isinstance(
        error, sqlite3.IntegrityError | sqlite3.DataError)


_BATCH_MAX = 256
"""Queued requests one commit takes at most (a request may hold several works)."""

_Request = list[tuple[Callable[[Tx], Any], "Future[Any]"]]

OnCommit = Callable[[Sequence[FeedEvent]], None]


class Store:
    def __init__(self, path: Path, sealer: Sealer, clock: Callable[[], float] = time.time,
                 on_commit: OnCommit | None = None) -> None:
        self.path = path
        self._sealer = sealer
        self._clock = clock
        self._on_commit = on_commit
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = connect(path, synchronous="NORMAL", checkpointer=True)
        try:
            self._writer.executescript(SCHEMA + OUTBOUND_SCHEMA)
            migrate(self._writer, lambda conn: Tx(conn, sealer, clock()))
            check_refs(self._writer, Tx(self._writer, sealer, clock()))
        except BaseException:
            self._writer.close()
            raise
        self._checkpointer = Checkpointer(path, synchronous="NORMAL")
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._readers = Readers(path, synchronous="NORMAL")
        self.commits = 0
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def write(self, work: Callable[[Tx], T]) -> Written[T]:
        """Run ``work`` atomically and durably (committed when this returns);
        raises what ``work`` raised, having undone all of its effects, or
        :class:`StoreUnavailable` when the commit failed."""
        future: Future[Written[T]] = Future()
        self._queue.put([(work, future)])
        return future.result()

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
            elif _store_wide(error):
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
        try:
            conn.execute("BEGIN IMMEDIATE")
            now = self._clock()
            for work, future in batch:
                tx = Tx(conn, self._sealer, now)
                conn.execute("SAVEPOINT work")
                try:
                    value = work(tx)
                except BaseException as error:  # noqa: BLE001 - the caller's error, handed back
                    conn.execute("ROLLBACK TO work")
                    conn.execute("RELEASE work")
                    answers.append((future, None, error))
                else:
                    conn.execute("RELEASE work")
                    answers.append((future, Written(value, tx.events), None))
            conn.execute("COMMIT")
        except Exception as error:  # noqa: BLE001 - nothing committed: every caller hears it
            log.error("store commit failed", extra={"error": repr(error), "batch": len(batch)})
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            unavailable = StoreUnavailable(f"the store could not commit: {error!r}")
            unavailable.__cause__ = error
            for _, future in batch:
                future.set_exception(unavailable)
            return
        self.commits += 1
        self._checkpointer.noted()
        self._committed([event for _, value, failure in answers if failure is None
                         for event in value.events])
        for future, value, failure in answers:
            if failure is None:
                future.set_result(value)
            else:
                future.set_exception(failure)

    def _committed(self, events: list[FeedEvent]) -> None:
        if not events or self._on_commit is None:
            return
        try:
            self._on_commit(events)
        except Exception as error:  # noqa: BLE001 - durable already: a feed client catches up
            log.error("feed publish failed", extra={"error": repr(error), "events": len(events)})

    def read(
        self, work: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args, **kwargs: P.kwargs,
    ) -> T:
        """``work(connection, *args, **kwargs)`` on this thread's read
        connection (WAL: a consistent snapshot that never blocks the writer)."""
        return work(self._readers.get(), *args, **kwargs)

    def read_tx(
        self, work: Callable[Concatenate[Tx, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``work(tx, *args, **kwargs)`` with a :class:`Tx` on this thread's
        read connection, off the writer (it must not write)."""
        return work(Tx(self._readers.get(), self._sealer, self._clock()), *args, **kwargs)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(STOP)
            self._thread.join(10)
            self._writer.close()
        self._checkpointer.close()
        self._readers.close()
