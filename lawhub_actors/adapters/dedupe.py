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

Everything here is synchronous: it runs in an actor thread.

Redis is only the fast path, so an outage degrades it instead of failing
the caller: on any Redis error (connection refused, timeout, pool
exhausted, an error reply) ``seen`` answers "nothing seen" (the durable
store then absorbs the duplicates) and ``mark`` skips. Nothing is retried:
each call tries Redis once, so the first call after Redis is back uses it
again. The outage is logged as a warning at most once per ``warn_every_s``
while it lasts (with how many calls it degraded meanwhile), and Redis
answering again as one info line (see ``_Outage``). Logs name the
operation and the error's class, never a key nor the error's text (a
pipeline error quotes its command, keys included, and a key may hold a
customer's number). ``claim`` cannot degrade honestly (it would have to
invent a winner), so its errors still propagate.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import redis

from lawhub_actors.adapters.redis_pool import OwnsRedisClient

__all__ = ["WARN_EVERY_S", "Dedupe", "MemoryDedupe", "RedisDedupe", "dedupe_from"]

log = logging.getLogger("lawhub.dedupe")

WARN_EVERY_S = 5.0
"""While Redis is down, at most one warning per this many seconds."""


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


class RedisDedupe(OwnsRedisClient):
    """Dedupe shared by every process that uses the same Redis and namespace.

    ``seen`` is one ``MGET`` (one command, one round trip, whatever the batch
    size); ``mark`` and ``claim`` are one non-transactional pipeline of
    ``SET key 1 NX EX ttl`` (one round trip). Keys are ``namespace + key``.

    Connections come from a ``BlockingConnectionPool`` (a plain pool raises
    ``MaxConnectionsError`` instead of waiting) with explicit socket, connect
    and pool-wait timeouts and no automatic retries, so a call that fails
    costs at most those timeouts. ``seen`` and ``mark`` then degrade (see the
    module docstring); ``claim`` raises. A retry would also be wrong for
    ``claim``: if the first attempt's reply was lost, the retry would report
    the caller's own claim as someone else's.

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
        warn_every_s: float = WARN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1:
            raise ValueError(f"ttl_s must be an int >= 1 (Redis EX), got {ttl_s!r}")
        self._ttl = ttl_s
        self._ns = namespace
        super().__init__(client, url, max_connections=max_connections,
                         pool_timeout_s=pool_timeout_s, socket_timeout_s=socket_timeout_s,
                         connect_timeout_s=connect_timeout_s)
        self._outage = _Outage(warn_every_s, clock)

    @property
    def namespace(self) -> str:
        return self._ns

    def seen(self, keys: Sequence[str]) -> set[str]:
        """Already marked keys; none while Redis is unreachable (the store dedupes)."""
        if not keys:
            return set()
        unique = list(dict.fromkeys(keys))
        ns = self._ns
        try:
            values = self._client.mget([ns + k for k in unique])
        except redis.RedisError as error:
            self._outage.failed("seen", error)
            return set()
        self._outage.answered()
        return {k for k, v in zip(unique, values, strict=True) if v is not None}

    def mark(self, keys: Sequence[str]) -> None:
        """Marks ``keys``; skipped while Redis is unreachable (only saves work later)."""
        if not keys:
            return
        try:
            self._set_nx(list(dict.fromkeys(keys)))
        except redis.RedisError as error:
            self._outage.failed("mark", error)
            return
        self._outage.answered()

    def claim(self, keys: Sequence[str]) -> list[bool]:
        """Atomically claim each key across processes: True = this caller was first.

        One ``SET NX EX`` per key (each atomic in Redis), all in one pipeline.
        A key repeated within ``keys`` is won at most once (its first
        occurrence). If this raises, some keys may be claimed without the
        caller knowing: a claim is only safe where the durable store remains
        the final arbiter. Unlike ``seen`` and ``mark`` it does not degrade:
        no answer would be true for every caller.
        """
        if not keys:
            return []
        return [bool(r) for r in self._set_nx(list(keys))]

    def _set_nx(self, keys: list[str]) -> list[object]:
        ns, ttl = self._ns, self._ttl
        with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(ns + key, 1, nx=True, ex=ttl)
            return pipe.execute()


class _Outage:
    """Whether Redis is down, and saying so without flooding the log.

    A failed call warns unless a warning was logged less than ``warn_every_s``
    ago (whichever outage it was about); each warning counts the calls
    degraded since the previous one. The first success after a failure logs
    one info line if that outage was warned about, so a flapping Redis logs
    at most a warning and a recovery per ``warn_every_s``. Thread-safe; a
    success while Redis is up costs one attribute read.
    """

    def __init__(self, warn_every_s: float, clock: Callable[[], float]) -> None:
        if not warn_every_s >= 0:
            raise ValueError(f"warn_every_s must be >= 0, got {warn_every_s}")
        self._every = warn_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self.down = False
        self._since = 0.0  # when the current outage began
        self._degraded = 0  # calls degraded during the current outage
        self._reported = False  # the current outage has been warned about
        self._warned_at: float | None = None
        self._unwarned = 0  # calls degraded since the last warning

    def failed(self, op: str, error: redis.RedisError) -> None:
        with self._lock:
            now = self._clock()
            if not self.down:
                self.down, self._since, self._degraded, self._reported = True, now, 0, False
            self._degraded += 1
            self._unwarned += 1
            if self._warned_at is not None and now - self._warned_at < self._every:
                return
            # The error's class only: a pipeline error's text quotes its keys.
            log.warning("dedupe_redis_unavailable", extra={
                "op": op,
                "error": type(error).__name__,
                "degraded_calls": self._unwarned,
                "down_for_s": round(now - self._since, 3),
            })
            self._warned_at, self._unwarned, self._reported = now, 0, True

    def answered(self) -> None:
        if not self.down:  # the common case, without the lock
            return
        with self._lock:
            if not self.down:
                return
            self.down = False
            if self._reported:  # else its calls are counted in the next warning
                log.info("dedupe_redis_recovered", extra={
                    "degraded_calls": self._degraded,
                    "down_for_s": round(self._clock() - self._since, 3),
                })
                self._unwarned = 0


def dedupe_from(redis_url: str | None, ttl_s: float, max_entries: int) -> Dedupe:
    """Redis when a URL is configured (shared across processes), else memory.

    Redis TTLs are whole seconds: ``ttl_s`` is rounded up. ``max_entries``
    bounds only the in-memory store; Redis memory is bounded by the TTL and
    the server's own ``maxmemory`` policy.
    """
    if redis_url:
        return RedisDedupe(redis_url, ttl_s=max(1, math.ceil(ttl_s)))
    return MemoryDedupe(max_entries=max_entries, ttl_s=ttl_s)
