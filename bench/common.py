"""Helpers shared by the benches: figures, percentiles, RSS, quiet logs, the
servers a bench starts as processes (a ``run.py`` gateway among them), and an
open-loop load of webhook POSTs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from lawhub_actors.simulator import traffic

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-app-secret"
"""``LAWHUB_APP_SECRET`` of every gateway a bench starts: its webhooks are signed with it."""
ADMIN_TOKEN = "bench-admin"
"""``LAWHUB_ADMIN_TOKEN`` of every gateway a bench starts."""
LISTEN_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0

Figure = int | float | str
Figures = dict[str, Figure]
"""What a bench returns: a label (with its unit) to a measured value."""


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``fraction``
    of the values at or below it (p99 of 500 samples is the 495th)."""
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]


def spread(values: Sequence[float], digits: int = 0) -> str:
    """``min-max`` of repeated measurements, to show how noisy they were."""
    return f"{min(values):,.{digits}f}-{max(values):,.{digits}f}"


def proc_kib(path: str, field: str) -> int:
    """A ``kB`` field of a ``/proc`` file, e.g. ``VmRSS`` of ``/proc/self/status``."""
    for line in Path(path).read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    raise KeyError(field)


@contextlib.contextmanager
def quiet_runtime_logs() -> Iterator[None]:
    """Keep the runtime's crash and dead-letter logs off stderr while a bench
    crashes actors on purpose. Log records are still created (that cost is
    part of a crash); only their formatting and output are skipped."""
    logger = logging.getLogger("supervisors")
    handler = logging.NullHandler()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


# -- servers as processes ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Server:
    """A server process a bench started: its base URL and its pid."""

    url: str
    pid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(command: Sequence[str], env: Mapping[str, str]) -> Iterator[Server]:
    """``command`` with a free loopback port appended as its last argument, run
    from the repository's root with its output dropped; yields once something
    listens on that port, and terminates (and reaps) it on the way out."""
    port = free_port()
    process = subprocess.Popen([*command, str(port)], cwd=REPO, env=dict(env),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, process)
        yield Server(f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        process.wait(STOP_TIMEOUT_S)


def gateway(data_dir: Path, config: Path | None = None,
            **env: str) -> contextlib.AbstractContextManager[Server]:
    """A ``python run.py`` gateway (see :func:`serve`) serving ``config`` (by
    default, what ``run.py`` reads without ``--config``) with its data under
    ``data_dir``, webhooks signed with :data:`SECRET` and the admin token
    :data:`ADMIN_TOKEN`; ``env`` adds to this process's environment."""
    command = [sys.executable, "run.py", *(["--config", str(config)] if config else []), "--port"]
    return serve(command, {**os.environ, "LAWHUB_APP_SECRET": SECRET,
                           "LAWHUB_DATA_DIR": str(data_dir), "LAWHUB_ADMIN_TOKEN": ADMIN_TOKEN,
                           **env})


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + LISTEN_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("server did not listen in time")


# -- load -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """One POST of an open-loop load."""

    at: float
    """When it was scheduled to start (``time.perf_counter()``)."""
    latency_s: float
    """From ``at`` to its answer read (to the failure, when the connection failed)."""
    status: int
    """Its HTTP status; 0 when the connection failed."""
    queued: bool
    """It waited past ``at`` for the answer to the post before it in its chain."""


async def open_loop(url: str, posts: Sequence[traffic.SignedPost], rate: float, *,
                    chains: Sequence[Hashable] | None = None,
                    connections: int = 512) -> list[Answer]:
    """Open loop: POST each of ``posts`` to ``url``, the i-th scheduled i / ``rate``
    seconds after the start whatever the answers do, and each latency counts
    from its scheduled start (no coordinated omission). With ``chains`` (a key
    per post), posts with the same key go one at a time, in order: a post still
    starts no earlier than its schedule, and no earlier than the answer to the
    previous post of its chain (its latency still counts from its schedule).
    The answers come in the order of ``posts``."""
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(at: float, previous: asyncio.Task[Answer] | None,
                      post: traffic.SignedPost) -> Answer:
            queued = previous is not None and not previous.done()
            if previous is not None:
                await previous
            try:
                async with session.post(url, data=post.body, headers=post.headers) as response:
                    await response.read()
                    status = response.status
            except aiohttp.ClientError:
                status = 0
            return Answer(at, time.perf_counter() - at, status, queued)

        start = time.perf_counter()
        last: dict[Hashable, asyncio.Task[Answer]] = {}
        tasks = []
        for i, post in enumerate(posts):
            at = start + i / rate
            if (delay := at - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            previous = last.get(chains[i]) if chains is not None else None
            task = asyncio.create_task(one(at, previous, post))
            tasks.append(task)
            if chains is not None:
                last[chains[i]] = task
        return list(await asyncio.gather(*tasks))
