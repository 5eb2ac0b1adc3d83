"""What the SQLite journal and store share: how they open connections,
their per-thread readers, and the writer thread's batching.

Both follow one pattern: a single writer thread takes everything queued
while its previous commit ran and commits it together (group commit);
readers on other threads each use their own connection (WAL: readers
never block the writer); and a :class:`Checkpointer` thread copies the
WAL back into the database, so no commit waits for that. A
:class:`SqliteFile` holds the three for one file.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("lawhub.sqlite")

STOP = object()
"""Put on a writer's queue to end its thread after what is already queued."""


BACKSTOP_PAGES = 10_000
"""The WAL size (pages of 4 KiB: ~40 MB) at which a writer with a
:class:`Checkpointer` checkpoints in its own commit after all."""

WAL_SIZE_LIMIT = 64 * 1024 * 1024
"""Bytes a WAL file is cut back to when it starts over (SQLite leaves it at
its largest otherwise)."""


def connect(
    path: Path, *, synchronous: Literal["FULL", "NORMAL"], busy_timeout_ms: int = 5000,
    checkpointer: bool = False, backstop_pages: int = BACKSTOP_PAGES,
) -> sqlite3.Connection:
    """A connection in WAL mode. ``checkpointer=True`` for the writer of a
    file a :class:`Checkpointer` looks after: its commits checkpoint only
    past ``backstop_pages`` (instead of SQLite's 1,000)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    if checkpointer:
        conn.execute(f"PRAGMA wal_autocheckpoint={int(backstop_pages)}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    return conn


CHECKPOINT_EVERY_S = 0.5
FAILURE_LOG_EVERY_S = 60.0


class Checkpointer:
    """Checkpoints one WAL file on a thread of its own, every ``every_s`` after
    a commit was :meth:`noted`.

    SQLite's automatic checkpoint runs inside the commit that pushes the WAL
    past 1,000 pages: that commit then also copies ~4 MB into the database
    and fsyncs it, and every request waiting on it (a webhook's 200) waits
    ~100 ms longer about once a second under load. A PASSIVE checkpoint
    from another connection copies the same pages while the writer goes on
    appending (it takes no write lock and never waits for readers).

    The WAL starts over at its beginning only at a commit that finds every
    frame copied, which a checkpoint racing a steady stream of commits never
    leaves. So the writer keeps an automatic checkpoint as a backstop, at
    :data:`BACKSTOP_PAGES` (``connect(checkpointer=True)``): by then this
    thread has copied nearly everything, the writer's checkpoint copies the
    rest (little: a short stall every ~40 MB of WAL, not ~100 ms every 4
    MB), and the WAL starts over and is cut back to
    :data:`WAL_SIZE_LIMIT`."""

    def __init__(self, path: Path, *, synchronous: Literal["FULL", "NORMAL"],
                 every_s: float = CHECKPOINT_EVERY_S) -> None:
        self._path = path
        self._synchronous: Literal["FULL", "NORMAL"] = synchronous
        self._every_s = every_s
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self.checkpoints = 0
        self.failures = 0
        self._failure_logged = float("-inf")
        self._thread = threading.Thread(target=self._run, name=f"checkpoint-{path.stem}",
                                        daemon=True)
        self._thread.start()

    def noted(self) -> None:
        """A commit was made: checkpoint within ``every_s`` (any thread)."""
        self._dirty.set()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stopping.is_set():
                self._dirty.wait()
                if self._stopping.wait(self._every_s):
                    break
                self._dirty.clear()
                conn = self._checkpoint(conn)
            conn = self._checkpoint(conn)
        finally:
            if conn is not None:
                conn.close()

    def _checkpoint(self, conn: sqlite3.Connection | None) -> sqlite3.Connection | None:
        """One PASSIVE checkpoint; the connection to use next time (a fresh
        one after a failure)."""
        try:
            if conn is None:
                conn = connect(self._path, synchronous=self._synchronous)
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as error:  # the next commit asks again; the WAL keeps all
            self.failures += 1
            now = time.monotonic()
            if now - self._failure_logged >= FAILURE_LOG_EVERY_S:
                self._failure_logged = now
                log.warning("checkpoint failed", extra={
                    "file": self._path.name, "error": repr(error), "failures": self.failures})
            if conn is not None:
                conn.close()
            return None
        self.checkpoints += 1
        return conn

    def close(self) -> None:
        """A last checkpoint, then the thread ends (call after the writer's
        last commit)."""
        self._stopping.set()
        self._dirty.set()
        self._thread.join(10)


def take_batch(items: queue.SimpleQueue[Any], limit: int) -> list[Any] | None:
    """Block for one item, then take whatever else is queued, up to ``limit``.
    ``None`` when the queue says :data:`STOP` before anything else."""
    first = items.get()
    if first is STOP:
        return None
    batch = [first]
    while len(batch) < limit:
        try:
            item = items.get_nowait()
        except queue.Empty:
            break
        if item is STOP:
            items.put(STOP)  # finish this batch, stop at the next call
            break
        batch.append(item)
    return batch


class Readers:
    """One read connection per thread, all closed together."""

    def __init__(self, path: Path, *, synchronous: Literal["FULL", "NORMAL"]) -> None:
        self._path = path
        self._synchronous: Literal["FULL", "NORMAL"] = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, synchronous=self._synchronous)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


class SqliteFile:
    """One database file as the store and the journal each keep theirs: a
    writer connection (its schema made by :meth:`open`), one reader per
    thread, and a :class:`Checkpointer`; all closed by :meth:`close`."""

    def __init__(self, path: Path, *, synchronous: Literal["FULL", "NORMAL"],
                 busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._synchronous: Literal["FULL", "NORMAL"] = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: sqlite3.Connection | None = None
        self._checkpointer: Checkpointer | None = None
        self._readers = Readers(path, synchronous=synchronous)

    def open(self, schema: str) -> sqlite3.Connection:
        """The writer's connection, with ``schema`` run on it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = writer = connect(self.path, synchronous=self._synchronous,
                                        busy_timeout_ms=self._busy_timeout_ms, checkpointer=True)
        writer.executescript(schema)
        self._checkpointer = Checkpointer(self.path, synchronous=self._synchronous)
        return writer

    def recover(self, writer: sqlite3.Connection) -> sqlite3.Connection:
        """``writer`` rolled back after a failed commit."""
        if writer.in_transaction:
            writer.execute("ROLLBACK")
        return writer

    def reader(self) -> sqlite3.Connection:
        return self._readers.get()

    def committed(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.noted()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._readers.close()
