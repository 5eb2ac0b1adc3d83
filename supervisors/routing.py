"""Routers (pure): which worker of a pool gets a message.

Consistent hashing uses Lamping & Veach's *jump consistent hash*: workers
are numbered ``0..n-1``; growing from ``n`` to ``m`` moves only about
``(m-n)/m`` of the keys, all of them onto the new workers, and shrinking
moves only the keys of the removed (highest-numbered) workers. No ring to
store, and a perfectly even spread.
"""

from __future__ import annotations

import hashlib
import itertools
from functools import lru_cache

_MASK64 = (1 << 64) - 1


@lru_cache(maxsize=65_536)
def key_hash(key: str) -> int:
    """A stable 64-bit hash of ``key`` (the same in every process, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def jump_hash(key: int, buckets: int) -> int:
    """Bucket in ``[0, buckets)`` for a 64-bit ``key`` (jump consistent hash)."""
    if buckets < 1:
        raise ValueError("buckets must be >= 1")
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & _MASK64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def consistent_index(key: str, buckets: int) -> int:
    return jump_hash(key_hash(key), buckets)


class RoundRobin:
    """Next index in turn; thread-safe enough under the GIL (``next`` on a
    ``count`` is atomic)."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def index(self, buckets: int) -> int:
        return next(self._counter) % buckets
