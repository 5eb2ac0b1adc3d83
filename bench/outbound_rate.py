"""Outbound rate: the rate one business number's sends reach Meta against its
configured `throughput_mps`, at 80 and at 1,000 msg/s, and the API's accept
latency (`POST /api/v1/messages`) while the number sends at that rate.

For each rate R: a gateway process whose config has one tenant with one
number at `throughput_mps = R` (tier unlimited; every other key at its
default: `throughput_headroom` 0.02, `send_in_flight` 32, 4 outbound
workers), and Meta's local stand-in in the bench process (its own loop
and thread) enforcing Meta's limits: R msg/s for that number over any
sliding second (130429 above it) and the pair rate (131056). Status
webhooks are off: they are not needed to measure the rate. Every
recipient wrote first (a signed inbound webhook each, stored before any
send), so each send is a reply inside the 24-hour window. Then 6 R
replies are posted over 16 connections, 10 per recipient (within Meta's
pair burst of 45, so the pair rate never binds), which is meant to keep
the limiter saturated for about six seconds; once that burst is
accepted, one more reply is posted every 50 ms, one at a time (a
dashboard's send while the number is busy), until the burst has left.
The bench then waits (40 s at most) until the stand-in has accepted
every message.

*Achieved* is over the steady part: the arrivals (by the stand-in's
clock) from one second after the first accepted send to one second
before the last, counted over the time between the first and the last
of them; a second figure counts only from one second after the burst
was accepted, when the gateway does nothing but send. *Busiest second*
is the most accepted arrivals in any sliding 1-s window over the whole
run, which is what Meta's limit counts. The aim written in the issue:
within 2 % of R, never above it. The limiter spaces sends at
R x (1 - headroom) on purpose, so that a call leaving a few
milliseconds late never lands above Meta's limit: with the default 2 %
headroom the achieved rate sits at 98 % of R by design, exactly on the
edge of "within 2 %" (the check is made on the value as shown, to two
decimals), and any slot lost to scheduling lag puts it below: a call
thread that wakes more than half an interval late gives its slot up
and takes a new one (capacity lost, never excess rate), which happens
more when other work on the machine delays threads.

Accept latency is measured by the client for each POST: in the burst
(16 requests in flight, so it includes waiting behind the others) and
for the paced sends during the drain. The gateway's CPU time (user +
system of its processes, from `/proc`) from the start of the burst to
the last send is given in cores busy and per message sent.

At 1,000/s the gateway does not keep up, and the table says by how
much. Even the burst is accepted below R there (the API shares the
interpreter with the sending), so the limiter never has its backlog,
and the rate once the burst was in is the sending side's own ceiling.
The whole path runs in one CPython process: the API, three store writes
per message through the single writer thread (its acceptance, its claim,
its sent mark) and two reads, the worker, breaker and limiter actors,
and the calls (coroutines on one event loop thread with aiohttp, each
waiting for its slot and then making the HTTP call), all handing work
between threads under one GIL: the CPU figure shows the process at about
one core. Where that core goes (py-spy and `/proc` per thread, 2026-12-07):
the store writer ~28 %, the API ~24 %, the actors ~23 %, the calls ~18 %.
The calls ran on `send_in_flight` threads with httpx before: ~15 % more
CPU per message in runs interleaved with these (FACTS.md). The limiter
still never lets the number go above R.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import SECRET, Server, cpu_times, gateway, percentile
from bench.report import print_section
from lawhub_actors.settings import Limits, Pools
from lawhub_actors.simulator import traffic
from lawhub_actors.simulator.graph import GraphStandIn, serve_in_thread

GRAPH_TOKEN = "bench-graph-token"
TENANT_TOKEN = "bench-outbound-token"
NUMBER = "300000000000001"
RATES = (80, 1000)
SECONDS = 6
"""Seconds of backlog posted: 6 R messages."""
PER_RECIPIENT = 10
CONNECTIONS = 16
PROBE_EVERY_S = 0.05
DRAIN_TIMEOUT_S = 40.0
EDGE_S = 1.0
"""Dropped at each end of the arrivals: the limiter's start and the tail."""


def _config(path: Path, rate: int) -> None:
    path.write_text(
        f'[[tenants]]\nid = "bench"\n'
        f'api_token_sha256 = "{hashlib.sha256(TENANT_TOKEN.encode()).hexdigest()}"\n'
        f'[[tenants.phone_numbers]]\nid = "{NUMBER}"\ndisplay = "+62 811 3000 001"\n'
        f'tier = "unlimited"\nthroughput_mps = {rate}\n'
    )


def _customer(i: int) -> str:
    return f"62813{i:07d}"


