"""What other nodes tell this one through PostgreSQL (LISTEN).

- :data:`channels.FEED`: ``node tenant seq`` as a node's store commits feed
  events (:meth:`PgDatabase.commit`; delivered at the commit, in
  commit order): ``on_feed(tenant, seq)`` for every other node's.
- :data:`channels.SENDS`: ``partition message_id`` for a message a node
  accepted for a partition it does not hold: ``on_send(partition, id)``.
- :data:`channels.CONFIG`: ``version`` of a configuration a node applied
  and stored: ``on_config(version)``.

One thread per node listens on a connection of its own; after every
(re)connection it calls ``on_gap`` first: notices sent while it was away
are lost, so every feed client is to catch up from the store (and the
lease keeper's sweep finds the sends).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import structlog

from lawhub_actors.adapters import channels
from lawhub_actors.adapters.pg_connection import CONNECT_TIMEOUT_S

log = structlog.get_logger("lawhub.notices")

WAIT_S = 0.5
"""How long one wait for notices lasts (how soon a stop is noticed)."""
RETRY_S = 1.0


class Notices:
    def __init__(self, url: str, node: str, *, on_feed: Callable[[str, int], None],
                 on_send: Callable[[int, str], None], on_config: Callable[[int], None],
                 on_gap: Callable[[], None]) -> None:
        self._url = url
        self._node = node
        self._on_feed = on_feed
        self._on_send = on_send
        self._on_config = on_config
        self._on_gap = on_gap
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-notices", daemon=True)

    def start(self) -> Notices:
        self._thread.start()
        return self

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True,
                                     connect_timeout=CONNECT_TIMEOUT_S,
                                     application_name="lawhub-notices") as conn:
                    for channel in (channels.FEED, channels.SENDS, channels.CONFIG):
                        conn.execute(f"LISTEN {channel}")
                    failures = 0
                    self._on_gap()
                    while not self._stopping.is_set():
                        for notice in conn.notifies(timeout=WAIT_S):
                            self._heard(notice.channel, notice.payload)
            except psycopg.Error as error:
                failures += 1
                if failures == 1:
                    log.warning("notices_lost", error=repr(error))
                self._stopping.wait(RETRY_S)

    def _heard(self, channel: str, payload: str) -> None:
        try:
            if channel == channels.FEED:
                node, tenant, seq = payload.split(" ")
                if node != self._node:
                    self._on_feed(tenant, int(seq))
            elif channel == channels.SENDS:
                partition, message_id = payload.split(" ")
                self._on_send(int(partition), message_id)
            elif channel == channels.CONFIG:
                self._on_config(int(payload))
        except Exception as error:  # noqa: BLE001 - one bad notice never stops the listener
            log.warning("notice_not_handled", channel=channel, error=repr(error))

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(WAIT_S * 4 + 1)
