"""``python -m bench``: run every bench in turn, print its figures, and
rewrite ``BENCHMARKS.md`` at the top of the repository.

``python -m bench NAME ...`` (module names, e.g. ``live_reload``) runs only
those benches and rewrites only their sections, keeping the others (and the
machine table of the last full run) as they are; each rewritten section says
so, with the load average at its start."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    core_cost,
    cpu_per_message,
    end_to_end,
    failover,
    ingest_processes,
    live_reload,
    media_pool,
    media_storage,
    nodes,
    outbound_cluster,
    outbound_rate,
    pg_driver,
    restart_latency,
    router_throughput,
    sustained_load,
    tree_footprint,
    webhook_ingest,
)
from bench.report import (
    FULL_RUN,
    Section,
    document,
    machine,
    module_name,
    print_section,
    replace_sections,
)

BENCHES = (
    router_throughput, restart_latency, tree_footprint, webhook_ingest, end_to_end, media_pool,
    outbound_rate, live_reload, core_cost, cpu_per_message, sustained_load, pg_driver, nodes,
    failover, ingest_processes, outbound_cluster, media_storage,
)
OUTPUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def main(argv: Sequence[str] | None = None) -> None:
    names = {module_name(bench).rpartition(".")[2]: bench for bench in BENCHES}
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("benches", nargs="*", metavar="NAME",
                        help=f"run only these ({', '.join(names)}) and rewrite only their "
                             "sections of BENCHMARKS.md; default: every bench, the whole file")
    args = parser.parse_args(argv)
    if unknown := [name for name in args.benches if name not in names]:
        parser.error(f"no such bench: {', '.join(unknown)}")
    chosen = [names[name] for name in dict.fromkeys(args.benches)]
    started = datetime.now(UTC)
    host = machine()
    command = FULL_RUN
    if chosen:
        command = (f"`.venv/bin/python -m bench {' '.join(args.benches)}`, which rewrote only "
                   f"this section ({host['CPU']}, {host['os.cpu_count()']} CPUs; load average "
                   f"(1, 5, 15 min) at its start: {host['load average (1, 5, 15 min) at start']})")
    sections: list[Section] = []
    for bench in chosen or BENCHES:
        measured_at = datetime.now(UTC)
        began = time.perf_counter()
        figures = bench.run()
        sections.append(Section(bench, figures, measured_at, time.perf_counter() - began,
                                command))
        print_section(bench, figures)
    if chosen:
        OUTPUT.write_text(replace_sections(OUTPUT.read_text(), sections, BENCHES))
    else:
        OUTPUT.write_text(document(sections, started, host))
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
