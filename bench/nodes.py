"""Processed messages per second, one node against two on this machine, and
the CPU each message costs on PostgreSQL against SQLite.

The same ``run.py`` gateway (the shipped config) is given N distinct signed
text messages (``bench/inbound_texts.py``) in Meta's batches of 100 updates
per POST, over 16 connections as fast as it acknowledges (closed loop);
the run ends when every message is a row of ``messages``. Three setups, one
after the other on fresh data:

- *SQLite, 1 node*: the embedded default;
- *PostgreSQL, 1 node*: ``[storage] backend = "postgres"`` on a private
  server (``simulator/postgres.py``, unix socket, ``synchronous_commit``
  on) and a private Redis;
- *PostgreSQL, 2 nodes*: the same with ``[server] processes = 2`` (two
  nodes on one port, SO_REUSEPORT, sharing the partitions).

*Processed/s* is N over the wall time from the first POST to the last
message stored. *CPU ms per message* counts every process the setup runs —
the gateway's (its nodes, their ack-path processes) and, on PostgreSQL, the
database server's and Redis's — as ``utime + stime`` over the run: the
work PostgreSQL does for the store is counted, not hidden in another
process. The 2-core machine also runs this load generator, so the ratio of
two nodes to one is the figure to read, not the absolute rates.

Reading the first run (2026-12-07): one PostgreSQL node processed ~320/s
at ~3.5 ms of CPU per message, using only about one of the two cores — the
one store writer per node, waiting on each statement's round trip, was the
limit; a second node processed 2 to 3 times as many.

Reading the second run (same day, after a commit fences each partition
once and the writer drops plans made on near-empty tables — the wamid
lookup had been scanning a tenant's messages, 0.36 ms per message and
growing): one PostgreSQL node ~490/s at ~2.2 ms per message, two nodes
~730/s, 1.50x. The ratio fell below the 1.6x aim because one node got
faster, not because two got slower: one node now keeps about one core busy
(490/s x 2.2 ms), and two nodes, PostgreSQL and this load generator share
two cores. What bounds a node now is its store writer's Python: psycopg
costs ~85 us of client CPU per statement (raw libpq ~32 us) and an inbound
message takes ~11 statements (FACTS.md, "PostgreSQL").

Reading the third run (a later session, on an Intel Xeon VM, where the
same code runs a little slower than on the AMD EPYC one above): the same code gave one
PostgreSQL node ~390-440/s at ~2.3-2.5 ms. Then the store's statements
went to libpq directly (prepared once per connection, one blocking
``PQexecPrepared`` each: ~8 us of client CPU instead of ~43), a commit's
notices went with its ``COMMIT``, a journal commit's bodies and a commit's
events became one multi-row ``INSERT``, and an inbound message lost two
statements (the customer's lookup and window touch are one ``UPDATE ...
RETURNING``; a replayed wamid is found by the insert's ``ON CONFLICT``):
one node ~600-840/s at ~1.2-1.7 ms, two ~1,100-1,400/s (1.66-1.83x in
four runs) — the 1.6x aim met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.common import CONFIG, Figures, cpu_seconds, gateway, settle
from bench.cpu_per_message import post_all
from bench.inbound_texts import Webhook, webhooks
from bench.report import print_section
from lawhub_actors.simulator.postgres import PrivatePostgres, run_postgres

MESSAGES = 10_000
PER_POST = 100
CONNECTIONS = 16
DRAIN_TIMEOUT_S = 300.0
MASTER_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


@dataclass(frozen=True, slots=True)
class Run:
    label: str
    messages: int
    elapsed_s: float
    cpu_s: float
    non_200: int

    @property
    def per_second(self) -> float:
        return self.messages / self.elapsed_s

    @property
    def ms_per_message(self) -> float:
        return self.cpu_s / self.messages * 1000


@contextlib.contextmanager
def private_redis(tmp: Path) -> Iterator[tuple[str, int]]:
    """A private redis-server on a unix socket: its URL and pid."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (scripts/ensure-system-deps)")
    sock = tmp / "redis.sock"
    process = subprocess.Popen([binary, "--port", "0", "--unixsocket", str(sock),
                                "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"unix://{sock}", process.pid
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def shared_storage(tmp: Path) -> Iterator[tuple[dict[str, str], list[int]]]:
    """A private PostgreSQL (database ``bench``) and Redis for gateway nodes:
    the environment that points a node at them (and its master key), and
    their server processes' ids (PostgreSQL's postmaster, Redis)."""
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(run_postgres())
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench")
        redis_url, redis_pid = stack.enter_context(private_redis(tmp))
        yield ({"LAWHUB_MASTER_KEY": MASTER_KEY, "LAWHUB_DATABASE_URL": server.dsn("bench"),
                "LAWHUB_REDIS_URL": redis_url}, [postmaster_pid(server), redis_pid])


def postmaster_pid(server: PrivatePostgres) -> int:
    return int((server.socket_dir / "data" / "postmaster.pid").read_text().split()[0])


def _stored_sqlite(database: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True,
                                                timeout=5)) as db:
            return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _stored_pg(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM messages").fetchone()
    return int(row[0]) if row else 0


def _config(tmp: Path, processes: int | None) -> Path:
    text = CONFIG.read_text()
    if processes is not None:
        text = text.replace("[storage]\n", '[storage]\nbackend = "postgres"\n', 1)
        text = text.replace("[server]\n", f"[server]\nprocesses = {processes}\n", 1)
    path = tmp / "bench.toml"
    path.write_text(text)
    return path


def measure(label: str, hooks: Sequence[Webhook], processes: int | None) -> Run:
    """One setup: ``processes`` None is SQLite, else PostgreSQL with that many nodes."""
    total = sum(len(hook.wamids) for hook in hooks)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-nodes-")))
        env: dict[str, str] = {"LAWHUB_MASTER_KEY": MASTER_KEY}
        others: list[int] = []
        if processes is None:
            database = tmp / "var" / "lawhub.sqlite3"

            def stored() -> int:
                return _stored_sqlite(database)
        else:
            shared, others = stack.enter_context(shared_storage(tmp))
            env |= {**shared, "LAWHUB_NODE_ID": "bench"}
            url = shared["LAWHUB_DATABASE_URL"]

            def stored() -> int:
                return _stored_pg(url)
        node = stack.enter_context(gateway(tmp / "var", _config(tmp, processes),
                                           log=tmp / "gateway.log", **env))
        time.sleep(3.0 if processes else 0.5)  # both nodes up and sharing the partitions
        settle(node.pid)
        pids = [node.pid, *others]
        cpu0 = sum(cpu_seconds(pid) for pid in pids)
        started = time.perf_counter()
        non_200 = asyncio.run(post_all(node.url, hooks, CONNECTIONS))
        deadline = time.perf_counter() + DRAIN_TIMEOUT_S
        while (count := stored()) < total:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{label}: {count:,} of {total:,} stored")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu0
    return Run(label, total, elapsed, cpu, non_200)


SETUPS: tuple[tuple[str, int | None], ...] = (
    ("SQLite, 1 node", None), ("PostgreSQL, 1 node", 1), ("PostgreSQL, 2 nodes", 2))


def run(count: int = MESSAGES) -> Figures:
    hooks = webhooks(count, PER_POST)
    runs = {label: measure(label, hooks, processes) for label, processes in SETUPS}
    figures: Figures = {
        "machine": f"{socket.gethostname()}, {len(os.sched_getaffinity(0))} CPUs",
        "messages": f"{count:,} distinct texts, {PER_POST} per POST, {CONNECTIONS} connections",
    }
    for label, one in runs.items():
        figures[f"{label}: processed/s; CPU ms per message"] = (
            f"{one.per_second:,.0f}; {one.ms_per_message:.2f}"
            + (f" ({one.non_200} non-200)" if one.non_200 else ""))
    one_node, two_nodes = runs["PostgreSQL, 1 node"], runs["PostgreSQL, 2 nodes"]
    sqlite = runs["SQLite, 1 node"]
    figures["2 nodes / 1 node (PostgreSQL), processed/s"] = round(
        two_nodes.per_second / one_node.per_second, 2)
    figures["CPU per message, PostgreSQL / SQLite (1 node)"] = round(
        one_node.ms_per_message / sqlite.ms_per_message, 2)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nodes")
    parser.add_argument("--messages", type=int, default=MESSAGES)
    args = parser.parse_args(argv)
    print_section(sys.modules[__name__], run(args.messages))


if __name__ == "__main__":
    main()
