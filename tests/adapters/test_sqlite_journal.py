"""The webhook journal: durable before ack, group-committed, never in clear."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lawhub_actors.adapters.sqlite_journal import ENTRY_OVERHEAD, Journal, JournalUnavailable
from tests.waits import until

KEY = AESGCM(os.urandom(32))


def seal(body: bytes) -> tuple[str, bytes]:
    nonce = os.urandom(12)
    return "test", nonce + KEY.encrypt(nonce, body, None)


def open_(key_id: str, blob: bytes) -> bytes:
    assert key_id == "test"
    return KEY.decrypt(blob[:12], blob[12:], None)


@pytest.fixture
def journal(tmp_path: Path):
    journal = Journal(tmp_path / "journal.sqlite3", seal=seal, open_=open_)
    yield journal
    journal.close()


async def test_appends_get_increasing_sequence_numbers_and_read_back_in_order(journal) -> None:
    seqs = [await journal.append(f'{{"n": {i}}}'.encode()) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    entries = journal.read_after(2)
    assert [e.seq for e in entries] == [3, 4, 5]
    assert entries[0].body == b'{"n": 2}'


async def test_concurrent_appends_share_commits_and_none_is_lost(journal) -> None:
    bodies = [f'{{"n": {i}}}'.encode() for i in range(400)]
    seqs = await asyncio.gather(*(journal.append(body) for body in bodies))
    assert sorted(seqs) == list(range(1, 401))
    assert journal.commits < 400  # many requests shared one commit
    stored = {entry.seq: entry.body for entry in journal.read_after(0, limit=1000)}
    assert [stored[seq] for seq in seqs] == bodies


async def test_the_database_files_never_hold_a_body_in_clear(journal, tmp_path: Path) -> None:
    secret = b"Pak, suami saya ditangkap polisi tadi malam"
    await journal.append(b'{"text": "' + secret + b'"}')
    for file in tmp_path.iterdir():
        assert secret not in file.read_bytes(), file.name


async def test_after_commit_the_listener_hears_the_last_sequence(tmp_path: Path) -> None:
    heard: list[int] = []
    journal = Journal(tmp_path / "j.sqlite3", seal=seal, open_=open_, on_commit=heard.append)
    try:
        await journal.append(b"{}")
        await journal.append(b"{}")
    finally:
        journal.close()
    assert heard[-1] == 2


async def test_a_reopened_journal_continues_the_sequence(tmp_path: Path) -> None:
    first = Journal(tmp_path / "j.sqlite3", seal=seal, open_=open_)
    await first.append(b"{}")
    first.close()
    second = Journal(tmp_path / "j.sqlite3", seal=seal, open_=open_)
    try:
        assert await second.append(b"{}") == 2
    finally:
        second.close()


async def test_a_journal_that_cannot_write_refuses_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path, seal=seal, open_=open_, busy_timeout_ms=50)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        with pytest.raises(JournalUnavailable):
            await journal.append(b'{"lost": false}')
        blocker.execute("ROLLBACK")
        assert await journal.append(b"{}") == 1  # the refused body took no number
        assert len(journal.read_after(0)) == 1
    finally:
        blocker.close()
        journal.close()


def test_the_writer_thread_ends_on_close(tmp_path: Path) -> None:
    before = threading.active_count()
    Journal(tmp_path / "j.sqlite3", seal=seal, open_=open_).close()
    assert threading.active_count() == before


# -- the in-memory tail is bounded by bytes ------------------------------------


class CountingOpen:
    """``open_`` that counts database reads (the tail never opens a body)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, key_id: str, blob: bytes) -> bytes:
        self.calls += 1
        return open_(key_id, blob)


def _body(n: int, size: int) -> bytes:
    prefix = f'{{"n": {n}, "pad": "'.encode()
    return prefix + b"x" * (size - len(prefix) - 2) + b'"}'


async def test_the_tail_keeps_only_the_newest_bodies_that_fit_its_bytes(tmp_path: Path) -> None:
    opened = CountingOpen()
    budget = 3 * (1000 + ENTRY_OVERHEAD)
    journal = Journal(tmp_path / "j.sqlite3", seal=seal, open_=opened, tail_bytes=budget)
    try:
        bodies = [_body(n, 1000) for n in range(10)]
        for body in bodies:
            await journal.append(body)
        assert journal.tail_bytes_used == budget
        assert [e.body for e in journal.read_after(7)] == bodies[7:]  # the tail
        assert opened.calls == 0
        assert [e.body for e in journal.read_after(0)] == bodies  # behind the tail
        assert opened.calls == 10
    finally:
        journal.close()


async def test_a_body_bigger_than_the_budget_is_read_from_the_database(tmp_path: Path) -> None:
    opened = CountingOpen()
    journal = Journal(tmp_path / "j.sqlite3", seal=seal, open_=opened, tail_bytes=4000)
    try:
        small, big, after = _body(1, 1000), _body(2, 5000), _body(3, 1000)
        for body in (small, small, big, after):
            await journal.append(body)
        assert [e.body for e in journal.read_after(3)] == [after]
        assert opened.calls == 0
        assert [(e.seq, e.body) for e in journal.read_after(1)] == [
            (2, small), (3, big), (4, after)
        ]
        assert opened.calls == 3
    finally:
        journal.close()


