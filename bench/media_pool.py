"""Media pool: files/s and MB/s for 200 KB images with clamd on, and what a
saturated pool adds to a text message in an unrelated conversation.

A gateway process (the shipped config, `media_workers` as configured) with
a real clamd (the tests' signature database) and Meta's local stand-in
serving the images over HTTP. Every image comes from its own conversation
and all are posted at once, so the pool is saturated; throughput is images
over the time from the first POST to the last `media.scanned`.
Meanwhile a text message is posted every 50 ms in conversations that send
no media, and its latency (POST to `message.received` on the feed) is
compared with the same probe on the idle gateway, measured first in the
same run: the difference is what the busy pool costs everyone else (the
pool's threads share the interpreter with the shards and the web server).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import REPO, SECRET, gateway, percentile
from bench.report import print_section
from lawhub_actors.settings import load
from lawhub_actors.simulator import traffic
from lawhub_actors.simulator.graph import GraphStandIn, serve_in_thread
from tests.servers import run_clamd

TOKEN = "bench-graph-token"
NUMBER = "106540352242922"  # firm-a's first number in config/lawhub.toml
FEED_TOKEN = "demo-token-firm-a"
IMAGE_BYTES = 200 * 1024
PROBE_EVERY_S = 0.05


def _jpeg() -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(IMAGE_BYTES - 11)


class _Feed:
    """firm-a's feed: when each text and each verdict arrived."""

    def __init__(self) -> None:
        self.texts: dict[str, float] = {}
        self.scanned: dict[str, float] = {}
        self.verdicts: dict[str, int] = {}

    async def listen(self, session: aiohttp.ClientSession, url: str) -> None:
        async with session.ws_connect(f"{url}/ws?token={FEED_TOKEN}") as ws:
            async for frame in ws:
                event = frame.json()
                data = event["data"]
                if event["type"] == "message.received" and data.get("text"):
                    self.texts[data["text"]] = time.perf_counter()
                elif event["type"] == "media.scanned":
                    self.scanned[data["wamid"]] = time.perf_counter()
                    self.verdicts[data["verdict"]] = self.verdicts.get(data["verdict"], 0) + 1


async def _post(session: aiohttp.ClientSession, url: str, change: dict[str, Any]) -> None:
    signed = traffic.signed(traffic.envelope(change), SECRET.encode())
    async with session.post(f"{url}/webhook", data=signed.body, headers=signed.headers) as r:
        assert r.status == 200, r.status


async def _probe(session: aiohttp.ClientSession, url: str, feed: _Feed, label: str,
                 stop: asyncio.Event) -> list[float]:
    """A text in a fresh conversation every PROBE_EVERY_S until ``stop``."""
    sent: dict[str, float] = {}
    n = 0
    while not stop.is_set():
        text = f"probe {label} {n}"
        sent[text] = time.perf_counter()
        await _post(session, url, traffic.text_message(NUMBER, f"62899{n:07d}", text))
        n += 1
        await asyncio.sleep(PROBE_EVERY_S)
    deadline = time.perf_counter() + 30
    while any(t not in feed.texts for t in sent) and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    return [feed.texts[t] - at for t, at in sent.items() if t in feed.texts]


async def _drive(url: str, media: list[tuple[str, bytes]]) -> dict[str, Any]:
    feed = _Feed()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        listener = asyncio.create_task(feed.listen(session, url))
        await asyncio.sleep(0.2)
        idle_stop = asyncio.Event()
        idle_probe = asyncio.create_task(_probe(session, url, feed, "idle", idle_stop))
        await asyncio.sleep(2.0)
        idle_stop.set()
        idle = await idle_probe

        busy_stop = asyncio.Event()
        busy_probe = asyncio.create_task(_probe(session, url, feed, "busy", busy_stop))
        wamids = [traffic.wamid() for _ in media]
        started = time.perf_counter()
        await asyncio.gather(*(
            _post(session, url, traffic.media_message(
                NUMBER, f"62811{i:07d}", "image",
                {"id": media_id, "mime_type": "image/jpeg",
                 "sha256": base64.b64encode(hashlib.sha256(data).digest()).decode()},
                message_id=wamid))
            for i, ((media_id, data), wamid) in enumerate(zip(media, wamids, strict=True))
        ))
        while len(feed.scanned) < len(media):
            await asyncio.sleep(0.01)
        elapsed = max(feed.scanned[w] for w in wamids) - started
        busy_stop.set()
        busy = await busy_probe
        listener.cancel()
    return {"elapsed": elapsed, "idle": idle, "busy": busy, "verdicts": feed.verdicts}


def run(images: int = 200) -> dict[str, Any]:
    stand_in = GraphStandIn(TOKEN)
    media = [(stand_in.add_media(data, "image/jpeg"), data) for data in
             (_jpeg() for _ in range(images))]
    with tempfile.TemporaryDirectory() as tmp, run_clamd() as clamd, \
            serve_in_thread(stand_in) as graph_url:
        config = Path(tmp) / "bench.toml"
        config.write_text((REPO / "config" / "lawhub.toml").read_text()
                          + f'\n[limits]\nclamd_socket = "{clamd.address}"\n')
        with gateway(Path(tmp) / "var", config, LAWHUB_ACCESS_TOKEN=TOKEN,
                     LAWHUB_GRAPH_BASE_URL=graph_url) as server:
            result = asyncio.run(_drive(server.url, media))
    idle, busy = sorted(result["idle"]), sorted(result["busy"])
    megabytes = images * IMAGE_BYTES / 1024 / 1024
    return {
        "images (one per conversation, posted at once)": f"{images} x {IMAGE_BYTES // 1024} KB",
        "media workers (shipped config)": load(REPO / "config" / "lawhub.toml")
        .supervision.pools.media_workers,
        "verdicts": ", ".join(f"{k}: {v}" for k, v in sorted(result["verdicts"].items())),
        "pool throughput, files/s": f"{images / result['elapsed']:.1f}",
        "pool throughput, MB/s": f"{megabytes / result['elapsed']:.1f}",
        "text probe, idle gateway: p50 / p99 ms (n)": _latencies(idle),
        "text probe, pool saturated: p50 / p99 ms (n)": _latencies(busy),
        "added by the saturated pool, p50 ms":
            f"{(percentile(busy, 0.5) - percentile(idle, 0.5)) * 1000:.1f}",
    }


def _latencies(values: list[float]) -> str:
    p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
    return f"{p50:.1f} / {p99:.1f} ({len(values)})"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.media_pool")
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args(argv)
    print_section(sys.modules[__name__], run(args.images))


if __name__ == "__main__":
    main()
