"""Partitions: a stable hash, fair shares, and plans that balance nodes
joining and leaving without handing partitions back and forth."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lawhub_actors.core.partitions import Lease, Plan, fair_share, partition_of, plan

NOW = 1_000.0


def _leases(owners: list[str | None], until: float = NOW + 10) -> list[Lease]:
    return [Lease(p, owner, 1, until if owner else 0.0) for p, owner in enumerate(owners)]


def _held(node: str, leases: list[Lease]) -> dict[int, int]:
    """What ``node`` holds of ``leases`` (at their epochs)."""
    return {lease.partition: lease.epoch for lease in leases if lease.owner == node}


def test_a_conversation_always_falls_in_the_same_partition() -> None:
    assert partition_of("firm-a", "6281234500001", 64) == partition_of("firm-a", "6281234500001", 64)
    assert partition_of("firm-a", "6281234500001", 64) == 22  # pinned: every node agrees
    spread = {partition_of("firm-a", f"62812345{n:05d}", 64) for n in range(2_000)}
    assert len(spread) == 64


def test_shares_add_up_to_every_partition_and_differ_by_one_at_most() -> None:
    nodes = ["c", "a", "b"]
    shares = [fair_share(64, nodes, node) for node in nodes]
    assert sum(shares) == 64 and max(shares) - min(shares) <= 1


def test_a_first_node_takes_every_partition() -> None:
    decided = plan("a", _leases([None] * 8), ["a"], NOW, {})
    assert [lease.partition for lease in decided.take] == list(range(8))


def test_a_dead_nodes_partitions_are_taken_once_its_lease_runs_out() -> None:
    leases = [*_leases(["a"] * 4), *_leases(["a"] * 4 + ["b"] * 4, until=NOW - 1)[4:]]
    decided = plan("a", leases, ["a"], NOW, _held("a", leases))
    assert [lease.partition for lease in decided.take] == [4, 5, 6, 7]


def test_a_live_nodes_partitions_are_never_taken() -> None:
    decided = plan("c", _leases(["a"] * 4 + ["b"] * 4), ["a", "b", "c"], NOW, {})
    assert decided == Plan()  # c waits for a and b to give some up


def test_a_node_over_its_share_gives_up_only_what_a_newcomer_lacks() -> None:
    leases = _leases(["a"] * 8)
    assert plan("a", leases, ["a", "b"], NOW, _held("a", leases)).give_up == (4, 5, 6, 7)
    # Free partitions cover the newcomer: nothing is given up.
    leases = _leases(["a"] * 4 + [None] * 4)
    assert plan("a", leases, ["a", "b"], NOW, _held("a", leases)) == Plan()


def test_a_node_restarted_under_its_name_takes_its_earlier_incarnations_leases_at_once() -> None:
    leases = _leases(["a"] * 4)  # held, not run out: the earlier incarnation's
    decided = plan("a", leases, ["a"], NOW, {})
    assert [lease.partition for lease in decided.take] == [0, 1, 2, 3]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(1, 5), st.integers(0, 2**32))
def test_nodes_planning_in_turn_settle_on_fair_shares_and_then_stop(
        partitions: int, node_count: int, seed: int) -> None:
    import random

    chooser = random.Random(seed)
    nodes = [f"n{i}" for i in range(node_count)]
    owners: list[str | None] = [chooser.choice([None, *nodes]) for _ in range(partitions)]
    moves = 0
    for _ in range(4 * node_count + 4):
        for node in nodes:
            leases = [Lease(p, owner, 1, NOW + 10 if owner else 0.0)
                      for p, owner in enumerate(owners)]
            decided = plan(node, leases, nodes, NOW, _held(node, leases))
            for lease in decided.take:
                owners[lease.partition] = node
            for partition in decided.give_up:
                owners[partition] = None
            moves += len(decided.take) + len(decided.give_up)
    counts = {node: owners.count(node) for node in nodes}
    assert None not in owners
    assert all(counts[node] == fair_share(partitions, nodes, node) for node in nodes), counts
    assert moves <= 3 * partitions  # settled, not handing back and forth
