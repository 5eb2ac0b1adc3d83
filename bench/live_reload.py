"""Live reload: what `PUT /admin/config` costs while webhooks flow, and that
nothing is lost or reordered by it.

A gateway process serving the shipped config (firm-a and firm-b) with
`[supervision.pools] session_shards = 4` and `[limits] pair_burst = 45`.
Signed text webhooks are posted at a fixed 500/s for 20 s, the open loop
of the webhook ingest bench (each POST starts on its schedule whatever the
answers do, and its latency counts from that schedule), from 500
conversations taking turns (one message a second each), half to firm-a's
first number and half to firm-b's. A conversation's messages go one at a
time: the next waits for the answer to the previous one (still timed from
its own schedule), so the order each conversation must be stored in is
its sending order. At 35 %, 50 % and 65 % of the run the bench PUTs a new
config (the same TOML with other values, admin token) that takes the
session pools from 4 shards to 1, then 8, then 4 again, and `pair_burst`
from 45 to 20, 60 and 45.

*PUT latency* is the client's, request to answer (validation, the tree
adopting the new spec, the audit record); the same three PUTs on the idle
gateway just before the load are the in-run baseline. *Ack latency around
a reload* counts the POSTs scheduled from 0.5 s before a PUT to 2 s after
its answer; the *baseline* is every other POST after the first second, in
the same run under the same load. After the load every conversation is
read back through `GET /api/v1/conversations/{wa_id}/messages` (the
tenant's token) until each acknowledged message is there: none may be
missing, stored twice or out of its conversation's order. `/admin/tree`
then gives the shards running and the restarts (a reload restarts
nothing), and `/admin/config/changes` the audited reloads.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import ADMIN_TOKEN, REPO, SECRET, Answer, gateway, open_loop, percentile
from bench.report import print_section
from lawhub_actors.simulator import traffic

SHIPPED = REPO / "config" / "lawhub.toml"
TENANTS = {"firm-a": ("106540352242922", "demo-token-firm-a"),
           "firm-b": ("107611463353033", "demo-token-firm-b")}
"""Each tenant of the shipped config: its first number and its API token."""
RATE = 500.0
SECONDS = 20.0
CONVERSATIONS = 500
START = (4, 45)
"""session_shards, pair_burst the gateway starts with."""
RELOADS = ((0.35, 1, 20), (0.50, 8, 60), (0.65, 4, 45))
"""(when, as a fraction of the run; session_shards; pair_burst) of each PUT."""
BEFORE_S, AFTER_S = 0.5, 2.0
"""A reload's window: from this long before its PUT to this long after the answer."""
WARM_UP_S = 1.0
"""The first POSTs, left out of the baseline."""
IDLE_GAP_S = 1.0
STORED_TIMEOUT_S = 120.0
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _config(shards: int, pair_burst: int) -> str:
    return (SHIPPED.read_text() + f"\n[supervision.pools]\nsession_shards = {shards}\n"
            f"\n[limits]\npair_burst = {pair_burst}\n")


@dataclass(frozen=True, slots=True)
class Conversation:
    tenant: str
    wa_id: str


@dataclass(frozen=True, slots=True)
class Reload:
    began: float
    answered: float
    status: int
    body: dict[str, Any]

    @property
    def latency_ms(self) -> float:
        return (self.answered - self.began) * 1000


async def _put(session: aiohttp.ClientSession, url: str, shards: int, pair_burst: int) -> Reload:
    began = time.perf_counter()
    async with session.put(f"{url}/admin/config", data=_config(shards, pair_burst).encode(),
                           headers=ADMIN) as response:
        body = await response.json()
        return Reload(began, time.perf_counter(), response.status, body)


def _load(conversations: list[Conversation], messages: int,
          ) -> tuple[list[traffic.SignedPost], list[tuple[Conversation, int]]]:
    """The signed POSTs, conversations taking turns, and the conversation and
    sequence number of each."""
    posts, labels = [], []
    sent: dict[Conversation, int] = {}
    for i in range(messages):
        conversation = conversations[i % len(conversations)]
        n = sent[conversation] = sent.get(conversation, -1) + 1
        change = traffic.text_message(TENANTS[conversation.tenant][0], conversation.wa_id,
                                      f"{conversation.wa_id} #{n}", timestamp=int(time.time()))
        posts.append(traffic.signed(traffic.envelope(change), SECRET.encode()))
        labels.append((conversation, n))
    return posts, labels


