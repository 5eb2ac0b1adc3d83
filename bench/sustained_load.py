"""Sustained load: what the gateway does at fixed offered rates of inbound
text messages, one per POST, below and above its processing capacity.

For each rate (250, 500, 1,000, 2,000 and 3,000 messages/s by default; the
last so that one is about twice the capacity once it passes 1,000/s), a
fresh gateway process (`run.py`, the shipped `config/lawhub.toml`) gets an
open-loop load for 30 s: the i-th POST is scheduled i / rate seconds after
the start whatever the answers do, and its latency counts from that
schedule (no coordinated omission; `bench.common.lean_open_loop`, whose
requests are made before the clock starts and sent with asyncio's streams
on kept-alive connections, so the generator itself costs little). Every POST
is a distinct signed message (`bench/inbound_texts.py`: a fresh wamid, its
own Indonesian or English text, about 2,000 customers over three business
numbers). Before the load, one websocket client per tenant (its token from
`config/lawhub.toml`'s comments) connects to `/ws`; a message's *POST to
feed* latency runs from its POST's schedule to its `message.received`
frame. After the load the bench waits for every acknowledged message on
the feed, 30 s at most (a rate above capacity leaves more than that).

*Processed/s* counts the `message.received` frames that arrived during the
load's 30 s, over 30 s; *backlog at the end* is what was acknowledged but
not yet on the feed when the last POST was answered. *CPU per message* is
the gateway's user + system time (`/proc/<pid>/stat`, every thread, its
child processes included: the ingest process that acknowledges webhooks
when `[server] ingest = "process"`, whose share the table gives too) from
the start of the load until the last message arrived on the
feed (or the wait ended), over the messages that arrived. The load
generator and the feed clients run in this process, on the same two cores,
at a higher priority than the servers where allowed
(`bench.common.generator_first`: they stand in for Meta, which is on other
machines): the table gives its own CPU (cores busy) and how late it got to
sending (p99 of the send time past the schedule), since that lateness
counts as ack latency too.
The gateway runs the shipped config: its ack process at `[server]
ingest_nice` (-10 by default, where the privilege allows; a row of the
table says what it ran at, from its log), ahead of the processing for a core.

The baseline, measured in the same run just before each gateway run, is a
bare aiohttp handler that reads the body and answers 200 (the webhook
ingest bench's), under the same load generator with the same bodies at
the same rate, for 10 s. *Capacity* is the most messages/s the gateway
processed during any of the loads; the aims are checked at the rate
closest to twice that (ack p99 <= 50 ms and no ack over 1 s) and at
every rate the gateway kept up with (a backlog at the end of at most a
quarter of a second of load; POST to feed p99 <= 250 ms). Just before each
load the gateway's idle CPU (feed clients connected, 2 s) is measured too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.common import (
    CONFIG,
    REPO,
    Answer,
    Figures,
    admin_tree,
    cpu_seconds,
    gateway,
    generator_first,
    lean_open_loop,
    percentile,
    restarts,
    revision,
    serve,
    settle,
)
from bench.inbound_texts import NUMBERS, TOKENS, Webhook, webhooks
from bench.report import print_section
from bench.webhook_ingest import BARE_SERVER

RATES = (250, 500, 1000, 2000, 3000)
SECONDS = 30.0
BARE_SECONDS = 10.0
DRAIN_CAP_S = 30.0
IDLE_S = 2.0
KEPT_UP_S = 0.25
"""A run kept up when its backlog at the end was at most this much of its load."""
ACK_AIM_MS = 50.0
FEED_AIM_MS = 250.0


@dataclass(slots=True)
class Load:
    """One run of the load against one server."""

    rate: float
    seconds: float
    answers: list[Answer]
    client_cpu_s: float
    wall_s: float
    # the gateway's (none for the bare server):
    arrivals: dict[str, float] = field(default_factory=dict)
    fed_during_load: int = 0
    backlog_at_end: int = 0
    gateway_cpu_s: float = 0.0
    drained: bool = True
    closes: list[int | None] = field(default_factory=list)
    restarts: int = 0
    crashes: int = 0
    quarantined: int = 0
    idle_cores: float = 0.0
    """The gateway's CPU just before the load, feed clients connected."""
    elapsed_s: float = 0.0
    """From the start of the load until the last message was fed (or the wait ended)."""
    children_cpu_s: float = 0.0
    """Of ``gateway_cpu_s``, its child processes' (the ingest process)."""
    ack_priority: str = "not logged"
    """The ack process's nice value and whether raising it was allowed (its log)."""

    def acks_ms(self) -> list[float]:
        return [a.latency_s * 1000 for a in self.answers if a.status]

    def late_ms(self) -> list[float]:
        return [(a.sent - a.at) * 1000 for a in self.answers]


async def _load(url: str, hooks: Sequence[Webhook], rate: float) -> tuple[list[Answer], float,
                                                                             float]:
    started, cpu = time.perf_counter(), time.process_time()
    answers = await lean_open_loop(f"{url}/webhook", [hook.post for hook in hooks], rate)
    return answers, time.process_time() - cpu, time.perf_counter() - started


