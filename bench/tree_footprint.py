"""Threads and memory of a tree for 100 tenants x 4 shards, and the time
to start and to stop it.

The root holds one supervisor per tenant; each tenant supervisor holds a
consistent-hash pool of 4 shards. Every actor is a thread (the tenant
supervisor, the pool supervisor and each shard), so the thread count is
set by the tree's shape; the tree adds one timer thread. Threads are
counted with ``threading.active_count()``, memory is the growth of VmRSS
(``/proc/self/status``) after a garbage collection. Before stopping, one
ask per tenant checks that every pool routes. After ``stop()`` returns the
thread count must be back to its baseline: a difference is a leak.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import supervisors
from bench.common import Figures, proc_kib
from bench.report import print_section
from supervisors import ChildSpec, Routing, SupervisorFlags

SHARDS = "shards"
ASK_TIMEOUT_S = 5.0


class Shard(supervisors.Actor):
    """Answers with its own path, so the bench sees which shard handled a key."""

    def receive(self, message: Any) -> str:
        return self.context.path


def tenant_spec(tenant: int, shards: int) -> ChildSpec:
    pool = supervisors.pool_spec(SHARDS, ChildSpec("shard", Shard), shards, routing=Routing.HASH)
    return supervisors.supervisor_spec(f"tenant-{tenant:03d}", SupervisorFlags(), [pool])


def rss_kib() -> int:
    gc.collect()
    return proc_kib("/proc/self/status", "VmRSS")


def run(tenants: int = 100, shards: int = 4) -> Figures:
    root = supervisors.supervisor_spec(
        "root", SupervisorFlags(), [tenant_spec(t, shards) for t in range(tenants)]
    )
    threads_before, rss_before = threading.active_count(), rss_kib()

    started = time.perf_counter()
    tree = supervisors.Tree(root).start()
    try:
        start_s = time.perf_counter() - started
        threads_running, rss_running = threading.active_count(), rss_kib()
        actors = len(tree.snapshot().walk())
        for tenant in range(tenants):
            path = f"tenant-{tenant:03d}/{SHARDS}"
            answer = tree.ask(path, "which", key=f"conversation-{tenant}", timeout=ASK_TIMEOUT_S)
            if not answer.startswith(path + "/"):
                raise AssertionError(f"{path}: answered by {answer}")
    finally:
        stopping = time.perf_counter()
        tree.stop()
        stop_s = time.perf_counter() - stopping
    threads_after, rss_after = threading.active_count(), rss_kib()

    added = threads_running - threads_before
    leaked = threads_after - threads_before
    if leaked:
        names = sorted(t.name for t in threading.enumerate())
        print(f"tree_footprint: {leaked} thread(s) left after stop(): {names}", file=sys.stderr)
    rss_growth = rss_running - rss_before
    return {
        "tenants x shards": f"{tenants} x {shards}",
        "actors in the snapshot (root + per tenant: supervisor, pool, shards)": actors,
        "threads before start": threads_before,
        "threads added by the running tree": added,
        "threads added per tenant": round(added / tenants, 2),
        "RSS growth while running, MiB": round(rss_growth / 1024, 2),
        "RSS growth per thread added, KiB": round(rss_growth / added, 1),
        "start time, s": round(start_s, 3),
        "stop time, s": round(stop_s, 3),
        "threads left after stop (0 = back to baseline)": leaked,
        "RSS after stop, above baseline, MiB": round((rss_after - rss_before) / 1024, 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tree_footprint")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args(argv)
    print_section(sys.modules[__name__], run(args.tenants, args.shards))


if __name__ == "__main__":
    main()
