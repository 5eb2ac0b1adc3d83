"""Partition leases and fencing, on SQLite and on PostgreSQL: one owner at a
time, a taken-over partition refuses its old owner's writes, cursors only
move up, and lease keepers share the partitions and hand them over."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from lawhub_actors.adapters import leases, store_reads
from lawhub_actors.adapters.lease_keeper import LeaseKeeper
from lawhub_actors.adapters.leases import Fenced, Ownership, PartitionsChanged
from lawhub_actors.adapters.pg_store import PgDatabase
from lawhub_actors.adapters.store import Store
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.partitions import Lease
from tests.adapters.conftest import KEYRING, Backend


@pytest.fixture
def store(backend: Backend):
    store = Store(backend.database(), KEYRING)
    store.write(lambda tx: leases.ensure_partitions(tx, 4))
    yield store
    store.close()


def _take(store: Store, node: str, partition: int) -> int:
    (lease,) = [x for x in store.read(leases.read_leases) if x.partition == partition]
    epoch = store.write(lambda tx: leases.take(tx, node, lease, time.time(), time.time() + 10)).value
    assert epoch is not None
    return epoch


def _run_out(store: Store, node: str, partition: int, epoch: int) -> None:
    """``node`` stalled: its lease of ``partition`` ran out."""
    store.write(lambda tx: leases.renew(tx, leases.Held(node, 4, {partition: epoch}), 0.0))


def _mark(tx: Tx) -> None:
    tx.emit("firm-a", "x", {})


def test_a_write_fenced_by_a_partition_taken_over_is_refused_and_leaves_nothing(store) -> None:
    a, b = Ownership("a", 4), Ownership("b", 4)
    a.set({0: _take(store, "a", 0)})
    store.write(lambda tx: (leases.fence(tx, a, 0), _mark(tx)))
    _run_out(store, "a", 0, 1)  # a stalled past its lease; b takes over
    b.set({0: _take(store, "b", 0)})
    with pytest.raises(Fenced):
        store.write(lambda tx: (leases.fence(tx, a, 0), _mark(tx)))
    store.write(lambda tx: (leases.fence(tx, b, 0), _mark(tx)))
    events = store.read_tx(store_reads.events_after, "firm-a", 0)
    assert [e.seq for e in events] == [1, 2]  # a's refused write left no event


def test_a_live_lease_is_not_taken_but_a_run_out_one_is(store) -> None:
    now = time.time()
    (lease,) = [x for x in store.read(leases.read_leases) if x.partition == 1]
    assert store.write(lambda tx: leases.take(tx, "a", lease, now, now + 10)).value == 1
    assert store.write(lambda tx: leases.take(tx, "b", Lease(1, "a", 1, now + 10), now, now + 10)
                       ).value is None  # held by a until its lease runs out
    assert store.write(lambda tx: leases.take(tx, "b", lease, now, now + 10)).value is None  # stale
    _run_out(store, "a", 1, 1)
    assert store.write(lambda tx: leases.take(tx, "b", Lease(1, "a", 1, now - 1), now, now + 10)
                       ).value == 2


def test_cursors_move_up_only_and_only_for_what_is_held_at_its_epoch(store) -> None:
    epoch = _take(store, "a", 2)
    held = leases.Held("a", 4, {2: epoch, 3: 7})  # 3 is not a's
    store.write(lambda tx: leases.advance(tx, held, 50))
    store.write(lambda tx: leases.advance(tx, held, 40))
    assert store.read(leases.cursors, [2, 3]) == {2: 50, 3: 0}
    assert store.read(leases.processed_upto) == 0


def test_the_number_of_partitions_is_fixed_once_made(store) -> None:
    store.write(lambda tx: leases.ensure_partitions(tx, 4))
    with pytest.raises(PartitionsChanged, match="fixed"):
        store.write(lambda tx: leases.ensure_partitions(tx, 8))


def test_a_release_frees_a_partition_at_once(store) -> None:
    epoch = _take(store, "a", 0)
    store.write(lambda tx: leases.release(tx, leases.Held("a", 4, {0: epoch}), [0]))
    (lease,) = [x for x in store.read(leases.read_leases) if x.partition == 0]
    assert (lease.owner, lease.until) == (None, 0.0)


def _takeover_beside(postgres_url: str,
                     before: Callable[[Ownership], list[Callable[[Tx], object]]]) -> list[object]:
    """Node a's lease of partition 0 ran out while a commit of its is in
    flight: ``before(a)``'s works, then one that fences partition 0 and
    holds the commit open. Node b's takeover must wait for that commit,
    then get epoch 2. The commit's outcomes, in order."""
    first, second = Store(PgDatabase(postgres_url), KEYRING), Store(PgDatabase(postgres_url), KEYRING)
    try:
        first.write(lambda tx: leases.ensure_partitions(tx, 4))
        a = Ownership("a", 4)
        a.set({0: _take(first, "a", 0)})
        _run_out(first, "a", 0, 1)
        fenced, release = threading.Event(), threading.Event()

        def slow_write(tx: Tx) -> None:
            leases.fence(tx, a, 0)
            _mark(tx)
            fenced.set()
            release.wait(5)

        outcomes: list[object] = []
        writer = threading.Thread(target=lambda: outcomes.extend(
            first.write_each([*before(a), slow_write])))
        writer.start()
        assert fenced.wait(5)
        taken: list[int | None] = []
        taker = threading.Thread(target=lambda: taken.append(second.write(
            lambda tx: leases.take(tx, "b", Lease(0, "a", 1, 0.0), time.time(),
                                   time.time() + 10)).value))
        taker.start()
        time.sleep(0.3)
        assert taken == []  # waits for the old owner's transaction
        release.set()
        writer.join(5)
        taker.join(5)
        assert taken == [2]
        return outcomes
    finally:
        first.close()
        second.close()