def bare(hooks: Sequence[Webhook], rate: float) -> Load:
    with serve([sys.executable, "-c", BARE_SERVER], os.environ) as server:
        time.sleep(0.3)
        answers, client_cpu, wall = asyncio.run(_load(server.url, hooks, rate))
    return Load(rate, len(hooks) / rate, answers, client_cpu, wall)


async def _listen(session: aiohttp.ClientSession, url: str, token: str,
                  arrivals: dict[str, float], closes: list[int | None]) -> None:
    """Follow one tenant's feed, resuming with ``since`` when it is closed."""
    last = 0
    while True:
        async with session.ws_connect(f"{url}/ws?since={last}",
                                      headers={"Authorization": f"Bearer {token}"}) as ws:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                frame = orjson.loads(message.data)
                last = frame["seq"]
                if frame["type"] == "message.received":
                    arrivals.setdefault(frame["data"]["wamid"], time.perf_counter())
            closes.append(ws.close_code)


async def _against_gateway(url: str, pid: int, hooks: Sequence[Webhook], rate: float,
                           drain_cap_s: float) -> Load:
    arrivals: dict[str, float] = {}
    closes: list[int | None] = []
    async with aiohttp.ClientSession() as session:
        tenants = sorted(set(NUMBERS.values()))
        listeners = [asyncio.create_task(_listen(session, url, TOKENS[t], arrivals, closes))
                     for t in tenants]
        await asyncio.sleep(0.5)  # every client subscribed
        idle0 = cpu_seconds(pid)
        await asyncio.sleep(IDLE_S)
        cpu0 = cpu_seconds(pid)
        main0 = cpu_seconds(pid, tree=False)
        idle = (cpu0 - idle0) / IDLE_S
        started = time.perf_counter()
        answers, client_cpu, wall = await _load(url, hooks, rate)
        load_end = started + len(hooks) / rate
        fed_during = sum(at <= load_end for at in arrivals.values())
        acked = sum(len(h.wamids) for h, a in zip(hooks, answers, strict=True)
                    if a.status == 200)
        backlog = acked - len(arrivals)
        deadline = time.perf_counter() + drain_cap_s
        while len(arrivals) < acked and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        cpu = cpu_seconds(pid) - cpu0
        children = cpu - (cpu_seconds(pid, tree=False) - main0)
        elapsed = time.perf_counter() - started
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    return Load(rate, len(hooks) / rate, answers, client_cpu, wall, arrivals, fed_during,
                backlog, cpu, len(arrivals) >= acked, closes, idle_cores=idle,
                elapsed_s=elapsed, children_cpu_s=children)


def against_gateway(hooks: Sequence[Webhook], rate: float, drain_cap_s: float,
                    root: Path = REPO) -> Load:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "gateway.log"
        with gateway(Path(tmp) / "var", CONFIG, root=root, log=log) as server:
            settle(server.pid)
            load = asyncio.run(_against_gateway(server.url, server.pid, hooks, rate,
                                                drain_cap_s))
            with contextlib.suppress(Exception):
                tree: dict[str, Any] = asyncio.run(admin_tree(server.url))
                load.restarts = restarts(tree)
                load.quarantined = int(tree.get("counts", {}).get("quarantine", 0))
        text = log.read_text(errors="replace")
        load.crashes = text.count("actor crashed") + text.count("actor_crashed")
        load.ack_priority = _ack_priority(text)
    return load


def _ack_priority(log_text: str) -> str:
    for line in log_text.splitlines():
        if "ingest_priority" not in line:
            continue
        with contextlib.suppress(orjson.JSONDecodeError):
            told = orjson.loads(line)
            if isinstance(told, dict) and told.get("event") == "ingest_priority":
                allowed = "applied" if told.get("applied") else "not allowed"
                return f"nice {told.get('nice')} ({allowed})"
    return "not logged"


def _ms(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 0.5):,.1f} / {percentile(values, 0.99):,.1f}"


def _feed_ms(load: Load, hooks: Sequence[Webhook]) -> list[float]:
    return [(load.arrivals[w] - a.at) * 1000
            for hook, a in zip(hooks, load.answers, strict=True)
            for w in hook.wamids if w in load.arrivals]


def run(rates: Sequence[int] = RATES, seconds: float = SECONDS,
        bare_seconds: float = BARE_SECONDS, drain_cap_s: float = DRAIN_CAP_S,
        root: Path = REPO) -> Figures:
    with generator_first() as priority:
        return _run(rates, seconds, bare_seconds, drain_cap_s, root, priority)


