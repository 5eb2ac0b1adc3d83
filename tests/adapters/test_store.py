"""The store, on SQLite and on PostgreSQL: idempotent effects, gap-free feed
seq, sealed rows, status merge, group commit with per-caller savepoints."""

from __future__ import annotations

import contextlib
import threading

import pytest

from lawhub_actors.adapters import store_reads
from lawhub_actors.adapters.store import Store, StoreUnavailable
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.status import DeliveryState, Status, StatusError
from tests.adapters.conftest import KEYRING, Backend, in_clear


@pytest.fixture
def store(backend: Backend):
    store = Store(backend.database(), KEYRING)
    yield store
    store.close()


OUT = {"text": "Jadwal sidang Anda besok"}


def _outbound(store: Store) -> str:
    message_id = store.write(lambda tx: tx.insert_message(
        "firm-a", "6281234500001", direction="out", wamid=None, type_="text",
        status="pending", content=OUT, sent_at=None, journal_seq=None,
    )).value
    assert message_id is not None
    return message_id


def _status(store: Store, wamid: str, state: DeliveryState) -> tuple[str, DeliveryState] | None:
    return store.write(lambda tx: tx.apply_status("firm-a", wamid, state)).value


def _inbound(tx: Tx, wamid: str) -> str | None:
    return tx.insert_message("firm-a", "c1", direction="in", wamid=wamid, type_="text",
                             status="received", content={"text": "halo"}, sent_at=1, journal_seq=1)


def test_a_message_with_a_known_wamid_is_stored_once(store) -> None:
    ids = [store.write(lambda tx: _inbound(tx, "wamid.A")).value for _ in range(2)]
    assert ids[0] is not None and ids[1] is None
    assert store.read(store_reads.count, "messages") == 1


def test_a_replayed_message_gives_its_conversation_number_back(store) -> None:
    store.write(lambda tx: _inbound(tx, "wamid.A"))
    assert store.write(lambda tx: _inbound(tx, "wamid.A")).value is None
    store.write(lambda tx: _inbound(tx, "wamid.B"))
    messages = store.read_tx(store_reads.conversation, "firm-a", "c1")
    assert [m.conv_seq for m in messages] == [1, 2]


def test_a_message_opens_its_customers_window_and_one_sent_earlier_never_moves_it_back(
        store) -> None:
    def window(tx: Tx) -> float | None:
        customer = tx.customer("firm-a", "6281234500001")
        return None if customer is None else customer.last_inbound_at

    assert store.write(lambda tx: tx.arrived("firm-a", "6281234500001", 100.0)).value is False
    store.write(lambda tx: tx.add_lead("firm-a", "6281234500001", None, inbound_at=100.0))
    assert store.read_tx(window) == 100.0
    assert store.write(lambda tx: tx.arrived("firm-a", "6281234500001", 90.0)).value is True
    assert store.read_tx(window) == 100.0
    store.write(lambda tx: tx.arrived("firm-a", "6281234500001", 130.0))
    assert store.read_tx(window) == 130.0


def test_a_lead_made_meanwhile_elsewhere_keeps_its_record_and_gets_the_window(store) -> None:
    """Another node (a lawyer's consent change) made the customer between
    this message's lookup and its lead: the record stays, the window opens."""
    store.write(lambda tx: tx.add_lead("firm-a", "6281234500001", None))
    store.write(lambda tx: tx.set_consent("firm-a", "6281234500001", "granted"))
    store.write(lambda tx: tx.add_lead("firm-a", "6281234500001", "Siti", inbound_at=100.0))
    customer = store.read_tx(lambda tx: tx.customer("firm-a", "6281234500001"))
    assert customer is not None
    assert (customer.consent, customer.last_inbound_at) == ("granted", 100.0)


def test_feed_seq_is_per_tenant_gap_free_and_rolls_back_with_its_write(store) -> None:
    first = store.write(lambda tx: (tx.emit("firm-b", "x", {}), tx.emit("firm-a", "x", {})))

    def fails(tx: Tx) -> None:
        tx.emit("firm-a", "x", {})
        raise RuntimeError("the fact could not be stored")

    with pytest.raises(RuntimeError, match="could not be stored"):
        store.write(fails)
    second = store.write(lambda tx: tx.emit("firm-a", "x", {}))
    assert [(e.tenant, e.seq) for e in first.events] == [("firm-b", 1), ("firm-a", 1)]
    assert [(e.tenant, e.seq) for e in second.events] == [("firm-a", 2)]
    assert [e.seq for e in store.read_tx(store_reads.events_after, "firm-a", 0)] == [1, 2]


