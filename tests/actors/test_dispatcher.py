"""The dispatcher's flow control, one message at a time: every update handed
out exactly once, each conversation in journal order, the cursor never past
an unsettled update, and no wake-up lost."""

from __future__ import annotations

import random

import pytest

from lawhub_actors.actors import dispatcher as dispatcher_module
from lawhub_actors.actors import entry_reader
from lawhub_actors.actors.services import Wakeup
from tests.actors.dispatcher_harness import NUMBER_A, NUMBER_B, Harness, keys, text


def test_an_update_left_behind_is_handed_out_even_if_its_entry_resolves_otherwise_later() -> None:
    # Positions index an entry's updates; a number leaving the config between the
    # first read and the re-read must not shift them (w2 was silently lost).
    h = Harness(conversation_window=1, parsed_cache_bytes=0)
    h.journal.append(text(NUMBER_A, "c1", "w1"))
    h.journal.append(text(NUMBER_B, "x", "wx"), text(NUMBER_A, "c1", "w2"))
    h.advanced()
    first = h.take_sent()
    assert keys(first) == ["w1", "wx"]  # w2 left behind: c1 has no room
    h.config.remove(NUMBER_B)  # firm-b retired meanwhile
    h.settle(first)
    assert keys(h.take_sent()) == ["w2"]


def test_a_full_window_never_moves_a_position_back_to_hand_out_an_update_again() -> None:
    # d1, d2 handed out (d3 left behind); d1 fails, d2 is stored. A come-back pass
    # stopped by the byte window must not move D back before d1: d1 would be
    # handed out again, after d2.
    h = Harness(conversation_window=2, window_bytes=50_000)
    h.journal.append(text(NUMBER_A, "H", "h1"), text(NUMBER_A, "H", "h2"))
    h.journal.append(text(NUMBER_A, "H", "h3", body="x" * 100_000))
    h.journal.append(text(NUMBER_A, "G", "g1"), text(NUMBER_A, "G", "g2"))
    h.journal.append(text(NUMBER_A, "G", "g3"), text(NUMBER_A, "D", "d1"),
                     text(NUMBER_A, "D", "d2"), text(NUMBER_A, "D", "d3"))
    h.advanced()
    sent = h.take_sent()
    assert keys(sent) == ["h1", "h2", "g1", "g2", "d1", "d2"]
    h.settle(sent, failed={"d1": "OperationalError: transient"})
    again = h.take_sent()
    assert keys(again) == ["h3"]  # then the byte window is full
    h.settle(again)
    assert "d1" not in keys(h.take_sent())


def test_a_tenant_gone_settles_its_updates_and_the_reader_goes_on() -> None:
    h = Harness(conversation_window=1)
    h.registry.gone.add("inbound/sessions/firm-b")
    for n in range(3):
        h.journal.append(text(NUMBER_B, "c", f"b{n}"))
    h.advanced()
    removed = [seq for seq, reason, _ in h.store.quarantined if reason == "tenant_removed"]
    assert removed == [1, 2, 3]
    assert h.dispatcher._window.count == 0 and h.services.flow.settled_upto == 3


def test_a_restarted_dispatcher_hears_of_new_entries_even_if_a_nudge_died_with_the_last() -> None:
    nudges: list[str] = []
    wakeup = Wakeup(lambda: nudges.append("JournalAdvanced"))
    h = Harness()
    wakeup.signal()  # a commit's nudge, queued, then dead-lettered with its incarnation
    nudges.clear()
    h.start(wakeup)  # the restarted incarnation
    h.journal.append(text(NUMBER_A, "c", "late"))
    wakeup.signal()  # the next commit
    assert nudges == ["JournalAdvanced"]


def test_coming_back_for_a_full_tenants_conversations_reads_little_per_pump() -> None:
    # Many one-message conversations of a tenant whose window is full (a
    # broadcast's statuses): each pump hands out a few and must not re-read
    # the whole backlog to find that the tenant is full again.
    h = Harness(tenant_window=4, conversation_window=1)
    for i in range(4_000):
        h.journal.append(text(NUMBER_A, f"c{i}", f"w{i}"))
    h.advanced()
    sent = h.take_sent()
    assert len(sent) == 4
    before = h.journal.reads
    for _ in range(5):
        h.settle(sent)
        sent = h.take_sent()
        assert len(sent) == 4
    assert (h.journal.reads - before) / 5 < 200


