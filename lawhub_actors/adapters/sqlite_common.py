"""What the SQLite journal and store share: how they open connections,
their per-thread readers, and the writer thread's batching.

Both follow one pattern: a single writer thread takes everything queued
while its previous commit ran and commits it together (group commit);
readers on other threads each use their own connection (WAL: readers
never block the writer).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any, Literal

STOP = object()
"""Put on a writer's queue to end its thread after what is already queued."""


def connect(
    path: Path, *, synchronous: Literal["FULL", "NORMAL"], busy_timeout_ms: int = 5000
) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    return conn


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