def test_concurrent_writers_share_commits_and_a_failure_undoes_only_its_own_write(store) -> None:
    results: list[object] = []
    gate = threading.Barrier(40)

    def writer(n: int) -> None:
        gate.wait()

        def work(tx: Tx) -> str | None:
            message_id = _inbound(tx, f"wamid.{n}")
            if n % 10 == 0:
                raise ValueError(f"writer {n} fails after writing")
            return message_id

        try:
            results.append(store.write(work).value)
        except ValueError as error:
            results.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sum(isinstance(r, ValueError) for r in results) == 4
    assert store.read(store_reads.count, "messages") == 36  # the failed four left nothing behind
    assert store.commits < 40  # writers shared commits


def test_committed_events_reach_the_feed_in_seq_order_before_any_writer_hears(
        backend: Backend) -> None:
    """Forty writers at once: the store hands the events on itself, after
    the commit and in commit order (writers publishing after their own
    write let later events overtake earlier ones); a write that failed
    hands on nothing; each writer returns only once its events are out."""
    published: list[int] = []
    store = Store(backend.database(), KEYRING,
                  on_commit=lambda events: published.extend(e.seq for e in events))
    gate = threading.Barrier(40)
    missing: list[int] = []

    def writer(n: int) -> None:
        gate.wait()

        def work(tx: Tx) -> None:
            tx.emit("firm-a", "x", {"n": n})
            if n % 10 == 0:
                raise ValueError("undone")

        with contextlib.suppress(ValueError):
            (event,) = store.write(work).events
            if event.seq not in published:
                missing.append(event.seq)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(40)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    finally:
        store.close()
    assert published == list(range(1, 37))
    assert missing == []


def test_a_failing_feed_never_fails_the_write_it_follows(backend: Backend) -> None:
    def broken(events: object) -> None:
        raise RuntimeError("feed gone")

    store = Store(backend.database(), KEYRING, on_commit=broken)
    try:
        assert [e.seq for e in store.write(lambda tx: tx.emit("firm-a", "x", {})).events] == [1]
        assert [e.seq for e in store.read_tx(store_reads.events_after, "firm-a", 0)] == [1]
    finally:
        store.close()


def test_statuses_merge_monotonically_into_the_outbound_message(store) -> None:
    message_id = _outbound(store)
    store.write(lambda tx: tx.attach_wamid("firm-a", message_id, "wamid.OUT", OUT))
    for status in (Status.DELIVERED, Status.READ, Status.DELIVERED, Status.SENT):
        applied = _status(store, "wamid.OUT", DeliveryState(status))
        assert applied is not None and applied[0] == message_id
    assert applied[1].status is Status.READ  # never read -> delivered


def test_a_status_before_its_wamid_is_known_is_parked_then_applied(store) -> None:
    message_id = _outbound(store)

    def early(tx: Tx) -> object:
        assert tx.insert_status("firm-a", "wamid.EARLY", "delivered", 5,
                                {"status": "delivered", "errors": []})
        return tx.apply_status("firm-a", "wamid.EARLY", DeliveryState(Status.DELIVERED))

    assert store.write(early).value is None  # parked: no message has that wamid yet
    merged = store.write(lambda tx: tx.attach_wamid("firm-a", message_id, "wamid.EARLY", OUT)).value
    assert merged.status is Status.DELIVERED
    (message,) = store.read_tx(store_reads.conversation, "firm-a", "6281234500001")
    assert message.status == "delivered"


def test_a_failed_status_carries_its_error(store) -> None:
    message_id = _outbound(store)
    store.write(lambda tx: tx.attach_wamid("firm-a", message_id, "wamid.F", OUT))
    error = StatusError(code=131026, title="Message undeliverable")
    applied = _status(store, "wamid.F", DeliveryState(Status.FAILED, error))
    assert applied is not None and applied[1].error == error


def test_bodies_names_and_payloads_never_reach_the_database_in_clear(store, backend) -> None:
    def record(tx: Tx) -> None:
        tx.add_lead("firm-a", "6281234500009", "Siti Aminah")
        tx.insert_message("firm-a", "6281234500009", direction="in", wamid="wamid.S",
                          type_="text", status="received", content={"text": "warisan ayah saya"},
                          sent_at=1, journal_seq=1)
        tx.emit("firm-a", "message.received", {"text": "warisan ayah saya"})

    store.write(record)
    store.close()
    stored = backend.stored()
    assert b"message.received" in stored  # the dump holds the rows: the check can fail
    for secret in ("warisan ayah saya", "Siti Aminah", "6281234500009", "wamid.S"):
        assert not in_clear(stored, secret), secret


def test_write_each_undoes_only_the_work_that_failed_and_keeps_its_neighbours(store) -> None:
    def poison(tx: Tx) -> None:
        _inbound(tx, "wamid.poison")
        raise ValueError("cannot be stored")

    outcomes = store.write_each([
        lambda tx: _inbound(tx, "wamid.1"), poison, lambda tx: _inbound(tx, "wamid.2"),
    ])
    assert isinstance(outcomes[1], ValueError)
    assert outcomes[0].value is not None and outcomes[2].value is not None
    assert store.read(store_reads.count, "messages") == 2  # the poison's row was undone


