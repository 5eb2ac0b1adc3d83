"""glibc's mmap threshold, fixed so freed big buffers go back to the OS."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lawhub_actors.adapters import memory_release
from lawhub_actors.adapters.memory_release import glibc_version, map_big_allocations

needs_glibc = pytest.mark.skipif(glibc_version() is None, reason="glibc only")

# Frees eight 4 MiB bodies allocated after a first one was freed (which, left
# alone, raises glibc's threshold so they come from the heap) and after which
# small objects were allocated (which pin the heap's top); prints the MiB
# the process gave back.
FREED_MIB = textwrap.dedent("""
    import os, sys
    from lawhub_actors.adapters.memory_release import map_big_allocations
    if sys.argv[1] == "fixed":
        assert map_big_allocations()
    page = os.sysconf("SC_PAGE_SIZE")
    def rss():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * page
    size = 4 * 1024 * 1024
    first = b"x" * size
    del first
    held = [bytes([n]) * size for n in range(8)]
    pins = [bytearray(64) for _ in range(1000)]
    before = rss()
    del held
    print((before - rss()) // (1024 * 1024))
""")


def freed_mib(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", FREED_MIB, mode],
                         capture_output=True, text=True, check=True, timeout=60)
    return int(out.stdout)


@needs_glibc
def test_with_the_threshold_fixed_freed_bodies_go_back_to_the_os() -> None:
    assert freed_mib("fixed") >= 28  # 8 x 4 MiB, give or take a page table
    # (left alone, glibc 2.36 keeps all 32 MiB: freed_mib("default") == 0)


@needs_glibc
def test_fixing_the_threshold_is_accepted_and_may_be_repeated() -> None:
    assert map_big_allocations()
    assert map_big_allocations(memory_release.MMAP_THRESHOLD)


def test_without_glibc_it_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_release.sys, "platform", "darwin")
    assert glibc_version() is None
    assert map_big_allocations() is False
