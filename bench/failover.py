"""Failover: from a node's kill -9 to its partitions processing again.

Three ``run.py`` nodes share a private PostgreSQL and Redis
(``[storage] backend = "postgres"``, ``[cluster] partitions = 16``,
``lease_s`` as given: 3 s here, 10 s by default). Each round kills one
node (SIGKILL) and, at once, posts a text message for a conversation in a
partition the dead node held to a live node; the figure is the time from
the kill to that message stored (the dead node's lease runs out, a live
node's keeper takes the partition at its next tick, its dispatcher reads
from the partition's cursor). Then the node is started again and the
three share the partitions before the next round. The expected figure is
``lease_s`` plus up to one keeper tick (``lease_s / 3``) plus the
processing itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp
import psycopg

from bench.common import CONFIG, SECRET, Figures, gateway, percentile
from bench.nodes import shared_storage
from bench.report import print_section
from lawhub_actors.core.partitions import partition_of
from lawhub_actors.simulator import traffic

KILLS = 10
LEASE_S = 3.0
PARTITIONS = 16
NUMBER_A = "106540352242922"
TIMEOUT_S = 60.0


def _config(tmp: Path, lease_s: float) -> Path:
    text = CONFIG.read_text().replace("[storage]\n", '[storage]\nbackend = "postgres"\n', 1)
    path = tmp / "failover.toml"
    path.write_text(text + f"\n[cluster]\npartitions = {PARTITIONS}\nlease_s = {lease_s}\n")
    return path


def _owners(url: str) -> dict[int, str | None]:
    with psycopg.connect(url) as conn:
        now = time.time()
        return {int(p): (o if until > now else None) for p, o, until in conn.execute(
            "SELECT id, owner, lease_until FROM partitions")}


def _stored(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM messages").fetchone()
    return int(row[0]) if row else 0


async def _post(url: str, customer: str) -> None:
    change = traffic.text_message(NUMBER_A, customer, "halo, masih ada?")
    signed = traffic.signed(traffic.envelope(change), SECRET.encode())
    async with aiohttp.ClientSession() as session, session.post(
            f"{url}/webhook", data=signed.body, headers=signed.headers) as response:
        assert response.status == 200, response.status


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def run(kills: int = KILLS, lease_s: float = LEASE_S) -> Figures:
    names = ["node-1", "node-2", "node-3"]
    took: list[float] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-failover-")))
        env, _ = stack.enter_context(shared_storage(tmp))
        url = env["LAWHUB_DATABASE_URL"]
        config = _config(tmp, lease_s)
        nodes: dict[str, tuple[contextlib.ExitStack, str, int]] = {}

        def start(name: str) -> None:
            own = contextlib.ExitStack()
            node = own.enter_context(gateway(tmp / name, config, log=tmp / f"{name}.log",
                                             LAWHUB_NODE_ID=name, **env))
            nodes[name] = (own, node.url, node.pid)

        def balanced() -> bool:
            held = list(_owners(url).values())
            return all(held.count(name) >= PARTITIONS // 3 for name in names)

        for name in names:
            start(name)
        _wait(balanced, 30, "three nodes sharing the partitions")
        for round_ in range(kills):
            victim = names[round_ % 3]
            mine = {p for p, owner in _owners(url).items() if owner == victim}
            customer = next(f"62817{n:08d}" for n in range(100_000)
                            if partition_of("firm-a", f"62817{n:08d}", PARTITIONS) in mine)
            live = next(node_url for name, (_, node_url, _) in nodes.items() if name != victim)
            before = _stored(url)
            os.kill(nodes[victim][2], signal.SIGKILL)
            killed = time.perf_counter()
            asyncio.run(_post(live, customer))
            _wait(lambda before=before: _stored(url) > before, TIMEOUT_S,
                  "the dead node's conversation processed")
            took.append(time.perf_counter() - killed)
            with contextlib.suppress(Exception):
                nodes[victim][0].close()
            start(victim)
            _wait(balanced, 30, "the partitions shared again")
        for own, _, _ in nodes.values():
            own.close()
    return {
        "setup": f"3 nodes, {PARTITIONS} partitions, lease_s = {lease_s}, keeper tick "
                 f"lease_s / 3; private PostgreSQL and Redis",
        "kills": kills,
        "kill -9 to processing again, p50; p99; max (s)": (
            f"{statistics.median(took):.2f}; {percentile(took, 0.99):.2f}; {max(took):.2f}"),
        "expected: lease_s to lease_s + a tick (s)": f"{lease_s:.1f} to {lease_s * 4 / 3:.1f}",
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.failover")
    parser.add_argument("--kills", type=int, default=KILLS)
    parser.add_argument("--lease-s", type=float, default=LEASE_S)
    args = parser.parse_args(argv)
    print_section(sys.modules[__name__], run(args.kills, args.lease_s))


if __name__ == "__main__":
    main()