def test_a_statement_the_database_refuses_after_the_work_returned_undoes_that_work_alone(
        store, backend) -> None:
    # A statement whose answer the work never reads: the refusal is still its
    # own, not its neighbours' (however the engine delivers it).
    def refused_unread(tx: Tx) -> None:
        _inbound(tx, "wamid.refused")
        tx.conn.execute("INSERT INTO cursors (name, seq) VALUES ('x', 1), ('x', 2)")

    outcomes = store.write_each([
        lambda tx: _inbound(tx, "wamid.1"), refused_unread, lambda tx: _inbound(tx, "wamid.2"),
    ])
    assert isinstance(outcomes[1], backend.integrity_error)
    assert outcomes[0].value is not None and outcomes[2].value is not None
    assert store.read(store_reads.count, "messages") == 2  # the refused work's row was undone


def test_write_each_raises_store_unavailable_when_the_commit_fails(store, backend) -> None:
    store._writer.execute(backend.read_only)  # every write now fails to commit
    with pytest.raises(StoreUnavailable):
        store.write_each([lambda tx: tx.emit("firm-a", "x", {})])
    store._writer.execute(backend.writable)
    assert [e.seq for e in store.write_each([lambda tx: tx.emit("firm-a", "x", {})])[0].events] == [1]


def test_write_each_tries_the_batch_again_when_the_store_itself_fails_inside_a_work(
        store, backend) -> None:
    # A full disk or an I/O error inside one work's savepoint is not that update's
    # fault: the whole batch must be handed again, never quarantined.
    def disk_full(tx: Tx) -> None:
        raise backend.operational_error("database or disk is full")

    with pytest.raises(StoreUnavailable):
        store.write_each([lambda tx: _inbound(tx, "wamid.1"), disk_full])
    with pytest.raises(StoreUnavailable):
        store.write_each([lambda tx: (_ for _ in ()).throw(MemoryError())])
    integrity = store.write_each([lambda tx: tx.conn.execute(
        "INSERT INTO cursors (name, seq) VALUES ('x', 1), ('x', 2)")])
    assert isinstance(integrity[0], backend.integrity_error)  # a constraint: the work's own


def test_two_stores_committing_events_of_two_tenants_in_opposite_orders_never_deadlock(
        backend: Backend) -> None:
    """Two nodes' batches touching the same tenants: each tenant's counter
    is taken at the end of the transaction, in the tenants' order."""
    first, second = Store(backend.database(), KEYRING), Store(backend.database(), KEYRING)
    failures: list[BaseException] = []

    def node(store: Store, tenants: tuple[str, str]) -> None:
        try:
            for _ in range(30):
                store.write_each([lambda tx, t=t: tx.emit(t, "x", {}) for t in tenants])
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=node, args=(first, ("firm-a", "firm-b"))),
               threading.Thread(target=node, args=(second, ("firm-b", "firm-a")))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failures == []
        for tenant in ("firm-a", "firm-b"):
            seqs = [e.seq for e in first.read_tx(store_reads.events_after, tenant, 0, 1000)]
            assert seqs == list(range(1, 61))
    finally:
        first.close()
        second.close()


def test_two_stores_writing_one_conversation_at_once_number_it_without_a_clash(
        backend: Backend) -> None:
    """Its owner storing the client's messages while another node accepts a
    lawyer's send to the same client: the conversation's counter takes turns."""
    first, second = Store(backend.database(), KEYRING), Store(backend.database(), KEYRING)
    failures: list[BaseException] = []

    def node(store: Store, direction: str) -> None:
        try:
            for n in range(25):
                store.write(lambda tx, n=n: tx.insert_message(
                    "firm-a", "6281234500001", direction=direction,
                    wamid=f"wamid.{direction}.{n}" if direction == "in" else None, type_="text",
                    status="received", content={"text": "x"}, sent_at=None, journal_seq=None))
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=node, args=(first, "in")),
               threading.Thread(target=node, args=(second, "out"))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failures == []
        messages = first.read_tx(store_reads.conversation, "firm-a", "6281234500001", limit=100)
        assert [m.conv_seq for m in messages] == list(range(1, 51))
    finally:
        first.close()
        second.close()


def test_an_event_that_cannot_be_serialized_fails_its_own_write_alone(store) -> None:
    outcomes = store.write_each([
        lambda tx: tx.emit("firm-a", "x", {"n": 1}),
        lambda tx: tx.emit("firm-a", "x", {"too_big": 2**70}),  # orjson refuses it
        lambda tx: tx.emit("firm-a", "x", {"n": 3}),
    ])
    assert isinstance(outcomes[1], TypeError)
    assert [e.seq for o in (outcomes[0], outcomes[2]) for e in o.events] == [1, 2]