async def test_a_tail_of_zero_bytes_reads_everything_from_the_database(tmp_path: Path) -> None:
    opened = CountingOpen()
    journal = Journal(tmp_path / "j.sqlite3", seal=seal, open_=opened, tail_bytes=0)
    try:
        for n in range(3):
            await journal.append(_body(n, 100))
        assert [e.seq for e in journal.read_after(1)] == [2, 3]
        assert opened.calls == 2
        assert journal.tail_bytes_used == 0
    finally:
        journal.close()


async def test_reads_from_anywhere_match_the_database_whatever_the_sizes(tmp_path: Path) -> None:
    rng = random.Random(10)
    sizes = [rng.choice([60, 300, 1500, 5000, 9000]) for _ in range(120)]
    journal = Journal(tmp_path / "j.sqlite3", seal=seal, open_=open_, tail_bytes=12_000)
    try:
        bodies = [_body(n, size) for n, size in enumerate(sizes)]
        await asyncio.gather(*(journal.append(body) for body in bodies[:60]))
        for body in bodies[60:]:
            await journal.append(body)
        stored = {e.seq: e.body for e in journal.read_after(0, limit=1000)}
        assert sorted(stored.values()) == sorted(bodies)
        for after in range(len(bodies) + 1):
            for limit in (1, 3, 500):
                got = journal.read_after(after, limit)
                want = list(range(after + 1, min(after + limit, len(bodies)) + 1))
                assert [e.seq for e in got] == want
                assert [e.body for e in got] == [stored[seq] for seq in want]
        assert 0 < journal.tail_bytes_used <= 12_000
    finally:
        journal.close()


def test_a_negative_tail_budget_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tail_bytes"):
        Journal(tmp_path / "j.sqlite3", seal=seal, open_=open_, tail_bytes=-1)


async def test_an_idle_journal_holds_no_body_outside_its_tail(tmp_path: Path) -> None:
    """The writer thread must not keep its last batch while it waits for the next
    (after a burst that could be batch_max bodies of 4 MiB)."""
    journal = Journal(tmp_path / "j.sqlite3", seal=seal, open_=open_, tail_bytes=0)
    try:
        bodies = [_body(n, 1000) for n in range(3)]
        baseline = [sys.getrefcount(body) for body in bodies]
        await asyncio.gather(*(journal.append(body) for body in bodies))
        await until(lambda: [sys.getrefcount(body) for body in bodies] == baseline,
                    timeout=2, what="the writer to let go of the bodies")
    finally:
        journal.close()


@pytest.mark.parametrize("tail_bytes", [0, 1_000_000])  # from the database, from the tail
async def test_a_read_may_be_bounded_by_bytes_too(tmp_path: Path, tail_bytes: int) -> None:
    journal = Journal(tmp_path / "j.sqlite3", seal=seal, open_=open_, tail_bytes=tail_bytes)
    try:
        bodies = [_body(n, 1000) for n in range(10)]
        for body in bodies:
            await journal.append(body)

        def seqs(after: int, limit: int, max_bytes: int | None) -> list[int]:
            return [e.seq for e in journal.read_after(after, limit, max_bytes=max_bytes)]

        assert seqs(0, 500, None) == list(range(1, 11))
        assert seqs(0, 500, 2500) == [1, 2, 3]  # stops once 2,500 bytes are reached
        assert seqs(0, 500, 3000) == [1, 2, 3]
        assert seqs(0, 2, 3000) == [1, 2]  # limit still applies
        assert seqs(4, 500, 1) == [5]  # always at least one
        assert seqs(10, 500, 1) == []
    finally:
        journal.close()


async def test_two_writers_on_one_file_never_give_a_sequence_number_twice(tmp_path: Path) -> None:
    # The ack path in a process of its own and the main process (a webhook on a
    # connection it serves) both append: numbers are taken under the write lock.
    path = tmp_path / "journal.sqlite3"
    heard: list[int] = []
    main = Journal(path, seal=seal, open_=open_, on_commit=heard.append)
    await main.append(b'{"before": "sharing"}')  # a tail is kept until the journal is shared
    assert main.tail_bytes_used > 0
    main.share(0.005)
    assert main.tail_bytes_used == 0
    ingest = Journal(path, seal=seal, open_=open_, shared=True)
    try:
        seqs = await asyncio.gather(*(
            (main if i % 3 == 0 else ingest).append(f'{{"n": {i}}}'.encode())
            for i in range(300)))
        assert sorted(seqs) == list(range(2, 302))
        await until(lambda: main.last_committed == 301, timeout=5,
                    what="the follower to notice the other writer's entries")
        assert heard and heard[-1] == 301
        read = main.read_after(1, 1000)
        assert [e.seq for e in read] == list(range(2, 302))
        assert sorted(e.body for e in read) == sorted(f'{{"n": {i}}}'.encode() for i in range(300))
    finally:
        ingest.close()
        main.close()
