"""One way to open Redis for the adapters that use it (dedupe, rate limits),
and to own (or borrow) the client.

A ``BlockingConnectionPool``: redis-py's default pool raises
``MaxConnectionsError`` instead of waiting (FACTS.md). Failures are not
retried here (``Retry(NoBackoff(), 0)``): each adapter decides what a Redis
error means for it.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def blocking_client(
    url: str, *, max_connections: int, pool_timeout_s: float, socket_timeout_s: float,
    connect_timeout_s: float,
) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout_s,  # wait for a free connection, then raise
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=connect_timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
    return redis.Redis(connection_pool=pool)


class OwnsRedisClient:
    """Holds a ``redis.Redis``: the caller's when given one (the caller
    closes it), else its own on a blocking pool, closed by :meth:`close`."""

    def __init__(
        self, client: redis.Redis | None, url: str, *, max_connections: int,
        pool_timeout_s: float, socket_timeout_s: float, connect_timeout_s: float,
    ) -> None:
        self._owns_client = client is None
        self._client: redis.Redis = client if client is not None else blocking_client(
            url, max_connections=max_connections, pool_timeout_s=pool_timeout_s,
            socket_timeout_s=socket_timeout_s, connect_timeout_s=connect_timeout_s,
        )

    @property
    def client(self) -> redis.Redis:
        return self._client

    def close(self) -> None:
        """Close the client and its connections if this object created it."""
        if self._owns_client:
            self._client.close()
            self._client.connection_pool.disconnect()
