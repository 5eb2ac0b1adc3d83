"""``python -m bench``: run every bench in turn, print its figures, and
rewrite ``BENCHMARKS.md`` at the top of the repository."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    end_to_end,
    media_pool,
    outbound_rate,
    restart_latency,
    router_throughput,
    tree_footprint,
    webhook_ingest,
)
from bench.report import Section, document, machine, print_section

BENCHES = (
    router_throughput, restart_latency, tree_footprint, webhook_ingest, end_to_end, media_pool,
    outbound_rate,
)
OUTPUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def main() -> None:
    started = datetime.now(UTC)
    host = machine()
    sections: list[Section] = []
    for bench in BENCHES:
        measured_at = datetime.now(UTC)
        began = time.perf_counter()
        figures = bench.run()
        sections.append(Section(bench, figures, measured_at, time.perf_counter() - began))
        print_section(bench, figures)
    OUTPUT.write_text(document(sections, started, host))
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
