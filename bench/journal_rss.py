"""Resident memory of the journal with 4 MiB bodies, with and without glibc's fixed mmap threshold.

    .venv/bin/python -m bench.journal_rss            # both, each in a fresh process
    .venv/bin/python -m bench.journal_rss --mallopt  # one run, threshold fixed
    .venv/bin/python -m bench.journal_rss --default  # one run, glibc as it comes

Appends BODIES distinct 4 MiB bodies through :class:`Journal` (sealed, as
the runtime does; WAVE requests at a time, as concurrent webhooks would),
then reads them all back with ``read_after`` (READ_LIMIT at a time, as a
byte-bounded reader would), dropping each wave and read as it goes.
Prints RSS (``/proc/self/statm``) before, at the peak (highest sample, and
``ru_maxrss``), after the burst with the journal still open (what a running
server keeps) and after the journal was closed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lawhub_actors.adapters.journal import TAIL_BYTES, Journal
from lawhub_actors.adapters.memory_release import MMAP_THRESHOLD, map_big_allocations
from lawhub_actors.adapters.sqlite_journal import SqliteJournalFile

BODIES = 400
BODY_BYTES = 4 * 1024 * 1024
WAVE = 16
READ_LIMIT = 4
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / MIB


def body(n: int) -> bytes:
    head = f'{{"object":"whatsapp_business_account","n":{n},"pad":"'.encode()
    pad = os.urandom((BODY_BYTES - len(head) - 2) // 2).hex().encode()
    return head + pad + b'"}'


async def run(tail_bytes: int) -> dict[str, float]:
    key = AESGCM(os.urandom(32))

    def seal(plain: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        return "k", nonce + key.encrypt(nonce, plain, None)

    def open_(_key_id: str, blob: bytes) -> bytes:
        return key.decrypt(blob[:12], blob[12:], None)

    samples: list[float] = []
    gc.collect()
    before = rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(SqliteJournalFile(Path(tmp) / "journal.sqlite3"), seal=seal, open_=open_,
                          tail_bytes=tail_bytes)
        try:
            for first in range(0, BODIES, WAVE):
                wave = [body(n) for n in range(first, min(first + WAVE, BODIES))]
                await asyncio.gather(*(journal.append(b) for b in wave))
                del wave
                samples.append(rss_mib())
            seq, read = 0, 0
            while entries := journal.read_after(seq, READ_LIMIT):
                read += sum(len(e.body) for e in entries)
                seq = entries[-1].seq
                del entries
                samples.append(rss_mib())
            assert read >= BODIES * (BODY_BYTES - 64), read
            gc.collect()
            time.sleep(0.2)
            settled = rss_mib()  # what a running server keeps after the burst
        finally:
            journal.close()
            del journal  # and its tail
    gc.collect()
    time.sleep(0.2)
    return {
        "before": before,
        "peak": max(samples),
        "peak (ru_maxrss)": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "after, journal open": settled,
        "after, journal closed": rss_mib(),
    }


def one(mallopt: bool, tail_bytes: int) -> None:
    applied = map_big_allocations() if mallopt else False
    result = asyncio.run(run(tail_bytes))
    label = (f"mallopt(M_MMAP_THRESHOLD={MMAP_THRESHOLD // 1024} KiB)" if applied
             else "glibc default")
    print(f"{label:34} tail {tail_bytes // MIB} MiB: " + ", ".join(
        f"{name} {value:,.0f} MiB" for name, value in result.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--mallopt", action="store_true")
    mode.add_argument("--default", action="store_true")
    parser.add_argument("--tail-bytes", type=int, default=TAIL_BYTES)
    args = parser.parse_args()
    if args.mallopt or args.default:
        one(args.mallopt, args.tail_bytes)
        return
    print(f"{BODIES} distinct bodies of {BODY_BYTES // MIB} MiB through the journal; RSS:")
    for flag in ("--default", "--mallopt"):
        subprocess.run([sys.executable, "-m", "bench.journal_rss", flag,
                        "--tail-bytes", str(args.tail_bytes)], check=True)


if __name__ == "__main__":
    main()
