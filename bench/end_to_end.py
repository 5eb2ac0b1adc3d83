"""End to end: messages per second from POST /webhook to ``message.received``
on a websocket client, and the number of ordering violations (must be 0).

A gateway process with 20 tenants; one websocket client per tenant; 1,000
conversations spread over the tenants, each sending its messages strictly
in order (the next POST after the previous one was acknowledged) while all
conversations run concurrently over 64 connections. Every message carries
its conversation's sequence number, so a client can tell when one arrives
out of order; the latency of each message is from just before its POST to
its arrival on the feed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import SECRET, gateway, percentile
from bench.report import print_section
from lawhub_actors.simulator import traffic

TENANTS = 20


def _config(path: Path) -> None:
    path.write_text("".join(
        f'[[tenants]]\nid = "t{i:02d}"\n'
        f'api_token_sha256 = "{hashlib.sha256(f"token-{i}".encode()).hexdigest()}"\n'
        f'[[tenants.phone_numbers]]\nid = "20000000000{i:02d}"\ndisplay = "+62 811 {i}"\n'
        f'tier = "10K"\n\n'
        for i in range(TENANTS)
    ))


async def _drive(url: str, conversations: int, per_conversation: int) -> dict[str, Any]:
    total = conversations * per_conversation
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    last_seen: dict[str, int] = {}
    violations = 0
    arrived = 0
    done = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def listen(i: int) -> None:
            nonlocal violations, arrived
            headers = {"Authorization": f"Bearer token-{i}"}
            async with session.ws_connect(f"{url}/ws", headers=headers) as ws:
                async for message in ws:
                    frame = json.loads(message.data)
                    if frame["type"] != "message.received":
                        continue
                    customer, n = frame["data"]["text"].split("#")
                    latencies.append(time.perf_counter() - sent_at[frame["data"]["text"]])
                    if int(n) != last_seen.get(customer, -1) + 1:
                        violations += 1
                    last_seen[customer] = int(n)
                    arrived += 1
                    if arrived == total:
                        done.set()

        async def converse(c: int) -> None:
            tenant = c % TENANTS
            customer = f"62815{c:07d}"
            for n in range(per_conversation):
                text = f"{customer}#{n}"
                change = traffic.text_message(f"20000000000{tenant:02d}", customer, text)
                post = traffic.signed(traffic.envelope(change), SECRET.encode())
                sent_at[text] = time.perf_counter()
                async with session.post(f"{url}/webhook", data=post.body,
                                        headers=post.headers) as response:
                    if response.status != 200:
                        raise RuntimeError(f"webhook answered {response.status}")

        listeners = [asyncio.create_task(listen(i)) for i in range(TENANTS)]
        await asyncio.sleep(0.5)  # let every client subscribe
        started = time.perf_counter()
        await asyncio.gather(*(converse(c) for c in range(conversations)))
        posted = time.perf_counter() - started
        await asyncio.wait_for(done.wait(), 300)
        elapsed = time.perf_counter() - started
        for listener in listeners:
            listener.cancel()
    return {"total": total, "posted_s": posted, "elapsed_s": elapsed, "latencies": latencies,
            "violations": violations}


def run(conversations: int = 1000, per_conversation: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.toml"
        _config(config)
        with gateway(Path(tmp) / "var", config) as server:
            result = asyncio.run(_drive(server.url, conversations, per_conversation))
    latencies = sorted(result["latencies"])
    return {
        "conversations x messages, tenants": f"{conversations} x {per_conversation}, {TENANTS}",
        "messages delivered to the feed": len(latencies),
        "end-to-end messages/s (POST -> message.received)":
            round(result["total"] / result["elapsed_s"]),
        "acknowledged POSTs/s during the run": round(result["total"] / result["posted_s"]),
        "latency POST -> feed p50 / p99 ms": (
            f"{percentile(latencies, 0.5) * 1000:.1f} / {percentile(latencies, 0.99) * 1000:.1f}"
        ),
        "ordering violations (must be 0)": result["violations"],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.end_to_end")
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=5, help="per conversation")
    args = parser.parse_args(argv)
    print_section(sys.modules[__name__], run(args.conversations, args.messages))


if __name__ == "__main__":
    main()
