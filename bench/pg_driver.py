"""Which PostgreSQL driver the gateway's store and journal use: psycopg 3
(synchronous, from a writer thread, as the SQLite store runs today) or
asyncpg (on an event loop), measured on the three shapes the journal and
the store put on the database, against a private server (``initdb`` in a
temp dir, unix socket; ``synchronous_commit`` on, as the product runs it).

- *group commit*: webhook bodies of ~600 distinct bytes appended in
  transactions of 50 (the journal's group commit under load);
- *lone commit*: one body per transaction (the journal below saturation);
- *read after*: ``seq > $1 ORDER BY seq LIMIT 64`` (the dispatcher's read);
- *store transaction*: what one stored message costs the store's writer
  thread — a transaction of four small statements (a lookup, an insert that
  may conflict, an update, a read back) issued one by one from synchronous
  code, as every store operation (``store_tx.Tx``) is written and as the
  SQLite store runs them. asyncpg runs them on an event loop owned by that
  thread (``run_until_complete`` per statement: no thread hop).

The first three favour asyncpg when its calls are batched on a loop; the
fourth is the shape the store's operations have on both backends, and there
psycopg 3 costs less — which is why the store and the journal use psycopg 3.

For each: operations/s (wall) and the client process's CPU per operation
(``time.process_time``): the gateway's processes are GIL-bound, so the
driver's CPU is what it takes from the rest of the work; the server's CPU
is the same for both. Rounds alternate between the drivers; the table gives
the median round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import psycopg

from bench.common import Figures
from bench.report import print_section
from lawhub_actors.simulator.postgres import run_postgres

BATCH = 50
GROUP_BODIES = 10_000
LONE_BODIES = 2_000
READS = 3_000
ROUNDS = 3
STORE_TXS = 2_000
SCHEMA = ("CREATE TABLE journal (seq BIGSERIAL PRIMARY KEY,"
          " received_at DOUBLE PRECISION NOT NULL, body BYTEA NOT NULL);"
          " CREATE TABLE rows (k TEXT PRIMARY KEY, v BIGINT NOT NULL, b BYTEA)")
STORE_STATEMENTS = (
    "SELECT v FROM rows WHERE k = {}",
    "INSERT INTO rows (k, v, b) VALUES ({}, {}, {}) ON CONFLICT DO NOTHING",
    "UPDATE rows SET v = v + 1 WHERE k = {}",
    "SELECT k, v, b FROM rows WHERE k = {}",
)


def _bodies(count: int, salt: int) -> list[bytes]:
    return [os.urandom(8).hex().encode() * 37 + f"{salt}:{i}".encode() for i in range(count)]


Timed = tuple[float, float]
"""(wall seconds, client CPU seconds)."""


def _timed(run: Callable[[], Any]) -> Timed:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _psycopg_round(dsn: str, salt: int) -> dict[str, Timed]:
    group, lone = _bodies(GROUP_BODIES, salt), _bodies(LONE_BODIES, salt + 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE journal")

        def grouped() -> None:
            for start in range(0, len(group), BATCH):
                with conn.transaction(), conn.cursor() as cursor:
                    cursor.executemany("INSERT INTO journal (received_at, body) VALUES (%s, %s)",
                                       [(time.time(), body) for body in group[start:start + BATCH]])

        def lonely() -> None:
            for body in lone:
                conn.execute("INSERT INTO journal (received_at, body) VALUES (%s, %s)",
                             (time.time(), body))

        def reads() -> None:
            top = GROUP_BODIES + LONE_BODIES - 64
            for i in range(READS):
                conn.execute("SELECT seq, received_at, body FROM journal WHERE seq > %s"
                             " ORDER BY seq LIMIT 64", ((i * 997) % top,)).fetchall()

        def store_txs() -> None:
            select, insert, update, read_back = (sql.format(*["%s"] * 3)
                                                 for sql in STORE_STATEMENTS)
            for i in range(STORE_TXS):
                key = f"{salt}:{i}"
                with conn.transaction():
                    conn.execute(select, (key,)).fetchone()
                    conn.execute(insert, (key, i, b"x" * 200))
                    conn.execute(update, (key,))
                    conn.execute(read_back, (key,)).fetchall()

        return {"group commit": _timed(grouped), "lone commit": _timed(lonely),
                "read after": _timed(reads), "store transaction": _timed(store_txs)}


def _asyncpg_store_txs(dsn: str, salt: int) -> Timed:
    """The store's shape on asyncpg: a loop owned by this (writer) thread."""
    loop = asyncio.new_event_loop()
    run_ = loop.run_until_complete
    conn = run_(asyncpg.connect(**_asyncpg_target(dsn)))
    select, insert, update, read_back = (sql.format("$1", "$2", "$3") for sql in STORE_STATEMENTS)
    try:
        def store_txs() -> None:
            for i in range(STORE_TXS):
                key = f"{salt}:{i}"
                run_(conn.execute("BEGIN"))
                run_(conn.fetchrow(select, key))
                run_(conn.execute(insert, key, i, b"x" * 200))
                run_(conn.execute(update, key))
                run_(conn.fetch(read_back, key))
                run_(conn.execute("COMMIT"))

        return _timed(store_txs)
    finally:
        run_(conn.close())
        loop.close()


