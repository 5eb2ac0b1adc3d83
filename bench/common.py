"""Helpers shared by the benches: figures, percentiles, RSS, quiet logs, the
servers a bench starts as processes (a ``run.py`` gateway among them), and an
open-loop load of webhook POSTs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp

from lawhub_actors.simulator import traffic

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-app-secret"
"""``LAWHUB_APP_SECRET`` of every gateway a bench starts: its webhooks are signed with it."""
ADMIN_TOKEN = "bench-admin"
"""``LAWHUB_ADMIN_TOKEN`` of every gateway a bench starts."""
CONFIG = REPO / "config" / "lawhub.toml"
"""The shipped config: firm-a and firm-b, three business numbers."""
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


GENERATOR_NICE = -10


@contextlib.contextmanager
def generator_first() -> Iterator[str]:
    """Run this process's main thread (a load generator's event loop) at
    :data:`GENERATOR_NICE` where allowed (CAP_SYS_NICE), the servers it starts at 0.

    The load stands in for Meta's servers, which are on other machines; here
    it shares two cores with the server it loads, and a generator the
    scheduler holds back sends late, which an open loop counts as the
    server's latency (a bare aiohttp handler's ack p99 at 3,000/s went from
    ~20 ms to ~175 ms that way). Yields what it did, for the report; puts the
    priority back on the way out."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, GENERATOR_NICE)
    except OSError:
        yield f"load generator and servers at nice {before} (raising it is not allowed)"
        return
    try:
        yield (f"load generator at nice {GENERATOR_NICE}, servers at 0"
               " (a gateway's ack process at its [server] ingest_nice)")
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)


def _at_nice_0(command: Sequence[str]) -> list[str]:
    """``command`` run at nice 0 when this thread runs ahead of it
    (:func:`generator_first`; ``nice`` execs it: the process's id is the
    command's); as this thread otherwise (lowering is all one may do)."""
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    return ["nice", "-n", str(-mine), *command] if mine < 0 else list(command)


@contextlib.contextmanager
def serve(command: Sequence[str], env: Mapping[str, str], *, cwd: Path = REPO,
          log: Path | None = None) -> Iterator[Server]:
    """``command`` with a free loopback port appended as its last argument, run
    from ``cwd`` (the repository's root by default) with its output dropped, or
    written to ``log``; yields once something listens on that port, and
    terminates (and reaps) it on the way out."""
    port = free_port()
    with contextlib.ExitStack() as files:
        output: int | IO[bytes] = subprocess.DEVNULL
        if log is not None:
            output = files.enter_context(log.open("ab"))
        process = subprocess.Popen([*_at_nice_0(command), str(port)], cwd=cwd, env=dict(env),
                                   stdout=output, stderr=subprocess.STDOUT if log else output)
        try:
            _wait_listening(port, process)
            yield Server(f"http://127.0.0.1:{port}", process.pid)
        finally:
            process.terminate()
            process.wait(STOP_TIMEOUT_S)


