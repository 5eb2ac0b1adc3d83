"""Webhook ingest: acknowledged POSTs per second and ack latency.

The gateway's ``POST /webhook`` (signature check, JSON check, durable
group-committed journal) against a bare aiohttp handler that only answers
200, measured in the same run with the same load generator: ``wrk`` with a
Lua script posting one signed ~1.5 KB body over 50 connections. Both
servers run as separate processes on loopback; the ratio of the two rates
is the figure to compare across machines. They are measured in turn,
several rounds (bare, gateway, bare, gateway, ...), because this machine's
speed drifts by tens of percent within a minute: the table gives the median
of each and the median of the per-round ratios. The aim written in the
issue: at least 75 % of the bare rate, and p99 at most 10 ms.

The gateway is the whole process: the event loop that acknowledges shares
one interpreter (one GIL) with the dispatcher, the shards and the store
writer, which handle every acknowledged body (here the same body each time,
so all but the first are duplicates the dispatcher drops after parsing).
A third server, *ack path alone*, runs the gateway's own webhook handler
and journal (signature, JSON check, group-committed durable append; no
sealing) with no actors behind it: what an ingest process split off from
the processing would answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import SECRET, gateway, open_loop, serve
from bench.report import print_section
from lawhub_actors.simulator import traffic

FIXED_RATE = 2000.0
"""Requests/s of the open-loop run: about half the gateway's peak here, and
several times what Meta sends one number (~300/s at 80 msg/s out)."""
NUMBER = "106540352242922"  # firm-a's first number in config/lawhub.toml

BARE_SERVER = """
import sys
from aiohttp import web

async def ok(request):
    await request.read()
    return web.Response(text="ok")

