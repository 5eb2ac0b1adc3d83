"""Big freed buffers go back to the operating system (glibc's malloc).

glibc serves a request of at least ``M_MMAP_THRESHOLD`` bytes (128 KiB at
start) with a mapping of its own, which ``free`` unmaps at once. But the
threshold is dynamic: freeing such a chunk raises it to that chunk's size
(up to 32 MiB on 64-bit), so after the first 4 MiB webhook body is freed,
every later one comes from a heap, where freed memory mostly stays with the
process (a heap shrinks only from its top, and small allocations made in
between pin it). Setting the threshold explicitly turns that adjustment
off: every body from 128 KiB up is mapped, and unmapped when freed.

:func:`map_big_allocations` is called once, early at start; it is a no-op
where there is no glibc (macOS, musl).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter number, from glibc's ``<malloc.h>``."""

MMAP_THRESHOLD = 128 * 1024
"""glibc's own starting threshold: smaller requests stay in the heap, where
they are cheap; the copies of webhook bodies (up to 4 MiB) are all above."""


def glibc_version() -> str | None:
    """``"glibc 2.36"`` on Linux with glibc, else ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        return None
    return version if version and version.startswith("glibc") else None


def map_big_allocations(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes, so freed big buffers
    are returned to the OS; whether it was applied (``False`` without glibc)."""
    if glibc_version() is None:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols include libc's
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold) == 1)
