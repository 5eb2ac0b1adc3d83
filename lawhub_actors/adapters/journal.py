"""The webhook journal: append-only, durable, group-committed, on SQLite
(:mod:`sqlite_journal`, WAL) or PostgreSQL (:mod:`pg_journal`).

Meta gets its 200 only after the body is in this journal and fsynced. One
writer thread takes every body queued while its previous commit ran and
commits them together: under load many requests share one fsync, idle a
lone request is committed at once. Bodies are
sealed (AES-256-GCM) before they are written — the database file never
holds a message body in clear.

After each commit ``on_commit(last_seq)`` is called on the writer thread,
so the dispatcher learns there is more to read. The most recent committed
entries are also kept in memory (a tail bounded by bytes, ``tail_bytes``),
so a reader that keeps up gets them without a query and a decryption;
anything older (a replay after a restart, a reader far behind, a body
bigger than the whole budget) comes from the database, through one
connection per reading thread (readers never block the writer).
The tail is always a contiguous run of sequence numbers ending at the last
commit: the oldest entries leave first, and a body too big for the budget
empties it (the entries after it start a new run).

Where several writers append (the ack path in a process of its own, or
several nodes on one PostgreSQL database) each commit takes its sequence
numbers inside its write transaction, after :meth:`JournalDatabase.begin`
has made every other writer wait until it commits: numbers are then given in
commit order, so a reader that has seen ``seq`` can never later meet a
smaller one committing late (PostgreSQL's own sequences give numbers at
insert time, not in commit order). No tail is kept then (it could not be
contiguous), and what the others commit is noticed by polling.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from lawhub_actors.adapters.sql import Connection
from lawhub_actors.adapters.sqlite_common import STOP, take_batch

log = logging.getLogger("lawhub.journal")

Seal = Callable[[bytes], tuple[str, bytes]]
Open = Callable[[str, bytes], bytes]



class JournalDatabase(Protocol):
    """One engine under the journal: its connections and its write lock."""

    several_writers: bool
    """Whether others may append to this database whatever this process does
    (several nodes): the journal is then always shared."""

    def open_writer(self) -> Connection:
        """The writer's connection, with the table there (refusing a schema
        newer than this code)."""

    def begin(self, writer: Connection) -> None:
        """Open a write transaction in which no other writer appends until
        it ends (SQLite: the file's write lock; PostgreSQL: an advisory one)."""

    def recover(self, writer: Connection) -> Connection:
        """The writer's connection to go on with after a failed commit."""

    def reader(self) -> Connection:
        """This thread's read connection."""

    def connect(self) -> Connection:
        """A connection of its own (the follower's)."""

    def committed(self) -> None:
        """The writer committed."""

    def close(self) -> None:
        """Close every connection (after the writer's last commit)."""


class JournalUnavailable(Exception):
    """The body could not be made durable; nothing was acknowledged."""


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    received_at: float
    body: bytes


@dataclass(slots=True)
class _Pending:
    body: bytes
    received_at: float
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[int]


TAIL_BYTES = 8 * 1024 * 1024
"""Default budget of the in-memory tail: ~5,000 typical bodies (1.5 KB), or
two of the largest (4 MiB) — never thousands of those (a count bound of
4,096 entries could hold 16 GiB)."""

ENTRY_OVERHEAD = 160
"""Bytes counted per tail entry beyond its body (the entry, its ``bytes``
header, its numbers), so a tail of tiny bodies is bounded too."""


class Journal:
    def __init__(
        self,
        database: JournalDatabase,
        *,
        seal: Seal,
        open_: Open,
        batch_max: int = 256,
        on_commit: Callable[[int], None] | None = None,
        tail_bytes: int = TAIL_BYTES,
        shared: bool = False,
        follow_s: float = 0.05,
    ) -> None:
        """``shared``: another process appends to the same database too (the
        ack path in a process of its own): see :meth:`share`. A database
        several nodes write is always shared, and followed every ``follow_s``."""
        if tail_bytes < 0:
            raise ValueError(f"tail_bytes must be >= 0, not {tail_bytes}")
        shared = shared or database.several_writers
        if shared:
            tail_bytes = 0
        self._shared = shared
        self.database = database
        self._seal = seal
        self._open = open_
        self._batch_max = batch_max
        self.on_commit = on_commit
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer = database.open_writer()
        row = self._writer.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
        self._next_seq = int(row[0]) + 1
        self.last_committed = int(row[0])
        self.commits = 0
        self._tail: deque[Entry] = deque()
        self._tail_budget = tail_bytes
        self._tail_used = 0
        self._tail_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()
        self._seen_lock = threading.Lock()
        self._following = threading.Event()
        self._follower: threading.Thread | None = None
        if database.several_writers:
            self._start_following(follow_s)

    # -- the web side ------------------------------------------------------------

    async def append(self, body: bytes) -> int:
        """Durably append ``body``; its sequence number once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._queue.put(_Pending(body, time.time(), loop, future))
        return await future

    # -- the writer thread ---------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = take_batch(self._queue, self._batch_max)
            if batch is None:
                return
            self._commit(batch)
            del batch  # not held while waiting for the next: up to batch_max bodies

    def _commit(self, batch: list[_Pending]) -> None:
        seq = self._next_seq
        try:
            sealed_rows = [(item.received_at, *self._seal(item.body)) for item in batch]
            self.database.begin(self._writer)
            if self._shared:  # under the write lock: no other writer appends now
                row = self._writer.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
                seq = int(row[0]) + 1
            rows = [(seq + offset, *sealed) for offset, sealed in enumerate(sealed_rows)]
            self._writer.executemany(
                "INSERT INTO journal (seq, received_at, key_id, body) VALUES (?, ?, ?, ?)", rows
            )
            self._writer.execute("COMMIT")
        except Exception as error:  # noqa: BLE001 - any failure: nothing is acknowledged
            log.error("journal write failed", extra={"error": repr(error), "batch": len(batch)})
            self._writer = self.database.recover(self._writer)
            _resolve(batch, None)
            return
        with self._tail_lock:
            for offset, item in enumerate(batch):
                self._keep(Entry(seq + offset, item.received_at, item.body))
        self._next_seq = seq + len(batch)
        with self._seen_lock:
            self.last_committed = max(self.last_committed, self._next_seq - 1)
        self.commits += 1
        _resolve(batch, seq)
        self.database.committed()
        if self.on_commit is not None:
            self.on_commit(self.last_committed)

    def share(self, follow_s: float) -> None:
        """From now on another process appends too (call before it starts):
        numbers are taken inside each write transaction, no tail is kept, and
        the database is polled every ``follow_s`` for what the other commits."""
        with self._tail_lock:
            self._shared = True
            self._tail_budget = 0
            self._tail.clear()
            self._tail_used = 0
        self._start_following(follow_s)

    def _start_following(self, every_s: float) -> None:
        if self._follower is None:
            self._follower = threading.Thread(target=self._follow, args=(every_s,),
                                              name="journal-follower", daemon=True)
            self._follower.start()

    def saw(self, seq: int) -> None:
        """Another process says it committed up to ``seq`` (any thread)."""
        with self._seen_lock:
            if seq <= self.last_committed:
                return
            self.last_committed = seq
        if self.on_commit is not None:
            self.on_commit(seq)

    def _follow(self, every_s: float) -> None:
        """Notice what other processes committed, should their word be lost
        (one indexed query a poll)."""
        conn: Connection | None = None
        failures = 0
        while not self._following.wait(every_s):
            try:
                if conn is None:
                    conn = self.database.connect()
                row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
                failures = 0
            except Exception as error:  # noqa: BLE001 - the database is away: poll again
                failures += 1
                if failures == 1:
                    log.warning("journal follow failed", extra={"error": repr(error)})
                if conn is not None:
                    conn.close()
                conn = None
                continue
            self.saw(int(row[0]))
        if conn is not None:
            conn.close()

    def _keep(self, entry: Entry) -> None:
        """Add ``entry`` to the tail, dropping the oldest entries over the budget
        (under ``_tail_lock``)."""
        cost = len(entry.body) + ENTRY_OVERHEAD
        if cost > self._tail_budget:  # never kept; the tail must stay contiguous
            self._tail.clear()
            self._tail_used = 0
            return
        self._tail.append(entry)
        self._tail_used += cost
        while self._tail_used > self._tail_budget:
            self._tail_used -= len(self._tail.popleft().body) + ENTRY_OVERHEAD

    @property
    def tail_bytes_used(self) -> int:
        """Bytes the in-memory tail counts now (bodies plus per-entry overhead)."""
        return self._tail_used

    # -- readers ---------------------------------------------------------------------

    def read_after(self, seq: int, limit: int = 500, max_bytes: int | None = None) -> list[Entry]:
        """Committed entries with a sequence number above ``seq``, in order: at
        most ``limit``, and none more once their bodies add up to ``max_bytes``
        (so at most ``max_bytes`` plus one body; always at least one entry when
        there is one; ``None``: no byte bound)."""
        with self._tail_lock:
            if self._tail and self._tail[0].seq <= seq + 1:
                start = seq + 1 - self._tail[0].seq
                stop = min(start + limit, len(self._tail))
                return _up_to(max_bytes, (self._tail[i] for i in range(start, stop)))
        cursor = self.database.reader().execute(
            "SELECT seq, received_at, key_id, body FROM journal WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        try:  # row by row: a byte bound must stop before the rest is fetched and opened
            return _up_to(max_bytes, (
                Entry(int(s), float(at), self._open(key_id, body))
                for s, at, key_id, body in cursor
            ))
        finally:
            cursor.close()

    def received_at(self, seq: int) -> float | None:
        """When entry ``seq`` was received (wall clock), ``None`` if there is none."""
        with self._tail_lock:
            if self._tail and self._tail[0].seq <= seq <= self._tail[-1].seq:
                return self._tail[seq - self._tail[0].seq].received_at
        row = self.database.reader().execute(
            "SELECT received_at FROM journal WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else float(row[0])

    def close(self) -> None:
        self._following.set()
        if self._follower is not None:
            self._follower.join(5)
        self._queue.put(STOP)
        self._thread.join(10)
        self.database.close()


def _up_to(max_bytes: int | None, entries: Iterable[Entry]) -> list[Entry]:
    """``entries`` until their bodies add up to ``max_bytes`` (that one included)."""
    if max_bytes is None:
        return list(entries)
    taken: list[Entry] = []
    total = 0
    for entry in entries:
        taken.append(entry)
        total += len(entry.body)
        if total >= max_bytes:
            break
    return taken


def _resolve(batch: list[_Pending], first_seq: int | None) -> None:
    """Answer a batch with one wake-up per event loop, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], int]]] = {}
    for offset, item in enumerate(batch):
        seq = -1 if first_seq is None else first_seq + offset
        by_loop.setdefault(item.loop, []).append((item.future, seq))
    for loop, answers in by_loop.items():
        loop.call_soon_threadsafe(_answer, answers)


def _answer(answers: list[tuple[asyncio.Future[int], int]]) -> None:
    for future, seq in answers:
        if future.done():
            continue
        if seq < 0:
            future.set_exception(JournalUnavailable("the journal could not commit"))
        else:
            future.set_result(seq)
