"""Pools: per-key order through a consistent-hash router, even while resizing."""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from typing import Any

import pytest

from supervisors import ChildSpec, Routing, Tree, pool_spec, supervisor_spec
from supervisors.actor import Actor
from supervisors.control import Resize
from tests.supervisors.helpers import flags

PRODUCERS = 8
PER_PRODUCER = 10_000
KEYS = 500


class Sink:
    """Where workers record (worker path, key, producer, seq); signals when all arrived."""

    def __init__(self, expected: int) -> None:
        self.records: list[tuple[str, str, int, int]] = []
        self._count = itertools.count(1)
        self._expected = expected
        self.done = threading.Event()

    def add(self, record: tuple[str, str, int, int]) -> None:
        self.records.append(record)  # list.append is atomic under the GIL
        if next(self._count) == self._expected:
            self.done.set()


class Worker(Actor):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def receive(self, message: Any) -> Any:
        key, producer, seq = message
        self.sink.add((self.context.path, key, producer, seq))


def _produce(tree: Tree, producer: int, reached: dict[int, threading.Event]) -> None:
    for seq in range(PER_PRODUCER):
        key = f"conversation-{(seq * 7 + producer) % KEYS}"
        tree.tell("pool", (key, producer, seq), key=key)
        if seq in reached and producer == 0:
            reached[seq].set()


def _run(start_tree, resize_steps: list[tuple[int, int]]) -> tuple[Sink, Tree]:
    sink = Sink(PRODUCERS * PER_PRODUCER)
    worker = ChildSpec("w", lambda: Worker(sink))
    tree = start_tree(supervisor_spec("root", flags(), [pool_spec("pool", worker, 4)]))
    reached = {at: threading.Event() for at, _ in resize_steps}
    threads = [
        threading.Thread(target=_produce, args=(tree, p, reached)) for p in range(PRODUCERS)
    ]
    for thread in threads:
        thread.start()
    for at, size in resize_steps:
        assert reached[at].wait(30)
        tree.registry.ask_node("pool", Resize(size), timeout=10)
    for thread in threads:
        thread.join(60)
    assert sink.done.wait(60), f"only {len(sink.records)} of {PRODUCERS * PER_PRODUCER} arrived"
    return sink, tree


def _assert_each_key_in_send_order(sink: Sink) -> None:
    last: dict[tuple[str, int], int] = defaultdict(lambda: -1)
    seen = set()
    for _, key, producer, seq in sink.records:
        assert seq > last[(key, producer)], f"{key} from producer {producer}: {seq} after {last[(key, producer)]}"
        last[(key, producer)] = seq
        seen.add((producer, seq))
    assert len(seen) == len(sink.records) == PRODUCERS * PER_PRODUCER  # none lost, none twice


def test_every_key_is_handled_in_send_order_by_one_worker(start_tree) -> None:
    sink, _ = _run(start_tree, [])
    _assert_each_key_in_send_order(sink)
    workers_per_key = defaultdict(set)
    for worker, key, _, _ in sink.records:
        workers_per_key[key].add(worker)
    assert all(len(workers) == 1 for workers in workers_per_key.values())
    assert len(workers_per_key) == KEYS


def test_order_holds_while_the_pool_grows_and_shrinks(start_tree) -> None:
    sink, tree = _run(start_tree, [(2_500, 8), (6_000, 2)])
    _assert_each_key_in_send_order(sink)
    pool = next(node for node in tree.snapshot().walk() if node.path == "pool")
    assert pool.info["routing"] == "hash" and pool.info["size"] == 2
    assert [child.path for child in pool.children] == ["pool/0", "pool/1"]
    assert all(child.restarts_total == 0 for child in pool.children)
    used = {worker for worker, *_ in sink.records}
    assert {"pool/4", "pool/7"} <= used  # the grown workers really took traffic


def test_round_robin_pool_spreads_messages_over_all_workers(start_tree) -> None:
    sink = Sink(400)
    worker = ChildSpec("w", lambda: Worker(sink))
    spec = pool_spec("pool", worker, 4, routing=Routing.ROUND_ROBIN)
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    for i in range(400):
        tree.tell("pool", ("k", 0, i))
    assert sink.done.wait(10)
    per_worker = defaultdict(int)
    for worker_path, *_ in sink.records:
        per_worker[worker_path] += 1
    assert sorted(per_worker.values()) == [100, 100, 100, 100]


class Gated(Actor):
    """Holds ``"slow"`` until the gate opens; records everything else at once."""

    def __init__(self, sink: Sink, gate: threading.Event, holding: threading.Event) -> None:
        self.sink, self.gate, self.holding = sink, gate, holding

    def receive(self, message: Any) -> Any:
        if message == "slow":
            self.holding.set()
            assert self.gate.wait(10)
        else:
            self.sink.add((self.context.path, "k", 0, message))


def test_a_least_busy_pool_routes_around_a_worker_held_by_a_slow_message(start_tree) -> None:
    sink, gate, holding = Sink(10), threading.Event(), threading.Event()
    worker = ChildSpec("w", lambda: Gated(sink, gate, holding))
    spec = pool_spec("pool", worker, 2, routing=Routing.LEAST_BUSY)
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    tree.tell("pool", "slow")
    assert holding.wait(5)
    try:
        for i in range(10):  # one at a time: round-robin would hand every other one to the held worker
            tree.tell("pool", i)
            for _ in range(500):
                if len(sink.records) > i:
                    break
                threading.Event().wait(0.01)
            else:
                raise AssertionError(f"message {i} waits behind the slow one")
        assert len({path for path, *_ in sink.records}) == 1
    finally:
        gate.set()


def test_a_hash_pool_refuses_a_message_without_a_key(start_tree) -> None:
    worker = ChildSpec("w", lambda: Worker(Sink(1)))
    tree = start_tree(supervisor_spec("root", flags(), [pool_spec("pool", worker, 2)]))
    with pytest.raises(ValueError, match="needs a key"):
        tree.tell("pool", ("k", 0, 0))


def test_a_round_robin_pool_resized_under_load_loses_no_message(start_tree) -> None:
    total = 6_000
    sink = Sink(total)
    worker = ChildSpec("w", lambda: Worker(sink))
    spec = pool_spec("pool", worker, 4, routing=Routing.ROUND_ROBIN)
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    for i in range(total):
        tree.tell("pool", ("k", 0, i))
        if i == 2_000:
            tree.registry.ask_node("pool", Resize(6), timeout=10)
        if i == 4_000:
            tree.registry.ask_node("pool", Resize(1), timeout=10)
    assert sink.done.wait(30)
    assert sorted(seq for *_, seq in sink.records) == list(range(total))
    assert {path for path, *_ in sink.records} >= {"pool/5"}
