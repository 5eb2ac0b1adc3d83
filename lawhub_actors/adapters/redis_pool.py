"""One way to open Redis for the adapters that use it (dedupe, rate limits).

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