def _run(rates: Sequence[int], seconds: float, bare_seconds: float, drain_cap_s: float,
         root: Path, priority: str) -> Figures:
    hooks = webhooks(int(max(rates) * seconds), per_post=1)
    customers = {c for hook in hooks for c in hook.customers}
    figures: Figures = {
        "load": f"open loop, 1 message per POST, {seconds:.0f} s per rate against the gateway, "
                f"{bare_seconds:.0f} s against bare aiohttp",
        "messages (distinct), customers": f"{len(hooks):,} at the highest rate, "
                                          f"{len(customers):,}",
        "priorities": priority,
        "code measured": revision() if root == REPO else str(root),
    }
    runs: list[tuple[int, Load, Load]] = []
    for rate in rates:
        base = bare(hooks[: int(rate * bare_seconds)], rate)
        load = against_gateway(hooks[: int(rate * seconds)], rate, drain_cap_s, root)
        runs.append((rate, base, load))
        print(f"{rate}/s: fed during load {load.fed_during_load / seconds:,.0f}/s, "
              f"ack p50/p99 {_ms(load.acks_ms())} ms, bare {_ms(base.acks_ms())} ms",
              file=sys.stderr, flush=True)
    capacity = max(load.fed_during_load / seconds for _, _, load in runs)
    for rate, base, load in runs:
        acks = load.acks_ms()
        feed = _feed_ms(load, hooks[: len(load.answers)])
        over_1s = sum(ms > 1000 for ms in acks) / len(load.answers)
        name = f"{rate:,}/s"
        figures[f"{name}: offered / capacity"] = round(rate / capacity, 2)
        figures[f"{name}: processed messages/s during the load"] = round(
            load.fed_during_load / seconds)
        figures[f"{name}: backlog when the last POST was answered (messages)"] = (
            load.backlog_at_end)
        figures[f"{name}: ack p50 / p99 ms (bare aiohttp in the same run)"] = (
            f"{_ms(acks)} ({_ms(base.acks_ms())})")
        figures[f"{name}: acks over 1 s (share), non-200 answers"] = (
            f"{over_1s:.2%}, {sum(a.status != 200 for a in load.answers):,}")
        figures[f"{name}: POST -> feed p50 / p99 ms (n)"] = f"{_ms(feed)} ({len(feed):,})"
        figures[f"{name}: every acknowledged message fed within {drain_cap_s:.0f} s"] = (
            "yes" if load.drained else f"no ({len(load.arrivals):,} fed)")
        fed = max(len(load.arrivals), 1)
        figures[f"{name}: gateway CPU ms per message, of which ingest process (cores busy; "
                "idle cores before)"] = (
            f"{load.gateway_cpu_s / fed * 1000:.3f}, {load.children_cpu_s / fed * 1000:.3f} "
            f"({load.gateway_cpu_s / load.elapsed_s:.2f}; {load.idle_cores:.3f})")
        figures[f"{name}: load generator: cores busy; sent late p99 ms (against bare)"] = (
            f"{load.client_cpu_s / load.wall_s:.2f}; {percentile(load.late_ms(), 0.99):,.1f} "
            f"({base.client_cpu_s / base.wall_s:.2f}; {percentile(base.late_ms(), 0.99):,.1f})")
        figures[f"{name}: restarts / 'actor crashed' lines / quarantined / feed closes"] = (
            f"{load.restarts} / {load.crashes} / {load.quarantined} / "
            f"{', '.join(str(c) for c in load.closes) or 'none'}")
    figures["the gateway's ack process, from its log (each rate)"] = ", ".join(
        sorted({load.ack_priority for _, _, load in runs}))
    figures["capacity: most messages/s processed during a load"] = round(capacity)
    rate, _, load = min(runs, key=lambda run: abs(math.log(run[0] / (2 * capacity))))
    if rate >= 1.5 * capacity:
        acks = load.acks_ms()
        met = percentile(acks, 0.99) <= ACK_AIM_MS and not any(ms > 1000 for ms in acks)
        figures[f"aim at about 2x capacity ({rate:,}/s, {rate / capacity:.2f}x): ack p99 <= "
                f"{ACK_AIM_MS:.0f} ms, none over 1 s"] = "met" if met else "not met"
    else:
        figures["aim at 2x capacity: ack p99 <= 50 ms, none over 1 s"] = (
            f"not measured: the highest rate is {max(rates) / capacity:.2f}x capacity")
    kept_up = [(rate, load) for rate, _, load in runs
               if load.backlog_at_end <= rate * KEPT_UP_S]
    if kept_up:
        worst = max(percentile(_feed_ms(load, hooks[: len(load.answers)]), 0.99)
                    for _, load in kept_up)
        figures[f"aim below capacity ({', '.join(f'{r:,}' for r, _ in kept_up)}/s): POST -> "
                f"feed p99 <= {FEED_AIM_MS:.0f} ms"] = (
            f"{'met' if worst <= FEED_AIM_MS else 'not met'} (worst p99 {worst:,.0f} ms)")
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sustained_load")
    parser.add_argument("--rate", type=int, action="append",
                        help=f"messages/s (repeatable); default {RATES}")
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--bare-seconds", type=float, default=BARE_SECONDS)
    parser.add_argument("--drain-cap", type=float, default=DRAIN_CAP_S)
    parser.add_argument("--root", type=Path, default=REPO,
                        help="the checkout whose gateway runs (another commit's worktree)")
    args = parser.parse_args(argv)
    print_section(sys.modules[__name__], run(tuple(args.rate or RATES), args.seconds,
                                             args.bare_seconds, args.drain_cap, args.root))


if __name__ == "__main__":
    main()
