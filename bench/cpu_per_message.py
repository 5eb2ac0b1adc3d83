"""CPU per message: the gateway's CPU time for each inbound text message it
acknowledges and processes, against a baseline commit measured in the same
run.

A gateway process (`run.py`, the shipped `config/lawhub.toml`: firm-a and
firm-b, three business numbers) receives N distinct signed text messages
(`bench/inbound_texts.py`: fresh wamids, Indonesian and English texts with
phones, emails and names, about 2,000 customers), posted over 16
connections, each POST sent when one of them is free (closed loop), as
fast as the gateway acknowledges. Two shapes: Meta's batches of 100
updates per POST, and one update per POST. The run ends when every
message is a row of the store's `messages` table (read from the bench
process, a read-only SQLite connection polled every 50 ms); then
`/admin/tree` gives the journal lag (where the gateway reports it), what
was quarantined and the actors' restarts, and the gateway's log is
searched for `actor crashed`.

*CPU* is the gateway's user + system time over the run, every thread of
its process and of its child processes (`utime + stime` of
`/proc/<pid>/stat`, 10 ms ticks; the child is the ingest process that
acknowledges webhooks when `[server] ingest = "process"`, and the table
gives its share), from the first POST (the gateway idle after starting)
until the last message is stored; it is split at the last acknowledgement
into *while posting* (acks and the processing that kept up meanwhile) and
*after* (draining the backlog). It is the figure to compare: wall-clock
rates on this noisy 2-core machine drift by tens of percent, and the load
generator (this process) competes for the same two cores. *Processed/s*
is N over the wall time of the run. A closed loop keeps the gateway busy,
so its journal, shards and store commit in batches as large as they get:
at a paced rate below capacity each message goes through alone and costs
more (the sustained load bench gives the CPU per message at fixed rates).

The baseline is the same `run.py` at commit `55cbcb6` (before issue 10's
work on the inbound path), run from a `git worktree` of it with the same
config, driver and messages, its runs interleaved with the current
code's: base, current, then current, base. When the worktree cannot be
made, only the current code is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.common import (
    CONFIG,
    REPO,
    Figures,
    admin_tree,
    cpu_seconds,
    gateway,
    process_tree,
    restarts,
    revision,
    settle,
)
from bench.inbound_texts import Webhook, webhooks
from bench.report import print_section

BASELINE = "55cbcb6"
"""The last commit before issue 10's work on the inbound path."""
MESSAGES = 20_000
SHAPES = (100, 1)
"""Updates per POST: Meta's batches, and one message per POST."""
CONNECTIONS = 16
DRAIN_TIMEOUT_S = 240.0


@dataclass(frozen=True, slots=True)
class Run:
    label: str
    per_post: int
    messages: int
    posted_s: float
    elapsed_s: float
    cpu_posting_s: float
    cpu_after_s: float
    cpu_children_s: float
    """Of both, what its child processes used (the ingest process, where there is one)."""
    stored_at_last_ack: int
    non_200: int
    lag_entries: int | None
    quarantined: int
    restarts: int
    crashes: int

    @property
    def cpu_s(self) -> float:
        return self.cpu_posting_s + self.cpu_after_s

    @property
    def ms_per_message(self) -> float:
        return self.cpu_s / self.messages * 1000