def test_a_takeover_on_postgres_waits_for_the_old_owners_write_in_flight(
        postgres_url: str) -> None:
    # (On SQLite one writer at a time: no takeover can run beside a write.)
    _takeover_beside(postgres_url, lambda a: [])


def test_a_partition_fenced_by_an_undone_work_is_fenced_again_by_the_next_in_its_commit(
        postgres_url: str) -> None:
    """The works of one commit share their fences, but a work undone alone
    (its savepoint rolled back) released the lock it took: the next work
    takes it again, so a takeover still waits for the commit."""
    def undone(a: Ownership) -> Callable[[Tx], object]:
        def work(tx: Tx) -> None:
            leases.fence(tx, a, 0)
            raise ValueError("this update's own fault")
        return work

    outcomes = _takeover_beside(postgres_url, lambda a: [undone(a)])
    assert isinstance(outcomes[0], ValueError)


def _keeper(store: Store, node: str, clock: list[float]) -> tuple[LeaseKeeper, Ownership]:
    ownership = Ownership(node, 8)
    return LeaseKeeper(store, ownership, address=node, lease_s=10,
                       clock=lambda: clock[0]), ownership


def test_keepers_share_the_partitions_and_take_over_a_dead_nodes_once_its_lease_runs_out(
        backend: Backend) -> None:
    store = Store(backend.database(), KEYRING)
    clock = [time.time()]
    try:
        one, one_owns = _keeper(store, "one", clock)
        two, two_owns = _keeper(store, "two", clock)
        store.write(lambda tx: leases.ensure_partitions(tx, 8))
        one.tick()
        assert len(one_owns.held().epochs) == 8  # alone: everything
        two.tick()
        assert len(two_owns.held().epochs) == 0  # one's are live: two waits
        one.tick()  # one sees two and gives up half
        two.tick()
        assert sorted(one_owns.held().epochs) == [0, 1, 2, 3]
        assert sorted(two_owns.held().epochs) == [4, 5, 6, 7]
        clock[0] += 11  # one died: no heartbeat, no renewal
        two.tick()
        assert len(two_owns.held().epochs) == 8
        assert {lease.owner for lease in store.read(leases.read_leases)} == {"two"}
    finally:
        store.close()


def test_a_keeper_that_stops_hands_its_partitions_over_at_once(backend: Backend) -> None:
    store = Store(backend.database(), KEYRING)
    clock = [time.time()]
    try:
        one, _ = _keeper(store, "one", clock)
        two, two_owns = _keeper(store, "two", clock)
        store.write(lambda tx: leases.ensure_partitions(tx, 8))
        one.tick()
        one.stop()
        two.tick()
        assert len(two_owns.held().epochs) == 8
        assert store.read(leases.live_nodes, 0.0) == ["two"]
    finally:
        store.close()


def test_work_handed_out_before_a_partition_was_lost_and_taken_back_is_refused(store) -> None:
    a = Ownership("a", 4)
    p = a.of("firm-a", "6281234500001")
    handed_at = _take(store, "a", p)
    a.set({p: handed_at})
    _run_out(store, "a", p, handed_at)  # a stalls; b takes it; b gives it back; a retakes it
    _take(store, "b", p)
    store.write(lambda tx: leases.release(tx, leases.Held("b", 4, {p: handed_at + 1}), [p]))
    a.set({p: _take(store, "a", p)})
    with pytest.raises(Fenced):  # what a handed out before must be done again, in order
        store.write(leases.fenced(a, "firm-a", "6281234500001", _mark, epoch=handed_at))
    store.write(leases.fenced(a, "firm-a", "6281234500001", _mark))  # today's work goes on