async def _customers_wrote(session: aiohttp.ClientSession, url: str, customers: list[str]) -> None:
    """A signed inbound text from each customer, then wait until all are stored."""
    gate = asyncio.Semaphore(CONNECTIONS)
    headers = {"Authorization": f"Bearer {TENANT_TOKEN}"}

    async def wrote(wa_id: str) -> None:
        change = traffic.text_message(NUMBER, wa_id, "halo", timestamp=int(time.time()))
        signed = traffic.signed(traffic.envelope(change), SECRET.encode())
        async with gate, session.post(f"{url}/webhook", data=signed.body,
                                      headers=signed.headers) as response:
            assert response.status == 200, response.status

    async def stored(wa_id: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            async with gate, session.get(f"{url}/api/v1/conversations/{wa_id}/messages",
                                         headers=headers) as response:
                if response.status == 200 and (await response.json())["messages"]:
                    return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the inbound message of {wa_id} was never stored")

    await asyncio.gather(*(wrote(c) for c in customers))
    await asyncio.gather(*(stored(c) for c in customers))


async def _send(session: aiohttp.ClientSession, url: str, to: str, text: str) -> float:
    """POST one reply; its latency in seconds."""
    began = time.perf_counter()
    async with session.post(f"{url}/api/v1/messages",
                            headers={"Authorization": f"Bearer {TENANT_TOKEN}"},
                            json={"phone_number_id": NUMBER, "to": to, "type": "text",
                                  "text": {"body": text}}) as response:
        await response.read()
        if response.status != 202:
            raise RuntimeError(f"send answered {response.status}: {await response.text()}")
    return time.perf_counter() - began


class _Accepted:
    """How many sends the stand-in has answered 200, counted incrementally
    (a rescan of every record each poll would take the stand-in's GIL)."""

    def __init__(self, stand_in: GraphStandIn) -> None:
        self._sends = stand_in.sends
        self._seen = 0
        self._unanswered: list[Any] = []
        self.count = 0

    def poll(self) -> int:
        new = self._sends[self._seen:len(self._sends)]
        self._seen += len(new)
        pending = self._unanswered + new
        self._unanswered = [s for s in pending if s.status is None]
        self.count += sum(1 for s in pending if s.status == 200)
        return self.count


def _cpu_s(pids: Sequence[int]) -> float:
    """User + system CPU seconds so far of ``pids`` and their child processes."""
    return sum(sum(cpu_times(pid)) for pid in pids)


async def _drive(urls: Sequence[str], stand_in: GraphStandIn, messages: int,
                 pids: Sequence[int]) -> dict[str, Any]:
    """The burst posted over ``urls`` (poster ``i`` to ``urls[i % n]``), then
    paced sends to each in turn, until the stand-in accepted them all; the
    CPU is that of ``pids`` and their child processes."""
    customers = [_customer(i) for i in range(max(messages // PER_RECIPIENT, 1))]
    connector = aiohttp.TCPConnector(limit=CONNECTIONS + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _customers_wrote(session, urls[0], customers)

        queue = iter(range(messages))
        burst: list[float] = []

        async def poster(url: str) -> None:
            for n in queue:
                burst.append(await _send(session, url, customers[n % len(customers)],
                                         f"balasan {n}"))

        accepted = _Accepted(stand_in)
        cpu_at_start = _cpu_s(pids)
        started = time.perf_counter()
        await asyncio.gather(*(poster(urls[i % len(urls)]) for i in range(CONNECTIONS)))
        posted_s = time.perf_counter() - started
        burst_done = time.time()  # the stand-in's clock

        probes: list[float] = []
        while accepted.poll() < messages:
            n = len(probes)
            probes.append(await _send(session, urls[n % len(urls)],
                                      customers[n % len(customers)], f"susulan {n}"))
            await asyncio.sleep(PROBE_EVERY_S)
        total = messages + len(probes)
        deadline = time.perf_counter() + DRAIN_TIMEOUT_S
        while accepted.poll() < total and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        cpu_s = _cpu_s(pids) - cpu_at_start
        wall_s = time.perf_counter() - started
    return {"burst": burst, "posted_s": posted_s, "burst_done": burst_done, "probes": probes,
            "total": total, "cpu_s": cpu_s, "wall_s": wall_s}


def _rate(arrivals: list[float]) -> float:
    """Sends per second between the first and the last of ``arrivals``."""
    if len(arrivals) < 2 or arrivals[-1] <= arrivals[0]:
        return 0.0
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])


def _busiest_second(arrivals: list[float]) -> int:
    """Most arrivals within any window (t - 1 s, t], t an arrival: the
    stand-in's count (it refuses a send when that window already holds R)."""
    best, first = 0, 0
    for last, at in enumerate(arrivals):
        while arrivals[first] <= at - 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


Nodes = Callable[[Path, Path, dict[str, str]],
                 contextlib.AbstractContextManager[tuple[list[Server], list[int]]]]
"""Start the gateways: (a temp dir, their config, env) -> the servers, and
the processes whose CPU counts (with their children)."""


@contextlib.contextmanager
def one_gateway(tmp: Path, config: Path,
                env: dict[str, str]) -> Iterator[tuple[list[Server], list[int]]]:
    with gateway(tmp / "var", config, **env) as server:
        yield [server], [server.pid]


def one_rate(rate: int, seconds: int, nodes: Nodes = one_gateway) -> dict[str, Any]:
    stand_in = GraphStandIn(GRAPH_TOKEN)
    stand_in.set_throughput(NUMBER, rate)
    messages = seconds * rate
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(stand_in) as graph_url:
        config = Path(tmp) / "bench.toml"
        _config(config, rate)
        env = {"LAWHUB_ACCESS_TOKEN": GRAPH_TOKEN, "LAWHUB_GRAPH_BASE_URL": graph_url}
        with nodes(Path(tmp), config, env) as (servers, pids):
            result = asyncio.run(_drive([s.url for s in servers], stand_in, messages, pids))
    sends = list(stand_in.sends)
    arrivals = sorted(s.at for s in sends if s.status == 200)
    refused: dict[int | None, int] = {}
    for s in sends:
        if s.status != 200:
            refused[s.code] = refused.get(s.code, 0) + 1
    end = arrivals[-1] - EDGE_S if arrivals else 0.0
    achieved = _rate([t for t in arrivals if arrivals[0] + EDGE_S <= t <= end])
    draining = _rate([t for t in arrivals if result["burst_done"] + EDGE_S <= t <= end])
    return {"rate": rate, "messages": messages, "total": result["total"],
            "accepted": len(arrivals), "refused": refused, "achieved": achieved,
            "draining": draining, "cpu_s": result["cpu_s"], "wall_s": result["wall_s"],
            "busiest": _busiest_second(arrivals) if arrivals else 0,
            "span_s": arrivals[-1] - arrivals[0] if arrivals else 0.0,
            "burst": result["burst"], "posted_s": result["posted_s"],
            "probes": result["probes"]}


def _latencies(values: list[float]) -> str:
    if not values:
        return "none"
    p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
    return f"{p50:.1f} / {p99:.1f} ({len(values)})"


def rate_figures(r: dict[str, Any], headroom: float) -> dict[str, Any]:
    """One rate's figures, labelled by the rate."""
    rate = r["rate"]
    label = f"{rate}/s:"
    achieved, busiest, target = r["achieved"], r["busiest"], rate * (1 - headroom)
    refused = ", ".join(f"{code}: {n}" for code, n in sorted(r["refused"].items(),
                                                            key=lambda kv: str(kv[0])))
    return {
        f"{label} messages posted (burst + paced) / accepted by the stand-in":
            f"{r['messages']:,} + {r['total'] - r['messages']} / {r['accepted']:,}",
        f"{label} refused by the stand-in (130429, 131056: must be none)": refused or "none",
        f"{label} limiter target, msg/s (R x (1 - headroom))": f"{target:.2f}",
        f"{label} achieved, msg/s (steady part)": f"{achieved:.2f}",
        f"{label} achieved / configured": f"{achieved / rate:.4f}",
        f"{label} achieved / limiter target": f"{achieved / target:.4f}",
        f"{label} achieved once the burst was in, msg/s (sending only)":
            f"{r['draining']:.2f}",
        f"{label} busiest 1-s window (sliding), sends": busiest,
        f"{label} never above: busiest <= {rate}": "met" if busiest <= rate else "NOT met",
        f"{label} within 2 %: {0.98 * rate:g} <= achieved <= {rate}":
            "met" if 0.98 * rate <= round(achieved, 2) <= rate else "NOT met",
        f"{label} first to last send, s": f"{r['span_s']:.2f}",
        f"{label} burst accepted by the API, POSTs/s":
            f"{len(r['burst']) / r['posted_s']:.0f}",
        f"{label} accept latency in the burst ({CONNECTIONS} in flight), p50 / p99 ms (n)":
            _latencies(r["burst"]),
        f"{label} accept latency while draining (one every 50 ms), p50 / p99 ms (n)":
            _latencies(r["probes"]),
        f"{label} gateway CPU from the burst to the last send, cores; ms per message":
            f"{r['cpu_s'] / r['wall_s']:.2f}; {r['cpu_s'] * 1000 / r['accepted']:.2f}",
    }


def run(rates: Sequence[int] = RATES, seconds: int = SECONDS) -> dict[str, Any]:
    limits = Limits()
    headroom = limits.throughput_headroom
    figures: dict[str, Any] = {
        "throughput_headroom, send_in_flight, outbound workers (defaults)":
            f"{headroom:.0%}, {limits.send_in_flight}, {Pools().outbound_workers}",
    }
    for rate in rates:
        figures.update(rate_figures(one_rate(rate, seconds), headroom))
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.outbound_rate")
    parser.add_argument("--rates", type=int, nargs="+", default=list(RATES),
                        help="configured throughput_mps values, one gateway each")
    parser.add_argument("--seconds", type=int, default=SECONDS,
                        help="seconds of backlog posted at once (seconds x rate messages)")
    args = parser.parse_args(argv)
    print_section(sys.modules[__name__], run(args.rates, args.seconds))


if __name__ == "__main__":
    main()