async def _read_back(session: aiohttp.ClientSession, url: str,
                     expected: dict[Conversation, int]) -> dict[Conversation, list[int]]:
    """Each conversation's stored sequence numbers, in stored order, once it
    holds at least its ``expected`` count (or the time is up)."""
    gate = asyncio.Semaphore(16)
    stored: dict[Conversation, list[int]] = {}

    async def read(conversation: Conversation) -> None:
        token = TENANTS[conversation.tenant][1]
        numbers: list[int] = []
        before: int | None = None
        while True:
            query = "?limit=200" + (f"&before={before}" if before is not None else "")
            async with gate, session.get(
                    f"{url}/api/v1/conversations/{conversation.wa_id}/messages{query}",
                    headers={"Authorization": f"Bearer {token}"}) as response:
                response.raise_for_status()
                page = await response.json()
            numbers[:0] = [int(m["text"].rpartition("#")[2]) for m in page["messages"]
                           if m["direction"] == "in"]
            if len(page["messages"]) < 200:
                break
            before = page["next_before"]
        stored[conversation] = numbers

    waiting = list(expected)
    deadline = time.perf_counter() + STORED_TIMEOUT_S
    while waiting and time.perf_counter() < deadline:
        await asyncio.gather(*(read(c) for c in waiting))
        waiting = [c for c in waiting if len(stored[c]) < expected[c]]
        if waiting:
            await asyncio.sleep(0.2)
    return stored


async def _admin(session: aiohttp.ClientSession, url: str, path: str) -> Any:
    async with session.get(f"{url}{path}", headers=ADMIN) as response:
        response.raise_for_status()
        return await response.json()


async def _drive(url: str, rate: float, seconds: float, conversations: list[Conversation],
                 ) -> dict[str, Any]:
    posts, labels = _load(conversations, int(rate * seconds))
    async with aiohttp.ClientSession() as session:
        idle = []
        for _, shards, pair_burst in RELOADS:
            idle.append(await _put(session, url, shards, pair_burst))
            await asyncio.sleep(IDLE_GAP_S)

        async def reload_on_schedule() -> list[Reload]:
            started = time.perf_counter()
            done = []
            for fraction, shards, pair_burst in RELOADS:
                await asyncio.sleep(max(started + fraction * seconds - time.perf_counter(), 0))
                done.append(await _put(session, url, shards, pair_burst))
            return done

        answers, reloads = await asyncio.gather(
            open_loop(f"{url}/webhook", posts, rate, chains=[c for c, _ in labels]),
            reload_on_schedule())
        last_answer = time.perf_counter()

        acknowledged: dict[Conversation, set[int]] = {c: set() for c in conversations}
        for answer, (conversation, n) in zip(answers, labels, strict=True):
            if answer.status == 200:
                acknowledged[conversation].add(n)
        stored = await _read_back(session, url, {c: len(a) for c, a in acknowledged.items()})
        stored_after_s = time.perf_counter() - last_answer
        tree = await _admin(session, url, "/admin/tree")
        audited = await _admin(session, url, "/admin/config/changes")
    return {"answers": answers, "idle": idle, "reloads": reloads, "acknowledged": acknowledged,
            "stored": stored, "stored_after_s": stored_after_s, "tree": tree,
            "audited": len(audited["entries"])}


