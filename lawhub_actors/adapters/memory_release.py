"""Big freed buffers go back to the operating system (glibc's malloc).

glibc serves a request of at least ``M_MMAP_THRESHOLD`` bytes (128 KiB at
start) with a mapping of its own, which ``free`` unmaps at once. But the
threshold is dynamic: freeing such a chunk raises it to that chunk's size
(up to 32 MiB on 64-bit), so after the first 4 MiB webhook body is freed,
every later one comes from a heap, where freed memory mostly stays with the
process (a heap shrinks only from its top, and small allocations made in
between pin it). Setting the threshold explicitly turns that adjustment
off: every buffer from :data:`MMAP_THRESHOLD` up is mapped, and unmapped
when freed.

:func:`map_big_allocations` is called once, early at start; it is a no-op
where there is no glibc (macOS, musl).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter number, from glibc's ``<malloc.h>``."""

MMAP_THRESHOLD = 512 * 1024
"""Smaller requests stay in the heap, where they are cheap; big webhook
bodies (up to 4 MiB) and their copies are above. Not glibc's own start
(128 KiB): asyncio reads a socket into a fresh 256 KiB buffer and shrinks it
to what came, so at 128 KiB every read of every request was a mapping made,
shrunk and unmapped (three system calls, a page fault, and other cores'
TLBs flushed) — measured: ~1 each per webhook in the ack process."""


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