def _asyncpg_target(dsn: str) -> dict[str, str]:
    parts = dict(part.split("=", 1) for part in dsn.split())
    return {"host": parts["host"], "user": parts["user"], "database": parts["dbname"]}


async def _asyncpg_round(dsn: str, salt: int) -> dict[str, Timed]:
    group, lone = _bodies(GROUP_BODIES, salt), _bodies(LONE_BODIES, salt + 1)
    conn = await asyncpg.connect(**_asyncpg_target(dsn))
    try:
        await conn.execute("TRUNCATE journal")
        insert = await conn.prepare("INSERT INTO journal (received_at, body) VALUES ($1, $2)")
        read = await conn.prepare("SELECT seq, received_at, body FROM journal WHERE seq > $1"
                                  " ORDER BY seq LIMIT 64")
        out: dict[str, Timed] = {}

        async def grouped() -> None:
            for start in range(0, len(group), BATCH):
                async with conn.transaction():
                    await insert.executemany(
                        [(time.time(), body) for body in group[start:start + BATCH]])

        async def lonely() -> None:
            for body in lone:
                await insert.fetch(time.time(), body)

        async def reads() -> None:
            top = GROUP_BODIES + LONE_BODIES - 64
            for i in range(READS):
                await read.fetch((i * 997) % top)

        for name, step in (("group commit", grouped), ("lone commit", lonely),
                           ("read after", reads)):
            wall, cpu = time.perf_counter(), time.process_time()
            await step()
            out[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        return out
    finally:
        await conn.close()


COUNTS = {"group commit": GROUP_BODIES, "lone commit": LONE_BODIES, "read after": READS,
          "store transaction": STORE_TXS}


def run(rounds: int = ROUNDS) -> Figures:
    results: dict[str, list[dict[str, Timed]]] = {"psycopg 3": [], "asyncpg": []}
    with run_postgres() as pg:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(SCHEMA)
            server = conn.execute("SHOW server_version").fetchone()
        for n in range(rounds):
            results["psycopg 3"].append(_psycopg_round(pg.dsn(), 2 * n))
            asyncpg_round = asyncio.run(_asyncpg_round(pg.dsn(), 2 * n + 100))
            asyncpg_round["store transaction"] = _asyncpg_store_txs(pg.dsn(), 2 * n + 100)
            results["asyncpg"].append(asyncpg_round)
    figures: Figures = {
        "server": f"PostgreSQL {server[0] if server else '?'}, private, unix socket, "
                  "synchronous_commit on",
        "drivers": f"psycopg {psycopg.__version__} (sync), asyncpg {asyncpg.__version__}",
        "rounds (alternating)": rounds,
        "shapes": f"group commit: {GROUP_BODIES:,} bodies in transactions of {BATCH}; "
                  f"lone commit: {LONE_BODIES:,}; read after: {READS:,} reads of 64 rows; "
                  f"store transaction: {STORE_TXS:,} of 4 statements",
    }
    cpu_ratio: dict[str, float] = {}
    for shape, count in COUNTS.items():
        per: dict[str, tuple[float, float]] = {}
        for driver, rounds_of in results.items():
            walls = [r[shape][0] for r in rounds_of]
            cpus = [r[shape][1] for r in rounds_of]
            per[driver] = (count / statistics.median(walls),
                           statistics.median(cpus) / count * 1e6)
            figures[f"{shape}, {driver}: ops/s; client CPU us per op"] = (
                f"{per[driver][0]:,.0f}; {per[driver][1]:,.1f}")
        cpu_ratio[shape] = per["asyncpg"][1] / per["psycopg 3"][1]
        figures[f"{shape}: asyncpg / psycopg client CPU"] = round(cpu_ratio[shape], 2)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_driver")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    print_section(sys.modules[__name__], run(args.rounds))


if __name__ == "__main__":
    main()