def _walk(node: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield node
    for child in node["children"]:
        yield from _walk(child)


def _latencies(answers: Sequence[Answer]) -> str:
    values = [a.latency_s * 1000 for a in answers]
    if not values:
        return "none"
    return (f"{percentile(values, 0.5):.1f} / {percentile(values, 0.99):.1f} / "
            f"{max(values):.1f} ({len(values)})")


def _ratio(values: Sequence[float], baseline: Sequence[float], fraction: float) -> str:
    """The ``fraction`` percentile of ``values`` over that of ``baseline``."""
    if not values or not baseline:
        return "n/a"
    return f"{percentile(values, fraction) / percentile(baseline, fraction):.2f}"


def run(rate: float = RATE, seconds: float = SECONDS,
        conversations: int = CONVERSATIONS) -> dict[str, Any]:
    talking = [Conversation("firm-a" if c % 2 == 0 else "firm-b", f"62817{c:07d}")
               for c in range(conversations)]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(_config(*START))
        with gateway(Path(tmp) / "var", config) as server:
            result = asyncio.run(_drive(server.url, rate, seconds, talking))

    answers: list[Answer] = result["answers"]
    reloads: list[Reload] = result["reloads"]
    start = answers[0].at
    windows = [(r.began - BEFORE_S, r.answered + AFTER_S) for r in reloads]
    ok = [a for a in answers if a.status == 200]
    around = [a for a in ok if any(low <= a.at <= high for low, high in windows)]
    baseline = [a for a in ok if a.at >= start + WARM_UP_S
                and not any(low <= a.at <= high for low, high in windows)]

    acknowledged: dict[Conversation, set[int]] = result["acknowledged"]
    stored: dict[Conversation, list[int]] = result["stored"]
    missing = sum(len(a - set(stored.get(c, []))) for c, a in acknowledged.items())
    twice = sum(len(s) - len(set(s)) for s in stored.values())
    out_of_order = sum(1 for s in stored.values() if s != sorted(s))
    nodes = list(_walk(result["tree"]))
    shards = {t: sum(1 for n in nodes if n["path"].startswith(f"inbound/sessions/{t}/"))
              for t in TENANTS}

    figures: dict[str, Any] = {
        "load": f"{rate:,.0f} signed webhooks/s for {seconds:g} s (open loop), "
                f"{conversations} conversations over {len(TENANTS)} tenants, each in order",
        "webhooks posted / answered 200": f"{len(answers):,} / {len(ok):,}",
        "posts that waited for their conversation's previous answer": sum(a.queued
                                                                         for a in answers),
    }
    before = START
    for (fraction, shards_to, burst_to), idle, put in zip(RELOADS, result["idle"], reloads,
                                                           strict=True):
        label = (f"reload at {fraction * seconds:g} s (session_shards {before[0]} -> {shards_to},"
                 f" pair_burst {before[1]} -> {burst_to}):")
        changed = ", ".join(c["key"] for c in put.body.get("changes", [])) or "none"
        window = [a for a in ok if put.began - BEFORE_S <= a.at <= put.answered + AFTER_S]
        figures.update({
            f"{label} PUT status; keys changed; not adopted":
                f"{put.status}; {changed}; {', '.join(put.body.get('not_adopted', [])) or 'none'}",
            f"{label} PUT latency under load / idle, ms": f"{put.latency_ms:.1f} / "
                                                           f"{idle.latency_ms:.1f}",
            f"{label} ack p50 / p99 / max ms in its window (n)": _latencies(window),
        })
        before = (shards_to, burst_to)
    figures.update({
        "PUT latency under load / idle, median of the three": _ratio(
            [r.latency_ms for r in reloads], [r.latency_ms for r in result["idle"]], 0.5),
        f"ack baseline (no reload, after the first {WARM_UP_S:g} s): p50 / p99 / max ms (n)":
            _latencies(baseline),
        f"ack around reloads ({BEFORE_S:g} s before a PUT to {AFTER_S:g} s after): "
        "p50 / p99 / max ms (n)": _latencies(around),
        "ack around reloads / baseline, p50": _ratio(
            [a.latency_s for a in around], [a.latency_s for a in baseline], 0.5),
        "ack around reloads / baseline, p99": _ratio(
            [a.latency_s for a in around], [a.latency_s for a in baseline], 0.99),
        "acknowledged messages read back through the API":
            sum(len(set(s)) for s in stored.values()),
        "acknowledged messages missing / stored twice (must be 0 / 0)": f"{missing} / {twice}",
        "conversations out of order (must be 0)": out_of_order,
        "seconds from the last answer until every message was read back":
            f"{result['stored_after_s']:.1f}",
        "session shards at the end (firm-a, firm-b; configured 4)":
            ", ".join(str(shards[t]) for t in TENANTS),
        "actor restarts (from /admin/tree; a reload restarts nothing)":
            sum(n["restarts"]["total"] for n in nodes),
        "reloads audited (GET /admin/config/changes; 3 idle + 3 under load)": result["audited"],
    })
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.live_reload")
    parser.add_argument("--rate", type=float, default=RATE, help="webhooks per second")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="of load")
    parser.add_argument("--conversations", type=int, default=CONVERSATIONS)
    args = parser.parse_args(argv)
    print_section(sys.modules[__name__], run(args.rate, args.seconds, args.conversations))


if __name__ == "__main__":
    main()
