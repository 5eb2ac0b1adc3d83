"""20,000 connections that send nothing do not keep Meta's webhooks out."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from lawhub_actors.core.signature import sign
from tests import payloads
from tests.conftest import APP_SECRET
from tests.e2e.outbound_helpers import Gateways, gateways  # noqa: F401 - fixture

IDLE = 20_000
HOLDERS = 2  # each its own process: one process's descriptors may not reach 20,000
WEBHOOK_DEADLINE_S = 1.0

HOLDER = """
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held, failed = [], 0
for _ in range(count):
    sock = socket.socket()
    try:
        sock.connect((host, port))  # and never a byte
        held.append(sock)
    except OSError:
        failed += 1
        sock.close()
print(len(held), failed, flush=True)
sys.stdin.read()  # held until the test closes our stdin
"""


def _webhook(url: str, n: int) -> tuple[int, float]:
    body = payloads.raw("text").replace(b"wamid.", f"wamid.flood{n}.".encode(), 1)
    request = urllib.request.Request(f"{url}/webhook", data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(APP_SECRET.encode(), body)})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, time.monotonic() - started


def test_webhooks_keep_getting_200_within_1s_while_20000_idle_connections_are_open(
        tmp_path: Path, gateways: Gateways) -> None:  # noqa: F811
    gateway = gateways.start(tmp_path / "var")
    parts = urllib.parse.urlsplit(gateway.url)
    holders = [subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(parts.hostname), str(parts.port),
         str(IDLE // HOLDERS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(HOLDERS)]
    answers: list[tuple[int, float]] = []
    try:
        while any(holder.poll() is None and not _reported(holder) for holder in holders):
            answers.append(_webhook(gateway.url, len(answers)))
            time.sleep(0.05)
        for _ in range(40):  # and on, while they hold what they opened
            answers.append(_webhook(gateway.url, len(answers)))
            time.sleep(0.05)
        opened = [holder.stdout.readline().split() for holder in holders]  # type: ignore[union-attr]
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    assert sum(int(held) for held, _ in opened) == IDLE  # every one was accepted
    assert {status for status, _ in answers} == {200}
    slowest = max(seconds for _, seconds in answers)
    assert slowest < WEBHOOK_DEADLINE_S, f"slowest webhook {slowest:.2f} s"
    events = gateway.log_events()
    assert any(e.get("event") == "connections_shed" for e in events)
    assert len(events) < 300, "a flood of connections must not be a flood of lines"


def _reported(holder: subprocess.Popen[str]) -> bool:
    """Whether the holder is done opening (it printed its count)."""
    import select

    assert holder.stdout is not None
    readable, _, _ = select.select([holder.stdout], [], [], 0)
    return bool(readable)
