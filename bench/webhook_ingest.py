"""Webhook ingest: acknowledged POSTs per second and ack latency.

The gateway's ``POST /webhook`` (signature check, JSON check, durable
group-committed journal) against a bare aiohttp handler that only answers
200, measured in the same run with the same load generator: ``wrk`` with a
Lua script posting one signed ~1.5 KB body over 50 connections. Both
servers run as separate processes on loopback; the ratio of the two rates
is the figure to compare across machines. The aim written in the issue: at
least 75 % of the bare rate, and p99 at most 10 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import print_section
from lawhub_actors.simulator import traffic

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-app-secret"
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


def _body() -> traffic.SignedPost:
    text = "Selamat siang Pak, saya ingin berkonsultasi mengenai sengketa tanah warisan. " * 12
    change = traffic.text_message(NUMBER, "6281234500001", text[:1300])
    return traffic.signed(traffic.envelope(change), SECRET.encode())


def _lua(post: traffic.SignedPost) -> str:
    headers = "".join(
        f'wrk.headers["{name}"] = {json.dumps(value)}\n' for name, value in post.headers.items()
    )
    return f'wrk.method = "POST"\nwrk.body = {json.dumps(post.body.decode())}\n{headers}'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("server did not listen in time")


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


def _measure(command: list[str], env: dict[str, str], port: int, script: Path,
             seconds: int, connections: int) -> dict[str, float]:
    process = subprocess.Popen(command, cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, process)
        _wrk(f"http://127.0.0.1:{port}/webhook", script, 2, connections)  # warm-up
        return _wrk(f"http://127.0.0.1:{port}/webhook", script, seconds, connections)
    finally:
        process.terminate()
        process.wait(30)


def run(seconds: int = 8, connections: int = 50) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it")
    post = _body()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(_lua(post))
        port = _free_port()
        bare = _measure([sys.executable, "-c", BARE_SERVER, str(port)], dict(os.environ),
                        port, script, seconds, connections)
        port = _free_port()
        env = {**os.environ, "LAWHUB_APP_SECRET": SECRET, "LAWHUB_DATA_DIR": str(Path(tmp) / "var"),
               "LAWHUB_ADMIN_TOKEN": "bench-admin", "LAWHUB_VERIFY_TOKEN": "bench"}
        gateway = _measure([sys.executable, "run.py", "--port", str(port)], env,
                           port, script, seconds, connections)
    ratio = gateway["rate"] / bare["rate"]
    return {
        "load": f"wrk -t2 -c{connections} -d{seconds}s, one signed {len(post.body)}-byte body",
        "bare aiohttp 200: requests/s": round(bare["rate"]),
        "bare aiohttp 200: p50 / p90 / p99 ms": _latencies(bare),
        "gateway POST /webhook: requests/s": round(gateway["rate"]),
        "gateway POST /webhook: p50 / p90 / p99 ms": _latencies(gateway),
        "gateway non-200 answers": int(gateway["errors"]),
        "gateway rate / bare rate": f"{ratio:.2f}",
        "aim: >= 0.75 of bare and p99 <= 10 ms":
            "met" if ratio >= 0.75 and gateway["p99"] <= 10 else "not met",
    }


def _latencies(figures: dict[str, float]) -> str:
    return f"{figures['p50']:.2f} / {figures['p90']:.2f} / {figures['p99']:.2f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_ingest")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args(argv)
    print_section(sys.modules[__name__], run(args.seconds, args.connections))


if __name__ == "__main__":
    main()
