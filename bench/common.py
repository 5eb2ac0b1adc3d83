"""Helpers shared by the benches: figures, percentiles, RSS, quiet logs."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

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