def stored(database: Path) -> int:
    """Inbound messages in the store, read from this process."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True,
                                                timeout=5)) as db:
            return int(db.execute("SELECT count(*) FROM messages WHERE direction = 'in'")
                       .fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


async def post_all(url: str, hooks: Sequence[Webhook], connections: int) -> int:
    """POST every webhook over ``connections`` connections (closed loop);
    the number of answers that were not 200."""
    queue = iter(hooks)
    failed = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal failed
            for hook in queue:
                async with session.post(f"{url}/webhook", data=hook.post.body,
                                        headers=hook.post.headers) as response:
                    await response.read()
                    failed += response.status != 200

        await asyncio.gather(*(worker() for _ in range(connections)))
    return failed


def measure(label: str, root: Path, hooks: Sequence[Webhook], per_post: int,
            connections: int = CONNECTIONS) -> Run:
    """One gateway (the code at ``root``), every webhook posted, every message stored."""
    total = sum(len(hook.wamids) for hook in hooks)
    with tempfile.TemporaryDirectory() as tmp:
        data, log = Path(tmp) / "var", Path(tmp) / "gateway.log"
        database = data / "lawhub.sqlite3"
        with gateway(data, CONFIG, root=root, log=log) as server:
            cpu0 = settle(server.pid)
            main0 = cpu_seconds(server.pid, tree=False)
            started = time.perf_counter()
            non_200 = asyncio.run(post_all(server.url, hooks, connections))
            cpu1 = cpu_seconds(server.pid)
            posted = time.perf_counter()
            at_last_ack = stored(database)
            deadline = posted + DRAIN_TIMEOUT_S
            while (count := stored(database)) < total:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{label}: {count:,} of {total:,} stored after "
                                       f"{DRAIN_TIMEOUT_S:.0f} s")
                time.sleep(0.05)
            cpu2 = cpu_seconds(server.pid)
            main2 = cpu_seconds(server.pid, tree=False)
            ended = time.perf_counter()
            tree = asyncio.run(admin_tree(server.url))
        text = log.read_text(errors="replace")
    inbound = tree.get("inbound")
    return Run(label, per_post, total, posted - started, ended - started, cpu1 - cpu0,
               cpu2 - cpu1, (cpu2 - cpu0) - (main2 - main0), at_last_ack, non_200,
               inbound["lag_entries"] if inbound else None,
               int(tree.get("counts", {}).get("quarantine", 0)), restarts(tree),
               text.count("actor crashed") + text.count("actor_crashed"))


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path | None]:
    """A detached worktree of ``revision`` in a temporary directory, removed
    on the way out; None when git cannot make one."""
    with tempfile.TemporaryDirectory(prefix="bench-base-") as tmp:
        path = Path(tmp) / "tree"
        made = subprocess.run(["git", "worktree", "add", "--detach", str(path), revision],
                              cwd=REPO, capture_output=True, check=False)
        if made.returncode != 0:
            yield None
            return
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO,
                           capture_output=True, check=False)


def run(count: int = MESSAGES, shapes: Sequence[int] = SHAPES, against: str | None = BASELINE,
        rounds: int = 2, connections: int = CONNECTIONS) -> Figures:
    bodies = {per_post: webhooks(count, per_post) for per_post in shapes}
    current = f"current ({revision()})"
    runs: list[Run] = []
    with worktree(against) if against else contextlib.nullcontext() as base:
        versions = [(current, REPO)]
        if base is not None:
            versions.insert(0, (f"baseline {against}", base))
        for per_post in shapes:
            for round_ in range(rounds):
                order = versions if round_ % 2 == 0 else versions[::-1]
                for label, root in order:
                    result = measure(label, root, bodies[per_post], per_post, connections)
                    line = dataclasses.asdict(result) | {"ms": round(result.ms_per_message, 3)}
                    print(json.dumps(line), file=sys.stderr, flush=True)
                    runs.append(result)
    customers = {c for hook in bodies[shapes[0]] for c in hook.customers}
    figures: Figures = {
        "messages per run (distinct texts and wamids)": count,
        "customers, business numbers": f"{len(customers):,}, 3",
        "runs per version and shape (interleaved)": rounds,
        "client": f"{connections} connections, closed loop",
    }
    for per_post in shapes:
        shape = f"{per_post} per POST"
        medians: dict[str, float] = {}
        for label, _ in versions:
            mine = [r for r in runs if r.label == label and r.per_post == per_post]
            ms = [r.ms_per_message for r in mine]
            medians[label] = statistics.median(ms)
            name = f"{shape}, {label}"
            figures[f"{name}: CPU ms per message, median (all runs)"] = (
                f"{statistics.median(ms):.3f} ({', '.join(f'{x:.3f}' for x in ms)})")
            figures[f"{name}: CPU ms per message while posting / after the last ack"] = (
                f"{statistics.median(r.cpu_posting_s / r.messages * 1000 for r in mine):.3f} / "
                f"{statistics.median(r.cpu_after_s / r.messages * 1000 for r in mine):.3f}")
            if any(r.cpu_children_s for r in mine):
                figures[f"{name}: of which in the ingest process, CPU ms per message"] = (
                    f"{statistics.median(r.cpu_children_s / r.messages * 1000 for r in mine):.3f}")
            figures[f"{name}: processed messages/s (POST start to last stored), median"] = round(
                statistics.median(r.messages / r.elapsed_s for r in mine))
            figures[f"{name}: acknowledged messages/s, median"] = round(
                statistics.median(r.messages / r.posted_s for r in mine))
            figures[f"{name}: stored when the last POST was answered, median"] = (
                f"{statistics.median(r.stored_at_last_ack / r.messages for r in mine):.0%}")
            figures[f"{name}: cores busy over the run, median"] = round(
                statistics.median(r.cpu_s / r.elapsed_s for r in mine), 2)
            figures[f"{name}: non-200 / quarantined / restarts / 'actor crashed' lines"] = (
                f"{sum(r.non_200 for r in mine)} / {sum(r.quarantined for r in mine)} / "
                f"{sum(r.restarts for r in mine)} / {sum(r.crashes for r in mine)}")
            lags = [r.lag_entries for r in mine if r.lag_entries is not None]
            if lags:
                figures[f"{name}: journal lag when all were stored (entries)"] = max(lags)
        if len(versions) == 2:
            ratio = medians[current] / medians[versions[0][0]]
            figures[f"{shape}: current / baseline, CPU per message"] = round(ratio, 2)
    return figures


# -- where the CPU goes (py-spy) ---------------------------------------------------------

AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sealing (AES-GCM, keys)", ("core/crypto.py", "cryptography/")),
    ("masking", ("core/masking/",)),
    ("classification (rules)", ("core/assist.py",)),
    ("logging", ("structlog/", "/logging/", "lawhub_actors/logs/")),
    ("parse + normalize", ("core/normalize/", "core/payload/", "core/events.py", "orjson",
                           "/json/")),
    ("feed publishing", ("web/feed.py", "lawhub_actors/bridge.py")),
    ("journal (append, writer, reads)", ("adapters/sqlite_journal.py",)),
    ("store transaction", ("adapters/sqlite_store.py", "adapters/store_tx.py",
                           "adapters/store_rows.py", "adapters/sqlite_common.py")),
    ("ack path (webhook handler, HMAC)", ("web/webhook.py", "core/signature.py", "/hmac.py")),
    ("dispatcher bookkeeping (window, left behind, dedupe)",
     ("actors/dispatcher.py", "core/flow.py", "adapters/dedupe.py")),
    ("session shard (other)", ("actors/sessions.py", "lawhub_actors/auto_replies.py",
                               "core/consent.py")),
    ("thread hand-offs, mailboxes, locks", ("/threading.py", "/queue.py", "supervisors/",
                                            "pykka/", "concurrent/futures")),
    ("event loop, aiohttp", ("asyncio/", "aiohttp/", "selectors.py", "multidict", "yarl")),
)
"""Areas a sample is counted in: the first one, looking from the innermost
frame outwards, with a frame in one of its files; but everything under the
dispatcher's ``_come_back`` (its journal reads, parses and dedupe lookups
too) is counted as that."""


COME_BACK = "Dispatcher._come_back"
COME_BACK_AREA = "dispatcher: passed-over conversations read again (_come_back, any callee)"


def area(frames: Sequence[str]) -> str:
    if any(frame.startswith(COME_BACK + " ") for frame in frames):
        return COME_BACK_AREA
    for frame in reversed(frames):
        for name, files in AREAS:
            if any(f in frame for f in files):
                return name
    return "other"


def summarize(raw: str, top: int = 25) -> tuple[dict[str, float], list[tuple[str, float]], int]:
    """py-spy's raw (collapsed) stacks: each area's share of the samples, the
    functions with the largest inclusive shares (under the actor and thread
    entry points), and the number of samples."""
    areas: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue  # a stack py-spy read torn (it samples without stopping the process)
        count = int(n)
        frames = stack.split(";")
        total += count
        areas[area(frames)] += count
        for frame in {f.split(" (")[0] for f in frames}:
            inclusive[frame] += count
    entry = {"Thread._bootstrap", "Thread._bootstrap_inner", "Thread.run", "Actor._actor_loop",
             "Cell._actor_loop_running", "Cell._deliver", "<module>", "main", "_serve", "serve",
             "run", "Runner.run", "BaseEventLoop.run_forever", "BaseEventLoop.run_until_complete",
             "BaseEventLoop._run_once", "Handle._run"}
    shares = {name: count / total for name, count in areas.most_common()}
    functions = [(f, c / total) for f, c in inclusive.most_common() if f not in entry][:top]
    return shares, functions, total


def profile(root: Path, count: int, per_post: int, out: Path, rate: int = 200,
            connections: int = CONNECTIONS) -> None:
    """Run one gateway as :func:`measure` does, with ``py-spy record --gil``
    sampling each of its processes (the gateway and its ingest process, if
    any) from the first POST until the last message is stored, and print
    where the time with the GIL went in each, in ms per message (raw stacks
    kept in ``out``, and ``out`` + ``.<pid>`` for a child)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    hooks = webhooks(count, per_post)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "var"
        with gateway(data, CONFIG, root=root, log=Path(tmp) / "gateway.log") as server:
            cpu0 = settle(server.pid)
            main0 = cpu_seconds(server.pid, tree=False)
            outputs = {pid: out if pid == server.pid else out.with_name(f"{out.name}.{pid}")
                       for pid in process_tree(server.pid)}
            samplers = [subprocess.Popen(
                [spy, "record", "--pid", str(pid), "--format", "raw", "--gil", "--nonblocking",
                 "--rate", str(rate), "-o", str(path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for pid, path in outputs.items()]
            time.sleep(1.0)  # attached
            started = time.perf_counter()
            asyncio.run(post_all(server.url, hooks, connections))
            while stored(data / "lawhub.sqlite3") < count:
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(server.pid) - cpu0
            main = cpu_seconds(server.pid, tree=False) - main0
            for sampler in samplers:
                sampler.send_signal(signal.SIGINT)
            for sampler in samplers:
                sampler.wait(60)
    print(f"{count:,} messages, {per_post} per POST, code at {root}: {elapsed:.1f} s, "
          f"CPU {cpu:.2f} s ({cpu / count * 1000:.3f} ms per message; the gateway's process "
          f"{main / count * 1000:.3f}, its children {(cpu - main) / count * 1000:.3f}); "
          f"py-spy sampled {rate}/s, only while a thread held the GIL\n")
    for pid, path in outputs.items():
        shares, functions, samples = summarize(path.read_text())
        held = samples / rate
        each = held / count * 1000
        print(f"### {'the gateway process' if path == out else f'child process {pid}'}: "
              f"GIL held about {held:.1f} s, {each:.3f} ms per message\n")
        print("| area (innermost frame that names one) | share | ms per message |\n"
              "| --- | --- | --- |")
        for name, share in shares.items():
            print(f"| {name} | {share:.1%} | {share * each:.3f} |")
        print("\n| function (inclusive) | share | ms per message |\n| --- | --- | --- |")
        for name, share in functions:
            print(f"| {name} | {share:.1%} | {share * each:.3f} |")
        print()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_per_message")
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--per-post", type=int, action="append",
                        help=f"updates per POST (repeatable); default {SHAPES}")
    parser.add_argument("--against", default=BASELINE,
                        help="git revision to compare with ('' for none); default %(default)s")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--profile", type=Path, metavar="RAW",
                        help="instead: one run of the current code (or --root) sampled with "
                             "py-spy (raw stacks written to RAW), and where its time goes")
    parser.add_argument("--root", type=Path, default=REPO,
                        help="with --profile: the checkout whose code runs")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.root, args.messages, (args.per_post or [SHAPES[0]])[0], args.profile,
                connections=args.connections)
        return
    print_section(sys.modules[__name__], run(args.messages, tuple(args.per_post or SHAPES),
                                             args.against or None, args.rounds,
                                             args.connections))


if __name__ == "__main__":
    main()
