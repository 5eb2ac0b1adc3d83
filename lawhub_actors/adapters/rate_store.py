"""Where GCRA state lives: one *theoretical arrival time* (TAT) per key.

A rate-limiter actor reserves permits through :class:`RateStore`; the
arithmetic is :func:`lawhub_actors.core.gcra.reserve` (every request is
granted, with a wait). Two implementations:

- :class:`MemoryRateStore` — one process: a dict behind a lock, on an
  injectable monotonic clock.
- :class:`RedisRateStore` — shared by every gateway process that uses the
  same Redis: ONE Lua script does a whole ``reserve_all`` atomically on the
  Redis server's clock (``TIME``), so all processes agree on "now".

``reserve_all`` takes ONE permit under several limits at once (e.g. a
business number's throughput AND the pair rate of (number, recipient)): the
permit starts when every limit allows it,
``start = max_k max(now, tat_k - tau_k)``, and every key's TAT is advanced
as if the permit were used at that start, ``tat_k = max(tat_k, start) + T_k``.
So no limit is ever exceeded, and a permit that one limit delays does not
also eat a slot the other limit could have given earlier. With one key it is
exactly ``gcra.reserve``.

The price of that consistency: a TAT cannot leave a hole, so a permit that
one limit pushes into the future holds every other limit it was reserved
under until then. Reserving a 7th message to one recipient under (number
80/s, pair 1 per 6 s) makes the NUMBER's next permit, for any recipient,
wait ~6 s. Reserve under a pair rate only when that pair's permit is
(nearly) due (e.g. the actor parks a recipient's next message until that
recipient's previous permit has started), not far ahead of time.

A missing key behaves exactly like a key whose TAT has passed (both give
``start = now``, ``tat = now + T``), which is why stale state may be dropped:
the memory store sweeps it, Redis expires it.

The returned wait is relative to the store's own "now" (for Redis, the
server's clock when the script ran). The caller counts it from when the
answer arrives, which is a little later: it waits slightly longer, never
shorter.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import redis

from lawhub_actors.adapters.redis_pool import OwnsRedisClient
from lawhub_actors.core.gcra import SLACK_S, Rate, reserve

__all__ = [
    "KEY_PREFIX",
    "TAT_ORIGIN_S",
    "MemoryRateStore",
    "RateStore",
    "RedisRateStore",
    "rate_store_from",
]

KEY_PREFIX = "lawhub:gcra:"
"""Prefix of every Redis key :class:`RedisRateStore` writes."""

TAT_ORIGIN_S = 1_700_000_000
"""A TAT in Redis is microseconds since this Unix time, on the server's clock
(a recent origin keeps a double's resolution at ~0.016 µs, not 0.25 µs)."""


@runtime_checkable
class RateStore(Protocol):
    def reserve(self, key: str, rate: Rate) -> float:
        """Reserve one permit for ``key`` under ``rate``: seconds to wait
        before using it (0.0 = now). Atomic per key."""
        ...

    def reserve_all(self, keys_and_rates: Sequence[tuple[str, Rate]]) -> float:
        """Reserve ONE permit under every ``(key, rate)`` at once: seconds to
        wait until all of them allow it. Every key's TAT advances as if the
        permit were used then. Atomic across the keys. No pairs: 0.0. A key
        given twice: ``ValueError``."""
        ...

    def close(self) -> None: ...


def _check_unique(keys_and_rates: Sequence[tuple[str, Rate]]) -> None:
    keys = [key for key, _ in keys_and_rates]
    if len(set(keys)) != len(keys):
        # One TAT under two rates has no meaning as "one permit under several limits".
        raise ValueError("reserve_all: each key may appear only once")


class MemoryRateStore:
    """In-process GCRA state: ``key -> tat`` in a dict behind one lock.

    ``clock`` is any monotonic clock in seconds (``time.monotonic`` by
    default). Keys whose TAT has passed are swept once the dict has doubled
    since the last sweep (amortised O(1)), so idle keys do not accumulate.
    Thread-safe; atomic within this process only — use
    :class:`RedisRateStore` to share limits between processes.
    """

    _MIN_SWEEP = 1024

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._sweep_at = self._MIN_SWEEP

    def __len__(self) -> int:
        with self._lock:
            return len(self._tats)

    def tat(self, key: str) -> float | None:
        """The stored TAT of ``key`` (None when unused or swept)."""
        with self._lock:
            return self._tats.get(key)

    def reserve(self, key: str, rate: Rate) -> float:
        with self._lock:
            now = self._clock()
            granted = reserve(self._tats.get(key), now, rate)
            self._tats[key] = granted.tat
            self._maybe_sweep(now)
            return granted.start_at - now

    def reserve_all(self, keys_and_rates: Sequence[tuple[str, Rate]]) -> float:
        if not keys_and_rates:
            return 0.0
        _check_unique(keys_and_rates)
        with self._lock:
            now = self._clock()
            tats = self._tats
            start = max(reserve(tats.get(k), now, r).start_at for k, r in keys_and_rates)
            for key, rate in keys_and_rates:
                # start >= tat - tau for every key, so this reservation starts at `start`
                # and its tat is max(tat, start) + T.
                tats[key] = reserve(tats.get(key), start, rate).tat
            self._maybe_sweep(now)
            return start - now

    def close(self) -> None:
        with self._lock:
            self._tats.clear()

    def _maybe_sweep(self, now: float) -> None:
        if len(self._tats) < self._sweep_at:
            return
        self._tats = {k: t for k, t in self._tats.items() if t > now}
        self._sweep_at = max(self._MIN_SWEEP, 2 * len(self._tats))


# gcra.reserve over several keys, in microseconds since ARGV[2n+3] (the
# origin, Unix seconds) on the server's clock.
# KEYS[i]: a prefixed key. ARGV[2i-1], ARGV[2i]: its interval T and tolerance
# tau in seconds. ARGV[2n+1]: the expiry margin in ms. ARGV[2n+2]: gcra's
# SLACK in microseconds (a start due that close to now is now).
# Times are Lua numbers (doubles): (TIME's seconds - origin) * 1e6 +
# microseconds is an exact integer; a TAT keeps fractions of a microsecond.
# Numbers are written with %.17g, which round-trips a double (Lua's own
# tostring is %.14g; how redis.call converts a number differs by version),
# and the reply is such a string too (a number reply is truncated to an
# integer).
# Each key lives until its TAT plus the margin: past its TAT a key means the
# same as no key. Not a fixed TTL of tau + T: a queued TAT can lie further
# ahead, and expiring it then would forget reservations already handed out.
_RESERVE_ALL_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local n = #KEYS
local margin_ms = tonumber(ARGV[2 * n + 1])
local slack_us = tonumber(ARGV[2 * n + 2])
local t = redis.call('TIME')
local now = (tonumber(t[1]) - tonumber(ARGV[2 * n + 3])) * 1000000 + tonumber(t[2])
local tats = {}
local start = now
for i = 1, n do
  local raw = redis.call('GET', KEYS[i])
  if raw then
    local tat = tonumber(raw)
    if not tat then
      return redis.error_reply('ERR gcra: not a TAT at ' .. KEYS[i])
    end
    tats[i] = tat
    local earliest = tat - tonumber(ARGV[2 * i]) * 1000000
    if earliest > now + slack_us and earliest > start then start = earliest end
  end
end
for i = 1, n do
  local base = tats[i]
  if base == nil or base < start then base = start end
  local tat = base + tonumber(ARGV[2 * i - 1]) * 1000000
  local ttl_ms = math.ceil((tat - now) / 1000) + margin_ms
  if ttl_ms < 1 then ttl_ms = 1 end
  redis.call('SET', KEYS[i], string.format('%.17g', tat), 'PX', ttl_ms)
end
return string.format('%.17g', start - now)
"""


class RedisRateStore(OwnsRedisClient):
    """GCRA state shared by every process using the same Redis.

    Each ``reserve``/``reserve_all`` is one ``EVALSHA`` of one Lua script
    (redis-py's ``register_script``: on ``NOSCRIPT`` — after ``SCRIPT
    FLUSH`` or a restart — it loads the script and retries), which reads
    the keys' TATs, computes the start on the server's clock and writes
    every new TAT, atomically. Keys are ``KEY_PREFIX + key``; each expires
    ``expiry_margin_s`` after its TAT (an idle key vanishes; a missing key
    behaves exactly like a passed one).

    In Redis Cluster all keys of one ``reserve_all`` must share a hash slot:
    give them a common ``{hash tag}``.

    Errors: every Redis error (connection refused, timeout, pool exhausted
    after ``pool_timeout_s``, an error reply) propagates unchanged as a
    ``redis.RedisError``; nothing is retried here and nothing degrades — the
    limiter actor decides whether to wait, retry or fail. If the reply was
    lost (a timeout after the script ran) the permit may have been reserved
    anyway: at worst capacity is wasted, the rate is never exceeded.

    Connections come from a ``BlockingConnectionPool`` (redis-py's default
    pool raises ``MaxConnectionsError`` instead of waiting). When ``client``
    is given, ``url`` and the pool settings are ignored and ``close`` leaves
    that client open.
    """

    def __init__(
        self,
        url: str,
        *,
        client: redis.Redis | None = None,
        prefix: str = KEY_PREFIX,
        expiry_margin_s: float = 1.0,
        max_connections: int = 8,
        socket_timeout_s: float = 1.0,
        connect_timeout_s: float = 1.0,
        pool_timeout_s: float = 1.0,
    ) -> None:
        if not (math.isfinite(expiry_margin_s) and expiry_margin_s > 0):
            raise ValueError(f"expiry_margin_s must be > 0, got {expiry_margin_s}")
        self._prefix = prefix
        self._margin_ms = max(1, math.ceil(expiry_margin_s * 1000))
        super().__init__(client, url, max_connections=max_connections,
                         pool_timeout_s=pool_timeout_s, socket_timeout_s=socket_timeout_s,
                         connect_timeout_s=connect_timeout_s)
        self._script = self._client.register_script(_RESERVE_ALL_LUA)

    @property
    def prefix(self) -> str:
        return self._prefix

    def reserve(self, key: str, rate: Rate) -> float:
        return self.reserve_all(((key, rate),))

    def reserve_all(self, keys_and_rates: Sequence[tuple[str, Rate]]) -> float:
        if not keys_and_rates:
            return 0.0
        _check_unique(keys_and_rates)
        keys: list[str] = []
        args: list[float | int] = []
        for key, rate in keys_and_rates:
            keys.append(self._prefix + key)
            args += (rate.interval, rate.tolerance)  # repr(): round-trips the double
        args += (self._margin_ms, SLACK_S * 1_000_000, TAT_ORIGIN_S)
        wait_us = float(self._script(keys=keys, args=args))
        return max(0.0, wait_us / 1_000_000)


def rate_store_from(redis_url: str | None) -> RateStore:
    """Redis when a URL is configured (limits shared across processes), else memory."""
    if redis_url:
        return RedisRateStore(redis_url)
    return MemoryRateStore()
