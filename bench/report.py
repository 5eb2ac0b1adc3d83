"""Figures as markdown: one section per bench, and ``BENCHMARKS.md`` as a whole.

A section's title comes from its module's name and its description is the
module's docstring, so what a bench measures, and how, is written once,
next to the code that measures it.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType

from bench.common import Figure, Figures, proc_kib

NOTE = (
    "> Figures here are **measured, not asserted**: nothing fails when they move.\n"
    "> They come from a noisy 2-core machine shared with other work, so absolute\n"
    "> rates drift by tens of percent between runs. Compare **ratios against the\n"
    "> same-run baseline** (raw pykka, measured in the same process, interleaved\n"
    "> with the runtime's variants), not absolute figures across runs or machines."
)


FULL_RUN = "`make bench` (`.venv/bin/python -m bench`)"


@dataclass(frozen=True, slots=True)
class Section:
    module: ModuleType
    figures: Figures
    measured_at: datetime
    duration_s: float
    command: str = FULL_RUN
    """What measured it, as written in its section."""


def module_name(module: ModuleType) -> str:
    """``bench.router_throughput``, also when the module runs as ``__main__``."""
    spec = module.__spec__
    return spec.name if spec is not None else module.__name__


def title(module: ModuleType) -> str:
    return module_name(module).rpartition(".")[2].replace("_", " ").capitalize()


def description(module: ModuleType) -> str:
    """The module's docstring, its reST literals turned into markdown code."""
    return (module.__doc__ or "").strip().replace("``", "`")


def table(figures: Figures, header: str = "Figure") -> str:
    rows = [f"| {label} | {_format(value)} |" for label, value in figures.items()]
    return "\n".join([f"| {header} | Value |", "| --- | --- |", *rows])


def section(entry: Section) -> str:
    name = module_name(entry.module)
    return "\n\n".join([
        f"## {title(entry.module)}",
        description(entry.module),
        f"Measured {entry.measured_at:%Y-%m-%d %H:%M:%S %Z} in {entry.duration_s:.1f} s by "
        f"{entry.command}; alone: `.venv/bin/python -m {name}`.",
        table(entry.figures),
    ])


def machine() -> Figures:
    return {
        "platform": platform.platform(),
        "CPU": _cpu_model(),
        "os.cpu_count()": os.cpu_count() or 0,
        "load average (1, 5, 15 min) at start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "memory (MemTotal)": f"{proc_kib('/proc/meminfo', 'MemTotal') / 1024**2:.1f} GiB",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "pykka": importlib.metadata.version("pykka"),
    }


def document(sections: list[Section], started: datetime, host: Figures) -> str:
    parts = [
        "# Benchmarks",
        NOTE,
        f"Written by {FULL_RUN} on "
        f"{started:%Y-%m-%d %H:%M %Z}; that command rewrites this file "
        "(`.venv/bin/python -m bench <module> ...` rewrites only those benches' sections). "
        "Each bench also runs alone, printing its figures without writing here: "
        "`.venv/bin/python -m bench.<module> --help`.",
        "## Machine",
        table(host, header="Machine"),
        *(section(entry) for entry in sections),
    ]
    return "\n\n".join(parts) + "\n"


def replace_sections(text: str, sections: list[Section], order: Sequence[ModuleType]) -> str:
    """``text`` (a ``BENCHMARKS.md``) with the sections of ``sections`` written
    anew, each in its place in ``order`` (appended there when ``text`` has none
    yet); everything else is kept as it was."""
    preamble, *chunks = re.split(r"(?m)^(?=## )", text)
    kept = {chunk.partition("\n")[0].removeprefix("## ").strip(): chunk.strip()
            for chunk in chunks}
    fresh = {title(entry.module): section(entry) for entry in sections}
    titles = [title(module) for module in order]
    parts = [preamble.strip(),
             *(chunk for name, chunk in kept.items() if name not in titles),  # the machine
             *(fresh.get(name) or kept[name] for name in titles if name in fresh or name in kept)]
    return "\n\n".join(parts) + "\n"


def print_section(module: ModuleType, figures: Figures) -> None:
    """What a bench run alone prints: its title and its figures."""
    print(f"## {title(module)}\n\n{table(figures)}\n", flush=True)


def _format(value: Figure) -> str:
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown"
