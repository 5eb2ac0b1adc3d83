"""Webhook ingest with one and two processes on one port: the gateway on
PostgreSQL (``[server] processes = 1`` and ``2``, SO_REUSEPORT) against a
bare aiohttp handler that only answers 200, also as one and two processes
on one port, measured in the same run with the same load (``wrk``, 50
connections, distinct signed bodies: ``bench/webhook_ingest.py`` says how).

The gateways use a private PostgreSQL and Redis (``bench/nodes.py``); each
acknowledges into the shared journal with group commit
(``synchronous_commit`` on) while its nodes process what they acknowledged,
on the same two cores. The figures to read are the ratios within a round:
two gateway processes against two bare ones (the aim: at least 0.5), and the
gateways' ack p99 (the aim: at most 25 ms at 50 connections).

Reading the first run (2026-12-07): not met — a second process acknowledged
*fewer* webhooks (0.84x), at 0.11 of two bare processes. Each node's ack
path shares two cores with its own processing and PostgreSQL's, and on
PostgreSQL processing costs ~6x the CPU per message it costs on SQLite
(`bench/nodes.py`): the acks lose those cores to the processing of what
they acknowledged. Cheaper processing on PostgreSQL comes first.

Reading a later session's runs (an Intel Xeon VM instead of the AMD EPYC one, after
the store's statements went to libpq directly and a journal commit's
bodies became one multi-row insert): one gateway process ~2,900 -> ~5,000
acks/s (0.15 -> 0.23 of one bare process), two processes ~2,400 -> ~3,500
(0.09 -> 0.12 of two bare ones) — still fewer with two than with one:
the journal takes its numbers under one advisory lock (commit order, see
``adapters/journal.py``), so two processes' group commits take turns, and
each also processes what it acknowledged on the same two cores.

Reading the runs after the ack processes went ahead of the processing
(``[server] ingest_nice = -10``, 2026-12-07, the Xeon VM): one process ~6,700-
6,900 acks/s (0.29 of one bare), two ~7,700-8,000 (0.24 of two bare, 1.16x
of one), ack p99 23-30 ms. The processing no longer takes the acks' cores;
what bounds them now is the ack path's own CPU, ~0.24 ms per webhook
against a bare handler's ~0.07-0.08 (docs/FACTS.md): half of two bare
processes would need a webhook, with its journal commit and the database's
share, to cost about what a bare aiohttp request does.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg

from bench.common import CONFIG, Figures, gateway, serve
from bench.inbound_texts import posts as posts_of
from bench.inbound_texts import webhooks
from bench.nodes import MASTER_KEY, private_redis
from bench.report import print_section
from bench.webhook_ingest import LUA, MEASURED_BODIES, WARM_UP_BODIES, _measure, _write_bodies
from lawhub_actors.simulator.postgres import run_postgres

BARE_SERVERS = """
import multiprocessing, sys
from aiohttp import web

def serve(port):
    async def ok(request):
        await request.read()
        return web.Response(text="ok")
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/webhook", ok)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                reuse_port=True)

if __name__ == "__main__":
    port, processes = int(sys.argv[-1]), int(sys.argv[1])
    for _ in range(processes - 1):
        multiprocessing.Process(target=serve, args=(port,), daemon=True).start()
    serve(port)
"""


@contextlib.contextmanager
def _bare(tmp: Path, processes: int) -> Iterator[str]:
    script = tmp / "bare.py"
    script.write_text(BARE_SERVERS)
    with serve([sys.executable, str(script), str(processes)], os.environ) as server:
        yield server.url


@contextlib.contextmanager
def _gateway(tmp: Path, name: str, processes: int) -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(run_postgres())
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench")
        redis_url, _ = stack.enter_context(private_redis(tmp / name))
        text = CONFIG.read_text().replace("[storage]\n", '[storage]\nbackend = "postgres"\n', 1)
        text = text.replace("[server]\n", f"[server]\nprocesses = {processes}\n", 1)
        config = tmp / f"{name}.toml"
        config.write_text(text)
        node = stack.enter_context(gateway(
            tmp / name / "var", config, log=tmp / f"{name}.log", LAWHUB_MASTER_KEY=MASTER_KEY,
            LAWHUB_DATABASE_URL=server.dsn("bench"), LAWHUB_REDIS_URL=redis_url,
            LAWHUB_NODE_ID=name, LAWHUB_VERIFY_TOKEN="bench"))
        yield node.url


SETUPS = (("bare, 1 process", "bare", 1), ("bare, 2 processes", "bare", 2),
          ("gateway, 1 process", "gateway", 1), ("gateway, 2 processes", "gateway", 2))


def run(seconds: int = 6, connections: int = 50, rounds: int = 2) -> Figures:
    posts = posts_of(webhooks(WARM_UP_BODIES + MEASURED_BODIES))
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in SETUPS}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as name:
        tmp = Path(name)
        script = tmp / "post.lua"
        script.write_text(LUA)
        files = (tmp / "warm-up.txt", tmp / "measured.txt")
        _write_bodies(files[0], posts[:WARM_UP_BODIES])
        _write_bodies(files[1], posts[WARM_UP_BODIES:])
        for round_ in range(rounds):
            for label, kind, processes in SETUPS:
                (tmp / f"r{round_}-{kind}{processes}").mkdir()
                server = (_bare(tmp, processes) if kind == "bare"
                          else _gateway(tmp, f"r{round_}-{kind}{processes}", processes))
                with server as url:
                    results[label].append(_measure(url, script, files, seconds, connections))
    figures: Figures = {"load": f"wrk -t2 -c{connections} -d{seconds}s, distinct signed bodies",
                        "rounds": rounds}
    for label, runs in results.items():
        figures[f"{label}: requests/s; p50 / p99 ms (medians)"] = (
            f"{statistics.median(r['rate'] for r in runs):,.0f}; "
            f"{statistics.median(r['p50'] for r in runs):.2f} / "
            f"{statistics.median(r['p99'] for r in runs):.2f}"
            + (f"; non-200: {sum(r['errors'] for r in runs):,.0f}"
               if any(r["errors"] for r in runs) else ""))

    def ratio(top: str, bottom: str) -> float:
        return statistics.median(t["rate"] / b["rate"]
                                 for t, b in zip(results[top], results[bottom], strict=True))

    two = ratio("gateway, 2 processes", "bare, 2 processes")
    p99 = statistics.median(r["p99"] for r in results["gateway, 2 processes"])
    figures["2 gateway processes / 2 bare processes, median of rounds"] = round(two, 2)
    figures["1 gateway process / 1 bare process, median of rounds"] = round(
        ratio("gateway, 1 process", "bare, 1 process"), 2)
    figures["2 gateway processes / 1 gateway process"] = round(
        ratio("gateway, 2 processes", "gateway, 1 process"), 2)
    figures["aim: 2 gateway processes >= 0.5 x 2 bare, ack p99 <= 25 ms"] = (
        "met" if two >= 0.5 and p99 <= 25 else "not met")
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_processes")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    print_section(sys.modules[__name__], run(args.seconds, rounds=args.rounds))


if __name__ == "__main__":
    main()
