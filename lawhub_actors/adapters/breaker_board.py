"""Where a business number's open circuit is shown to every node.

A node whose breaker opens for a number posts it here: until when it stays
open and how many times in a row it opened. Every node's breaker for that
number looks here every :data:`LOOK_EVERY_S` and, closed, opens until the
same moment (:func:`lawhub_actors.core.breaker.opened_elsewhere`): a number
Meta is refusing is left alone by the whole cluster within a second, not
by one node at a time. On Redis (several nodes) a key per number that
expires when the circuit may be tried again; alone, nothing to share.

A Redis error is the board's own problem: a breaker that cannot post or
look goes on with what it knows (its own circuit still protects its sends).
"""

from __future__ import annotations

import math
import time
from typing import Protocol

import redis
import structlog

from lawhub_actors.adapters.redis_pool import OwnsRedisClient

log = structlog.get_logger("lawhub.outbound")

LOOK_EVERY_S = 0.5
KEY_PREFIX = "lawhub:circuit:"


class BreakerBoard(Protocol):
    def post(self, number: str, until: float, opens: int) -> None:
        """The number's circuit opened here, until ``until`` (wall clock)."""

    def look(self, number: str) -> tuple[float, int] | None:
        """``(until, opens)`` if a node has the number's circuit open now."""

    def close(self) -> None: ...


class LocalBoard:
    """One node: its breakers are the only ones."""

    def post(self, number: str, until: float, opens: int) -> None:
        return None

    def look(self, number: str) -> tuple[float, int] | None:
        return None

    def close(self) -> None:
        return None


class RedisBoard(OwnsRedisClient):
    def __init__(self, url: str, *, client: redis.Redis | None = None) -> None:
        super().__init__(client, url, max_connections=4, pool_timeout_s=0.5,
                         socket_timeout_s=0.5, connect_timeout_s=0.5)

    def post(self, number: str, until: float, opens: int) -> None:
        left_ms = math.ceil((until - time.time()) * 1000)
        if left_ms <= 0:
            return
        try:
            self._client.set(KEY_PREFIX + number, f"{until!r} {opens}", px=left_ms)
        except redis.RedisError as error:
            log.warning("circuit_not_shared", phone_number_id=number, error=repr(error))

    def look(self, number: str) -> tuple[float, int] | None:
        try:
            found = self._client.get(KEY_PREFIX + number)
        except redis.RedisError:
            return None
        if not found:
            return None
        text = found.decode() if isinstance(found, bytes) else str(found)
        until, _, opens = text.partition(" ")
        return float(until), int(opens)


def breaker_board_from(redis_url: str | None) -> BreakerBoard:
    return RedisBoard(redis_url) if redis_url else LocalBoard()