def gateway(data_dir: Path, config: Path | None = None, *, root: Path = REPO,
            log: Path | None = None, **env: str) -> contextlib.AbstractContextManager[Server]:
    """A ``python run.py`` gateway (see :func:`serve`) serving ``config`` (by
    default, what ``run.py`` reads without ``--config``) with its data under
    ``data_dir``, webhooks signed with :data:`SECRET` and the admin token
    :data:`ADMIN_TOKEN`; ``env`` adds to this process's environment.

    ``root`` is the checkout whose code runs (another commit's worktree, to
    measure a baseline: it runs from there with ``PYTHONPATH`` on it, ahead of
    the editable install); ``log`` keeps its output (stdout and stderr)."""
    command = [sys.executable, "run.py", *(["--config", str(config)] if config else []), "--port"]
    extra = {} if root == REPO else {"PYTHONPATH": str(root)}
    return serve(command, {**os.environ, "LAWHUB_APP_SECRET": SECRET,
                           "LAWHUB_DATA_DIR": str(data_dir), "LAWHUB_ADMIN_TOKEN": ADMIN_TOKEN,
                           **extra, **env}, cwd=root, log=log)


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int, *, tree: bool = True) -> tuple[float, float]:
    """User and system CPU time of process ``pid`` so far, every thread's
    (``utime`` and ``stime`` of ``/proc/<pid>/stat``), in seconds (to the
    clock tick, 10 ms); with ``tree``, its child processes' too, the live ones
    (a gateway's ingest process) and those it has reaped (``cutime`` and
    ``cstime``)."""
    user = system = 0.0
    for one in process_tree(pid) if tree else [pid]:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile: its parent's cutime has it once reaped
            continue
        # fields 14-17 of stat(5): utime, stime, cutime, cstime
        user += (int(fields[11]) + (int(fields[13]) if tree else 0)) / _TICKS
        system += (int(fields[12]) + (int(fields[14]) if tree else 0)) / _TICKS
    return user, system


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``/proc/<pid>/task/*/children``)."""
    found, i = [pid], 0
    while i < len(found):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{found[i]}/task").iterdir():
                with contextlib.suppress(OSError):
                    found.extend(int(child) for child in (task / "children").read_text().split())
        i += 1
    return found


def cpu_seconds(pid: int, *, tree: bool = True) -> float:
    """User + system CPU time of process ``pid`` so far (:func:`cpu_times`)."""
    return sum(cpu_times(pid, tree=tree))


def settle(pid: int, quiet_s: float = 0.5, timeout_s: float = 10.0,
           idle_cores: float = 0.05) -> float:
    """Wait until process ``pid`` (and its children) used at most
    ``idle_cores`` of CPU over ``quiet_s`` (done starting up; an idle gateway
    still polls a little), at most ``timeout_s``; returns its CPU seconds then."""
    deadline = time.monotonic() + timeout_s
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = cpu_seconds(pid)
        if now - last <= idle_cores * quiet_s:
            return now
        last = now
    return last


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


def revision() -> str:
    """The commit checked out (short), and whether the code measured differs from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                          capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                            "lawhub_actors", "supervisors"], cwd=REPO, capture_output=True,
                           text=True, check=False).stdout.strip()
    return f"{head}{' + uncommitted changes' if dirty else ''}"


async def admin_tree(url: str) -> dict[str, Any]:
    """``GET /admin/tree`` of a gateway a bench started (:data:`ADMIN_TOKEN`)."""
    async with aiohttp.ClientSession() as session, session.get(
            f"{url}/admin/tree", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as response:
        return dict(await response.json())


def restarts(node: dict[str, Any]) -> int:
    """Restarts of every actor in an ``/admin/tree`` snapshot."""
    return int(node["restarts"]["total"]) + sum(restarts(c) for c in node["children"])


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
    sent: float = 0.0
    """When the load generator got to sending it (``time.perf_counter()``): later
    than ``at`` when the generator itself fell behind its schedule."""


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
            sent = time.perf_counter()
            try:
                async with session.post(url, data=post.body, headers=post.headers) as response:
                    await response.read()
                    status = response.status
            except aiohttp.ClientError:
                status = 0
            return Answer(at, time.perf_counter() - at, status, queued, sent)

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


async def lean_open_loop(url: str, posts: Sequence[traffic.SignedPost], rate: float, *,
                         connections: int = 256) -> list[Answer]:
    """:func:`open_loop` without chains, with a lean HTTP/1.1 client: each
    request's bytes are made before the clock starts, and sent on a kept-alive
    connection of a pool of at most ``connections`` (a new one while all are
    busy) with asyncio's streams, so the load generator costs a fraction of
    aiohttp's client per POST and falls behind its schedule later, when it
    shares the machine's cores with the server it loads. Answers must carry a
    ``Content-Length`` (aiohttp's do)."""
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    requests = [
        (f"POST {parsed.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
         + "".join(f"{name}: {value}\r\n" for name, value in post.headers.items())
         + f"Content-Length: {len(post.body)}\r\n\r\n").encode() + post.body
        for post in posts
    ]
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened: list[asyncio.StreamWriter] = []
    gate = asyncio.Semaphore(connections)

    async def one(at: float, request: bytes) -> Answer:
        sent = time.perf_counter()  # waiting for a connection is the server's latency
        async with gate:
            if idle:
                reader, writer = idle.pop()
            else:
                try:
                    reader, writer = await asyncio.open_connection(host, port)
                except OSError:
                    return Answer(at, time.perf_counter() - at, 0, False, sent)
                opened.append(writer)
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                writer.close()
                return Answer(at, time.perf_counter() - at, 0, False, sent)
            idle.append((reader, writer))
            return Answer(at, time.perf_counter() - at, status, False, sent)

    # Its heap holds every request and answer: a full collection in the middle
    # of the load (~100 ms) would hold back sends and reads, counted as the
    # server's latency. Nothing the load makes is cyclic.
    gc.collect()
    gc.freeze()
    gc.disable()
    start = time.perf_counter()
    tasks = []
    for i, request in enumerate(requests):
        at = start + i / rate
        if (delay := at - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(at, request)))
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        gc.enable()
        gc.unfreeze()
        for writer in opened:
            writer.close()
