"""Several real gateway nodes (``run.py`` processes) on one private PostgreSQL
and Redis: start them, post Meta's webhooks to all of them at once, and read
back what the cluster stored, in each conversation's order."""

from __future__ import annotations

import asyncio
import base64
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lawhub_actors.adapters import leases
from lawhub_actors.adapters.pg_store import PgDatabase
from lawhub_actors.adapters.store import Store
from lawhub_actors.adapters.store_tx import WAMID, Tx
from lawhub_actors.core.crypto import Keyring
from lawhub_actors.core.partitions import Lease
from lawhub_actors.simulator import traffic
from tests.conftest import APP_SECRET, MASTER_KEY, SHIPPED_CONFIG
from tests.e2e.outbound_helpers import NUMBER_A, Gateway, Gateways

KEYRING = Keyring({1: base64.b64decode(MASTER_KEY)}, 1)

Stored = dict[str, list[str]]
"""Each customer's stored inbound wamids, in conversation order."""


PARTITIONS = 16


def cluster_config(path: Path, *, lease_s: float, partitions: int = PARTITIONS) -> Path:
    shipped = SHIPPED_CONFIG.read_text()
    assert "[storage]\n" in shipped
    path.write_text(shipped.replace("[storage]\n", '[storage]\nbackend = "postgres"\n', 1)
                    + f"\n[cluster]\npartitions = {partitions}\nlease_s = {lease_s}\n")
    return path


class Cluster:
    """Nodes sharing one database; each logs and keeps media under its own dir."""

    def __init__(self, root: Path, config: Path, database_url: str, redis_url: str,
                 gateways: Gateways) -> None:
        self.root, self.config = root, config
        self.env = {"LAWHUB_DATABASE_URL": database_url, "LAWHUB_REDIS_URL": redis_url}
        self.gateways = gateways
        self.nodes: dict[str, Gateway] = {}
        self.store = Store(PgDatabase(database_url), KEYRING)

    def start(self, name: str) -> Gateway:
        node = self.gateways.start(self.root / name, self.config, LAWHUB_NODE_ID=name,
                                   **self.env)
        self.nodes[name] = node
        return node

    def leases(self) -> list[Lease]:
        return self.store.read(leases.read_leases)

    def owners(self) -> dict[str | None, int]:
        counts: dict[str | None, int] = defaultdict(int)
        now = time.time()
        for lease in self.leases():
            counts[lease.owner if lease.held(now) else None] += 1
        return dict(counts)

    def stored(self) -> Stored:
        return self.store.read_tx(_stored)

    def close(self) -> None:
        self.store.close()


def _stored(tx: Tx) -> Stored:
    # Messages first: each statement reads its own snapshot, and a message's
    # customer is committed with it or before.
    messages = tx.conn.execute(
        "SELECT id, tenant, customer, key_id, content FROM messages"
        " WHERE direction = 'in' ORDER BY tenant, customer, conv_seq").fetchall()
    number_of = {(tenant, ref): tx.unseal(tenant, key_id, profile,
                                          f"customer:{tenant}:{ref}")["number"]
                 for tenant, ref, key_id, profile in tx.conn.execute(
                     "SELECT tenant, customer, key_id, profile FROM customers")}
    stored: Stored = defaultdict(list)
    for message_id, tenant, ref, key_id, content in messages:
        opened = tx.unseal(tenant, key_id, content, f"message:{tenant}:{message_id}")
        stored[number_of[tenant, ref]].append(opened[WAMID])
    return dict(stored)


def received_events(store: Store) -> dict[str, int]:
    """How many ``message.received`` events each wamid has on the feed."""
    def read(tx: Tx) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for tenant, seq, key_id, data in tx.conn.execute(
                "SELECT tenant, seq, key_id, data FROM events WHERE type = 'message.received'"):
            counts[tx.unseal(tenant, key_id, data, f"event:{tenant}:{seq}")["wamid"]] += 1
        return dict(counts)

    return store.read_tx(read)


def conversations(count: int) -> list[str]:
    return [f"62815{n:08d}" for n in range(count)]


async def post_rounds(urls: list[str], customers: list[str], rounds: int, per_post: int,
                      *, between_rounds: Any = None) -> Stored:
    """``rounds`` rounds; in each, every customer writes once, in POSTs of
    ``per_post`` messages spread over ``urls`` at once. A round starts when
    every POST of the one before was answered, so each conversation's order
    is the rounds'. What was acknowledged (200), by customer, in order; a
    POST refused or cut off (a node killed) acknowledged nothing."""
    acked: Stored = defaultdict(list)
    rng = random.Random(7)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for round_ in range(rounds):
            if between_rounds is not None:
                between_rounds(round_)
            order = customers[:]
            rng.shuffle(order)
            posts = []
            for start in range(0, len(order), per_post):
                batch = [(c, traffic.wamid()) for c in order[start:start + per_post]]
                changes = [traffic.text_message(NUMBER_A, c, f"bagian {round_} dari {c}",
                                                message_id=w, timestamp=1_767_000_000 + round_)
                           for c, w in batch]
                posts.append((batch, traffic.signed(traffic.envelope(*changes),
                                                    APP_SECRET.encode())))

            async def post(index: int, batch: list[tuple[str, str]], signed: Any) -> None:
                for attempt in range(len(urls)):  # a dead node: Meta tries again, elsewhere
                    url = urls[(index + attempt) % len(urls)]
                    try:
                        async with session.post(f"{url}/webhook", data=signed.body,
                                                headers=signed.headers) as response:
                            if response.status == 200:
                                for customer, wamid in batch:
                                    acked[customer].append(wamid)
                                return
                    except aiohttp.ClientError:
                        continue

            await asyncio.gather(*(post(i, b, s) for i, (b, s) in enumerate(posts)))
    return dict(acked)


class TakeoverWatch:
    """From :meth:`start` (the kill), how long until no partition is held by
    ``dead`` any more: each taken by a live node (polled every 50 ms)."""

    def __init__(self, cluster: Cluster, dead: str) -> None:
        self._cluster, self._dead = cluster, dead
        self._done = threading.Event()
        self._took: float | None = None

    def start(self) -> None:
        started = time.monotonic()

        def watch() -> None:
            while time.monotonic() - started < 60:
                held = self._cluster.leases()
                if all(lease.owner != self._dead and lease.owner is not None for lease in held):
                    self._took = time.monotonic() - started
                    break
                time.sleep(0.05)
            self._done.set()

        threading.Thread(target=watch, daemon=True).start()

    def took(self, timeout: float) -> float:
        """Seconds from the kill to the last partition taken over."""
        assert self._done.wait(timeout + 60), "the takeover watch never ended"
        assert self._took is not None, f"{self._dead}'s partitions were never all taken over"
        return self._took


def until(check: Any, *, timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, redis_url: str,
            gateways: Gateways) -> Iterator[Cluster]:
    made = Cluster(tmp_path, cluster_config(tmp_path / "cluster.toml", lease_s=3.0),
                   postgres_url, redis_url, gateways)
    try:
        yield made
    finally:
        gateways.close()
        made.close()
