"""Dedupe fast path for webhook updates: "have I already done this?".

The dispatcher keys inbound messages by ``wamid`` and statuses by
``wamid:status``. The durable store (SQLite, unique constraints) is the real
guarantee over Meta's 7-day retry horizon; this adapter only lets the
dispatcher skip work it has already done. Hence the two-step API:

1. ``seen(keys)`` — which of these were already handled?
2. ``mark(keys)`` — called only AFTER the effect is durable, so a crash
   between the two never loses a message (at worst it is processed again
   and the durable store's unique constraint absorbs the duplicate).

A mark is first-writer-wins: marking a key that is already marked does not
extend its lifetime (Redis ``SET NX EX`` semantics, mirrored in memory), so
a key is forgotten ``ttl`` after it was first marked, however often it is
retried.

Everything here is synchronous: it runs in an actor thread. Redis errors
(connection refused, timeouts, pool exhausted) propagate — the actor
crashes and its supervisor restarts it; nothing is retried silently.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["Dedupe", "MemoryDedupe", "RedisDedupe", "dedupe_from"]


@runtime_checkable
class Dedupe(Protocol):
    def seen(self, keys: Sequence[str]) -> set[str]:
        """The subset of ``keys`` already marked (and not expired)."""
        ...

    def mark(self, keys: Sequence[str]) -> None:
        """Record ``keys`` as done. Call only once the effect is durable."""
        ...

    def close(self) -> None: ...


class MemoryDedupe:
    """Bounded in-process dedupe: an OrderedDict of key -> expiry deadline.

    Order is the order of first mark, which (one TTL for all) is also expiry
    order: expired entries are purged from the front, and when the map is
    full the oldest mark is evicted first. ``seen`` does not refresh an entry
    (a lookup says nothing about how recently the work was done). Expired
    entries always count as unseen, even before they are purged. Never holds
    more than ``max_entries``. Thread-safe.
    """

    def __init__(
        self,
        max_entries: int,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        self._max = max_entries
        self._ttl = float(ttl_s)
        self._clock = clock
        self._entries: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def seen(self, keys: Sequence[str]) -> set[str]:
        with self._lock:
            now = self._clock()
            entries = self._entries
            return {k for k in keys if entries.get(k, now) > now}

    def mark(self, keys: Sequence[str]) -> None:
        self.claim(keys)

    def claim(self, keys: Sequence[str]) -> list[bool]:
        """Mark each key; True where this call was the first (live) mark.

        Atomic within this process only — use ``RedisDedupe.claim`` across
        processes.
        """
        if not keys:
            return []
        with self._lock:
            now = self._clock()
            self._purge_expired(now)
            entries = self._entries
            deadline = now + self._ttl
            won: list[bool] = []
            for key in keys:
                expiry = entries.get(key)
                if expiry is not None and expiry > now:
                    won.append(False)
                    continue
                if expiry is not None:  # expired but not yet purged
                    del entries[key]
                entries[key] = deadline
                won.append(True)
                if len(entries) > self._max:
                    entries.popitem(last=False)
            return won

    def close(self) -> None:
        with self._lock:
            self._entries.clear()

    def _purge_expired(self, now: float) -> None:
        entries = self._entries
        while entries:
            key, expiry = next(iter(entries.items()))
            if expiry > now:
                return
            del entries[key]


class RedisDedupe:
    """Dedupe shared by every process that uses the same Redis and namespace.

    ``seen`` is one ``MGET`` (one command, one round trip, whatever the batch
    size); ``mark`` and ``claim`` are one non-transactional pipeline of
    ``SET key 1 NX EX ttl`` (one round trip). Keys are ``namespace + key``.

    Connections come from a ``BlockingConnectionPool`` (a plain pool raises
    ``MaxConnectionsError`` instead of waiting) with explicit socket, connect
    and pool-wait timeouts and no automatic retries: an error reaches the
    caller (let it crash). A retry would also be wrong for ``claim``: if the
    first attempt's reply was lost, the retry would report the caller's own
    claim as someone else's.

    When ``client`` is given, ``url`` and the pool settings are ignored and
    ``close`` leaves that client open (its owner closes it).
    """

    def __init__(
        self,
        url: str,
        ttl_s: int,
        namespace: str = "lawhub:dedupe:",
        client: redis.Redis | None = None,
        *,
        max_connections: int = 4,
        socket_timeout_s: float = 1.0,
        connect_timeout_s: float = 1.0,
        pool_timeout_s: float = 1.0,
    ) -> None:
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1:
            raise ValueError(f"ttl_s must be an int >= 1 (Redis EX), got {ttl_s!r}")
        self._ttl = ttl_s
        self._ns = namespace
        self._owns_client = client is None
        if client is None:
            pool = redis.BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=pool_timeout_s,  # wait for a free connection, then raise
                socket_timeout=socket_timeout_s,
                socket_connect_timeout=connect_timeout_s,
                retry=Retry(NoBackoff(), 0),
                health_check_interval=0,
            )
            client = redis.Redis(connection_pool=pool)
        self._client: redis.Redis = client

    @property
    def client(self) -> redis.Redis:
        return self._client

    @property
    def namespace(self) -> str:
        return self._ns

    def seen(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        unique = list(dict.fromkeys(keys))
        ns = self._ns
        values = self._client.mget([ns + k for k in unique])
        return {k for k, v in zip(unique, values, strict=True) if v is not None}

    def mark(self, keys: Sequence[str]) -> None:
        if keys:
            self._set_nx(list(dict.fromkeys(keys)))

    def claim(self, keys: Sequence[str]) -> list[bool]:
        """Atomically claim each key across processes: True = this caller was first.

        One ``SET NX EX`` per key (each atomic in Redis), all in one pipeline.
        A key repeated within ``keys`` is won at most once (its first
        occurrence). If this raises, some keys may be claimed without the
        caller knowing: a claim is only safe where the durable store remains
        the final arbiter.
        """
        if not keys:
            return []
        return [bool(r) for r in self._set_nx(list(keys))]

    def close(self) -> None:
        if self._owns_client:
            self._client.close()
            self._client.connection_pool.disconnect()

    def _set_nx(self, keys: list[str]) -> list[object]:
        ns, ttl = self._ns, self._ttl
        with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(ns + key, 1, nx=True, ex=ttl)
            return pipe.execute()


def dedupe_from(redis_url: str | None, ttl_s: float, max_entries: int) -> Dedupe:
    """Redis when a URL is configured (shared across processes), else memory.

    Redis TTLs are whole seconds: ``ttl_s`` is rounded up. ``max_entries``
    bounds only the in-memory store; Redis memory is bounded by the TTL and
    the server's own ``maxmemory`` policy.
    """
    if redis_url:
        return RedisDedupe(redis_url, ttl_s=max(1, math.ceil(ttl_s)))
    return MemoryDedupe(max_entries=max_entries, ttl_s=ttl_s)