app = web.Application(client_max_size=4 * 1024 * 1024)
app.router.add_post("/webhook", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


ACK_PATH_SERVER = """
import os, sys
from pathlib import Path
from aiohttp import web
from lawhub_actors import logs
from lawhub_actors.adapters.sqlite_journal import Journal
from lawhub_actors.web import webhook
from lawhub_actors.web.keys import APP_SECRET, JOURNAL, WEBHOOK_MAX_BYTES

async def journal(app):
    app[JOURNAL] = Journal(Path(os.environ["LAWHUB_DATA_DIR"]) / "journal.sqlite3",
                           seal=lambda body: ("v0", body), open_=lambda key_id, blob: blob)
    yield
    app[JOURNAL].close()

logs.configure("info")  # as run.py does: the handler's debug line is dropped
app = web.Application(client_max_size=4 * 1024 * 1024)
app[APP_SECRET] = os.environ["LAWHUB_APP_SECRET"].encode()
app[WEBHOOK_MAX_BYTES] = 4 * 1024 * 1024
app.cleanup_ctx.append(journal)
webhook.add_routes(app)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def _body() -> traffic.SignedPost:
    text = "Selamat siang Pak, saya ingin berkonsultasi mengenai sengketa tanah warisan. " * 12
    change = traffic.text_message(NUMBER, "6281234500001", text[:1300])
    return traffic.signed(traffic.envelope(change), SECRET.encode())


def _lua(post: traffic.SignedPost) -> str:
    headers = "".join(
        f'wrk.headers["{name}"] = {json.dumps(value)}\n' for name, value in post.headers.items()
    )
    return f'wrk.method = "POST"\nwrk.body = {json.dumps(post.body.decode())}\n{headers}'


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = {
        pct: float(value) * _UNITS[unit]
        for pct, value, unit in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rate": rate, "p50": latency["50"], "p90": latency["90"], "p99": latency["99"],
            "errors": float(non_2xx.group(1)) if non_2xx else 0.0}


async def _fixed_rate(url: str, post: traffic.SignedPost, rate: float,
                      seconds: float) -> dict[str, float]:
    """Open loop (:func:`bench.common.open_loop`): latency at a fixed rate."""
    answers = await open_loop(url, [post] * int(rate * seconds), rate)
    latencies = sorted(a.latency_s * 1000 for a in answers if a.status)
    return {"p50": latencies[len(latencies) // 2], "p99": latencies[int(len(latencies) * 0.99)],
            "errors": float(sum(a.status != 200 for a in answers))}


def _measure(url: str, script: Path, seconds: int, connections: int,
             offered: tuple[traffic.SignedPost, float] | None = None) -> dict[str, float]:
    """Peak (wrk, closed loop) of the server at ``url``; with ``offered`` (body,
    rate) also the latency at that fixed rate."""
    url = f"{url}/webhook"
    _wrk(url, script, 2, connections)  # warm-up
    figures = _wrk(url, script, seconds, connections)
    if offered is not None:
        fixed = asyncio.run(_fixed_rate(url, offered[0], offered[1], seconds))
        figures.update({f"fixed_{key}": value for key, value in fixed.items()})
    return figures


def run(seconds: int = 6, connections: int = 50, rounds: int = 3) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it")
    post = _body()
    bare: list[dict[str, float]] = []
    ack_path: list[dict[str, float]] = []
    gateways: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(_lua(post))
        for round_ in range(rounds):
            with serve([sys.executable, "-c", BARE_SERVER], os.environ) as server:
                bare.append(_measure(server.url, script, seconds, connections))
            ack_env = {**os.environ, "LAWHUB_APP_SECRET": SECRET,
                       "LAWHUB_DATA_DIR": str(Path(tmp) / f"ack-{round_}")}
            with serve([sys.executable, "-c", ACK_PATH_SERVER], ack_env) as server:
                ack_path.append(_measure(server.url, script, seconds, connections))
            with gateway(Path(tmp) / f"var-{round_}", LAWHUB_VERIFY_TOKEN="bench") as server:
                gateways.append(_measure(server.url, script, seconds, connections,
                                         offered=(post, FIXED_RATE)))
    ratios = [g["rate"] / b["rate"] for b, g in zip(bare, gateways, strict=True)]
    ack_ratios = [a["rate"] / b["rate"] for b, a in zip(bare, ack_path, strict=True)]
    ratio = statistics.median(ratios)
    p99 = statistics.median(g["p99"] for g in gateways)
    return {
        "load": f"wrk -t2 -c{connections} -d{seconds}s, one signed {len(post.body)}-byte body",
        "rounds (bare, ack path alone, gateway, each)": rounds,
        "bare aiohttp 200: requests/s, median (min-max)": _spread(bare, "rate"),
        "bare aiohttp 200: p50 / p90 / p99 ms, medians": _latencies(bare),
        "ack path alone: requests/s, median (min-max)": _spread(ack_path, "rate"),
        "ack path alone: p50 / p90 / p99 ms, medians": _latencies(ack_path),
        "ack path alone / bare rate, median of rounds":
            f"{statistics.median(ack_ratios):.2f}",
        "gateway POST /webhook: requests/s, median (min-max)": _spread(gateways, "rate"),
        "gateway POST /webhook: p50 / p90 / p99 ms, medians": _latencies(gateways),
        f"gateway at a fixed {FIXED_RATE:,.0f} requests/s (open loop): p50 / p99 ms, medians":
            " / ".join(f"{statistics.median(g[f'fixed_{p}'] for g in gateways):.2f}"
                       for p in ("p50", "p99")),
        "gateway non-200 answers": int(sum(g["errors"] + g.get("fixed_errors", 0)
                                           for g in gateways)),
        "gateway rate / bare rate, median of rounds (min-max)":
            f"{ratio:.2f} ({min(ratios):.2f}-{max(ratios):.2f})",
        "aim: >= 0.75 of bare and p99 <= 10 ms":
            "met" if ratio >= 0.75 and p99 <= 10 else "not met",
        f"budget (docs/DESIGN.md): p99 <= 20 ms at {FIXED_RATE:,.0f} requests/s":
            "met" if statistics.median(g["fixed_p99"] for g in gateways) <= 20 else "not met",
    }


def _spread(runs: list[dict[str, float]], key: str) -> str:
    values = [run[key] for run in runs]
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def _latencies(runs: list[dict[str, float]]) -> str:
    return " / ".join(f"{statistics.median(run[p] for run in runs):.2f}"
                      for p in ("p50", "p90", "p99"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_ingest")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print_section(sys.modules[__name__], run(args.seconds, args.connections, args.rounds))


if __name__ == "__main__":
    main()