def test_retirement_waits_while_the_reader_has_not_read_a_tenants_entries() -> None:
    h = Harness(window=1, tenant_window=1, conversation_window=1)
    h.journal.append(text(NUMBER_A, "c", "a1"))
    h.journal.append(text(NUMBER_B, "d", "b1"))  # not read: the window is full
    h.advanced()
    assert h.dispatcher.receive(dispatcher_module.InFlight("firm-b")) > 0


@pytest.mark.parametrize("seed", range(150))
def test_every_update_is_handed_out_once_in_order_and_the_cursor_never_passes_one(
    seed: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A random model check: small windows of every kind, several updates per
    entry, slow steps, failures, cache on and off, settlements in any order
    across conversations (a prefix of each conversation's at a time)."""
    monkeypatch.setattr(entry_reader, "takes_slow_step",
                        lambda event, remote_classifier: "slow" in event.dedupe_key)
    rng = random.Random(seed)
    conversation = rng.choice([1, 2, 3])
    tenant = conversation * rng.choice([1, 2, 3])
    h = Harness(conversation_window=conversation, tenant_window=tenant,
                window=tenant * rng.choice([1, 2]), batch_max=rng.choice([1, 3, 64]),
                max_behind=rng.choice([2, 5, 1000]), parsed_cache_bytes=rng.choice([0, 10**7]),
                window_bytes=rng.choice([10**9, 3000]))
    customers = [(NUMBER_A, f"a{i}") for i in range(4)] + [(NUMBER_B, f"b{i}") for i in range(3)]
    expected: dict[tuple[str, str], list[str]] = {}
    handed: dict[tuple[str, str], list[str]] = {}
    outstanding: dict[tuple[str, str], list] = {}
    seq_of: dict[str, int] = {}
    settled: set[str] = set()
    n = 0

    def collect() -> None:
        for inbound in h.take_sent():
            conversation_key = (inbound.event.tenant, inbound.event.customer)
            handed.setdefault(conversation_key, []).append(inbound.event.dedupe_key)
            outstanding.setdefault(conversation_key, []).append(inbound)

    for _ in range(200):
        if rng.random() < 0.3:
            changes = []
            for _ in range(rng.randint(1, 6)):
                number, customer = rng.choice(customers)
                n += 1
                key = f"w{n}" + ("slow" if rng.random() < 0.1 else "")
                changes.append(text(number, customer, key))
                seq_of[key] = h.journal.last_committed + 1
                tenant_id = "firm-a" if number == NUMBER_A else "firm-b"
                expected.setdefault((tenant_id, customer), []).append(key)
            h.journal.append(*changes)
            h.advanced()
        collect()
        batch = []
        for items in outstanding.values():
            k = rng.randint(0, len(items))
            batch += items[:k]
            del items[:k]
        if batch:
            h.settle(batch)
            settled.update(i.event.dedupe_key for i in batch)
        unsettled = [seq_of[k] for k in seq_of if k not in settled]
        assert not unsettled or h.services.flow.settled_upto < min(unsettled)
    for _ in range(10_000):  # drain
        collect()
        batch = [i for items in outstanding.values() for i in items]
        outstanding.clear()
        if not batch:
            h.advanced()
            if not h.registry.sent:
                break
            continue
        h.settle(batch)
    assert handed == expected
    assert h.services.flow.settled_upto == h.journal.last_committed
    assert h.dispatcher._window.count == 0 and len(h.dispatcher._behind) == 0


def test_a_copy_handed_out_before_the_partition_was_taken_back_never_settles_the_new_one() -> None:
    # Lost and retaken (epoch 1 -> 3): the epoch-1 copy comes back fenced and must
    # leave the epoch-3 copy waiting, whose own settlement then moves the cursor.
    h = Harness()
    h.journal.append(text(NUMBER_A, "c1", "w1"))
    h.advanced()
    (old,) = h.take_sent()
    assert old.epoch == 1
    h.ownership.set({0: 3})
    h.dispatcher.receive(dispatcher_module.OwnershipChanged())
    h.run()
    (new,) = h.take_sent()
    assert new.epoch == 3 and keys([new]) == ["w1"]
    h.dispatcher.receive(dispatcher_module.Settled((dispatcher_module.Processed(
        old.journal_seq, old.event.dedupe_key, fenced=True, epoch=1),)))
    h.run()
    assert h.services.flow.settled_upto == 0  # still waiting for the new copy
    h.settle([new])
    assert h.services.flow.settled_upto == 1
    assert h.dedupe.marked == {new.event.dedupe_key}  # marked once, by the copy that did it
