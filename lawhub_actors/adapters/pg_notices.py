"""Notices of the feed events other nodes commit (PostgreSQL LISTEN).

Every node's store sends ``node tenant seq`` on :data:`FEED_CHANNEL` as it
commits events (:meth:`PgDatabase.committing`; PostgreSQL delivers a
notice at its commit, in commit order). One thread per node listens on a
connection of its own and hands each other node's notice to ``on_notice``;
after every (re)connection it calls ``on_gap`` first: notices sent while it
was away are lost, so every client is to catch up from the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import structlog

from lawhub_actors.adapters.pg_connection import CONNECT_TIMEOUT_S
from lawhub_actors.adapters.pg_store import FEED_CHANNEL

log = structlog.get_logger("lawhub.feed")

WAIT_S = 0.5
"""How long one wait for notices lasts (how soon a stop is noticed)."""
RETRY_S = 1.0


class FeedNotices:
    def __init__(self, url: str, node: str, on_notice: Callable[[str, int], None],
                 on_gap: Callable[[], None]) -> None:
        self._url = url
        self._node = node
        self._on_notice = on_notice
        self._on_gap = on_gap
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feed-notices", daemon=True)

    def start(self) -> FeedNotices:
        self._thread.start()
        return self

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True,
                                     connect_timeout=CONNECT_TIMEOUT_S,
                                     application_name="lawhub-notices") as conn:
                    conn.execute(f"LISTEN {FEED_CHANNEL}")
                    failures = 0
                    self._on_gap()
                    while not self._stopping.is_set():
                        for notice in conn.notifies(timeout=WAIT_S):
                            self._heard(notice.payload)
            except psycopg.Error as error:
                failures += 1
                if failures == 1:
                    log.warning("feed_notices_lost", error=repr(error))
                self._stopping.wait(RETRY_S)

    def _heard(self, payload: str) -> None:
        node, _, rest = payload.partition(" ")
        tenant, _, seq = rest.partition(" ")
        if node != self._node and tenant and seq.isdigit():
            self._on_notice(tenant, int(seq))

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(WAIT_S * 4 + 1)



