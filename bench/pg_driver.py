"""Which PostgreSQL driver the gateway's store and journal use: psycopg 3
(synchronous, from a writer thread, as the SQLite store runs today) or
asyncpg (on an event loop), measured on the three shapes the journal and
the store put on the database, against a private server (``initdb`` in a
temp dir, unix socket; ``synchronous_commit`` on, as the product runs it).

- *group commit*: webhook bodies of ~600 distinct bytes appended in
  transactions of 50 (the journal's group commit under load);
- *lone commit*: one body per transaction (the journal below saturation);
- *read after*: ``seq > $1 ORDER BY seq LIMIT 64`` (the dispatcher's read).

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
SCHEMA = ("CREATE TABLE journal (seq BIGSERIAL PRIMARY KEY,"
          " received_at DOUBLE PRECISION NOT NULL, body BYTEA NOT NULL)")


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

        return {"group commit": _timed(grouped), "lone commit": _timed(lonely),
                "read after": _timed(reads)}


async def _asyncpg_round(dsn: str, salt: int) -> dict[str, Timed]:
    group, lone = _bodies(GROUP_BODIES, salt), _bodies(LONE_BODIES, salt + 1)
    host, user, database = (dict(part.split("=", 1) for part in dsn.split())[key]
                            for key in ("host", "user", "dbname"))
    conn = await asyncpg.connect(host=host, user=user, database=database)
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


COUNTS = {"group commit": GROUP_BODIES, "lone commit": LONE_BODIES, "read after": READS}


def run(rounds: int = ROUNDS) -> Figures:
    results: dict[str, list[dict[str, Timed]]] = {"psycopg 3": [], "asyncpg": []}
    with run_postgres() as pg:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(SCHEMA)
            server = conn.execute("SHOW server_version").fetchone()
        for n in range(rounds):
            results["psycopg 3"].append(_psycopg_round(pg.dsn(), 2 * n))
            results["asyncpg"].append(asyncio.run(_asyncpg_round(pg.dsn(), 2 * n + 100)))
    figures: Figures = {
        "server": f"PostgreSQL {server[0] if server else '?'}, private, unix socket, "
                  "synchronous_commit on",
        "drivers": f"psycopg {psycopg.__version__} (sync), asyncpg {asyncpg.__version__}",
        "rounds (alternating)": rounds,
        "shapes": f"group commit: {GROUP_BODIES:,} bodies in transactions of {BATCH}; "
                  f"lone commit: {LONE_BODIES:,}; read after: {READS:,} reads of 64 rows",
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
