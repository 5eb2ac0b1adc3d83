"""The webhook journal, on SQLite and on PostgreSQL: durable before ack,
group-committed, numbered in commit order, never in clear. The in-memory
tail (one writer only: SQLite not shared) is tested on SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lawhub_actors.adapters.journal import (
    ENTRY_OVERHEAD,
    Journal,
    JournalDatabase,
    JournalUnavailable,
)
from lawhub_actors.adapters.pg_journal import PgJournalDatabase
from lawhub_actors.adapters.sqlite_journal import SqliteJournalFile
from tests.adapters.conftest import Backend, in_clear
from tests.waits import until

KEY = AESGCM(os.urandom(32))


def seal(body: bytes) -> tuple[str, bytes]:
    nonce = os.urandom(12)
    return "test", nonce + KEY.encrypt(nonce, body, None)


def open_(key_id: str, blob: bytes) -> bytes:
    assert key_id == "test"
    return KEY.decrypt(blob[:12], blob[12:], None)


@pytest.fixture
def journal(backend: Backend):
    journal = Journal(backend.journal(), seal=seal, open_=open_)
    yield journal
    journal.close()


async def test_appends_get_increasing_sequence_numbers_and_read_back_in_order(journal) -> None:
    seqs = [await journal.append(f'{{"n": {i}}}'.encode()) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    entries = journal.read_after(2)
    assert [e.seq for e in entries] == [3, 4, 5]
    assert entries[0].body == b'{"n": 2}'
    assert journal.received_at(3) == entries[0].received_at
    assert journal.received_at(6) is None


async def test_concurrent_appends_share_commits_and_none_is_lost(journal) -> None:
    bodies = [f'{{"n": {i}}}'.encode() for i in range(400)]
    seqs = await asyncio.gather(*(journal.append(body) for body in bodies))
    assert sorted(seqs) == list(range(1, 401))
    assert journal.commits < 400  # many requests shared one commit
    stored = {entry.seq: entry.body for entry in journal.read_after(0, limit=1000)}
    assert [stored[seq] for seq in seqs] == bodies


async def test_the_database_never_holds_a_body_in_clear(journal, backend: Backend) -> None:
    secret = "Pak, suami saya ditangkap polisi tadi malam"
    await journal.append(b'{"text": "' + secret.encode() + b'"}')
    journal.close()
    stored = backend.stored()
    assert stored  # the dump holds the journal: the check can fail
    assert not in_clear(stored, secret)


async def test_after_commit_the_listener_hears_the_last_sequence(backend: Backend) -> None:
    heard: list[int] = []
    journal = Journal(backend.journal(), seal=seal, open_=open_, on_commit=heard.append)
    try:
        await journal.append(b"{}")
        await journal.append(b"{}")
    finally:
        journal.close()
    assert heard[-1] == 2


async def test_a_reopened_journal_continues_the_sequence(backend: Backend) -> None:
    first = Journal(backend.journal(), seal=seal, open_=open_)
    await first.append(b"{}")
    first.close()
    second = Journal(backend.journal(), seal=seal, open_=open_)
    try:
        assert await second.append(b"{}") == 2
    finally:
        second.close()


@contextlib.contextmanager
def _writer_holding_the_lock(backend: Backend, path: Path | None = None) -> Iterator[Any]:
    """Another writer in the middle of its commit: it holds the journal's write
    lock (SQLite: the file's; PostgreSQL: the advisory one)."""
    database = backend.journal()
    conn = database.open_writer()
    try:
        database.begin(conn)
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        database.close()


def _impatient(backend: Backend, tmp_path: Path) -> JournalDatabase:
    """A journal database that waits 50 ms at most for the write lock."""
    if backend.name == "sqlite":
        return SqliteJournalFile(tmp_path / "journal.sqlite3", busy_timeout_ms=50)
    backend.journal().close()  # the table made
    return PgJournalDatabase(backend.url, lock_timeout_ms=50)


async def test_a_journal_that_cannot_write_refuses_and_recovers(
        backend: Backend, tmp_path: Path) -> None:
    journal = Journal(_impatient(backend, tmp_path), seal=seal, open_=open_)
    try:
        with _writer_holding_the_lock(backend), pytest.raises(JournalUnavailable):
            await journal.append(b'{"lost": false}')
        assert await journal.append(b"{}") == 1  # the refused body took no number
        assert len(journal.read_after(0)) == 1
    finally:
        journal.close()


async def test_a_number_is_given_in_commit_order_so_no_reader_passes_one_committing_late(
        backend: Backend) -> None:
    """The trap: with numbers given at insert time, a writer that took 1 and
    commits after another writer's 2 is read past (a reader at 2 never asks
    for 1 again). Here the second writer waits for the first to commit and
    then numbers after it: a reader sees 1 before 2, never 2 alone."""
    seen: list[list[int]] = []
    reader = Journal(backend.journal(), seal=seal, open_=open_, shared=True)
    second = Journal(backend.journal(), seal=seal, open_=open_, shared=True)
    try:
        with _writer_holding_the_lock(backend) as first:
            first.execute("INSERT INTO journal (seq, received_at, key_id, body)"
                          " VALUES (1, 0, ?, ?)", seal(b'{"first": true}'))
            late = asyncio.ensure_future(second.append(b'{"second": true}'))
            await asyncio.sleep(0.3)
            assert not late.done()  # the second waits for the first's commit
            seen.append([e.seq for e in reader.read_after(0)])
            first.execute("COMMIT")
        assert await late == 2
        seen.append([e.seq for e in reader.read_after(0)])
    finally:
        second.close()
        reader.close()
    assert seen == [[], [1, 2]]


def test_the_writer_thread_ends_on_close(backend: Backend) -> None:
    before = threading.active_count()
    Journal(backend.journal(), seal=seal, open_=open_).close()
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
    journal = Journal(SqliteJournalFile(tmp_path / "j.sqlite3"), seal=seal, open_=opened, tail_bytes=budget)
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
    journal = Journal(SqliteJournalFile(tmp_path / "j.sqlite3"), seal=seal, open_=opened, tail_bytes=4000)
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
    journal = Journal(SqliteJournalFile(tmp_path / "j.sqlite3"), seal=seal, open_=opened, tail_bytes=0)
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
    journal = Journal(SqliteJournalFile(tmp_path / "j.sqlite3"), seal=seal, open_=open_, tail_bytes=12_000)
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
        Journal(SqliteJournalFile(tmp_path / "j.sqlite3"), seal=seal, open_=open_, tail_bytes=-1)


async def test_an_idle_journal_holds_no_body_outside_its_tail(tmp_path: Path) -> None:
    """The writer thread must not keep its last batch while it waits for the next
    (after a burst that could be batch_max bodies of 4 MiB)."""
    journal = Journal(SqliteJournalFile(tmp_path / "j.sqlite3"), seal=seal, open_=open_, tail_bytes=0)
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
    journal = Journal(SqliteJournalFile(tmp_path / "j.sqlite3"), seal=seal, open_=open_, tail_bytes=tail_bytes)
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


async def test_two_writers_on_one_database_never_give_a_sequence_number_twice(
        backend: Backend) -> None:
    # The ack path in a process of its own and the main process (a webhook on a
    # connection it serves), or two nodes, both append: numbers are taken under
    # the write lock.
    heard: list[int] = []
    main = Journal(backend.journal(), seal=seal, open_=open_, on_commit=heard.append)
    await main.append(b'{"before": "sharing"}')
    if backend.name == "sqlite":  # a tail is kept until the file is shared
        assert main.tail_bytes_used > 0
        main.share(0.005)
    assert main.tail_bytes_used == 0  # PostgreSQL: several nodes write, never a tail
    ingest = Journal(backend.journal(), seal=seal, open_=open_, shared=True)
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
