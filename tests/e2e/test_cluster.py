"""Three gateway nodes on one PostgreSQL and Redis, as real processes: every
message acknowledged by any node is stored once and fed once, each
conversation in order, through a node's kill -9 (its partitions taken over
within the lease) and a node stopped past its lease (SIGSTOP), which writes
nothing for the partitions it lost when it wakes."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.e2e.cluster_helpers import (
    Cluster,
    TakeoverWatch,
    conversations,
    post_rounds,
    received_events,
    until,
)
from tests.e2e.outbound_helpers import gateways  # noqa: F401 - the fixture

LEASE_S = 3.0


def _balanced(cluster: Cluster, names: list[str]) -> bool:
    owners = cluster.owners()
    return set(owners) == set(names) and max(owners.values()) - min(owners.values()) <= 1


def _check_everything_once_in_order(cluster: Cluster, acked: dict[str, list[str]]) -> None:
    total = sum(map(len, acked.values()))
    until(lambda: sum(map(len, cluster.stored().values())) >= total, timeout=120,
          what=f"all {total} acknowledged messages stored")
    stored = cluster.stored()
    for customer, wamids in acked.items():
        mine = [w for w in stored.get(customer, []) if w in set(wamids)]
        assert mine == wamids, f"{customer}: stored {mine}, acknowledged {wamids}"
    assert sum(map(len, stored.values())) == total  # nothing unacknowledged, nothing twice
    fed = received_events(cluster.store)
    assert all(fed.get(w) == 1 for ws in acked.values() for w in ws), "fed twice or never"


@pytest.mark.timeout(300)
def test_a_node_killed_mid_load_loses_nothing_and_its_partitions_are_taken_within_the_lease(
        cluster: Cluster) -> None:
    names = ["node-1", "node-2", "node-3"]
    nodes = [cluster.start(name) for name in names]
    until(lambda: _balanced(cluster, names), timeout=30, what="the partitions shared by three")
    watch = TakeoverWatch(cluster, dead="node-3")

    def kill_in_round_four(round_: int) -> None:
        if round_ == 4:
            nodes[2].kill()
            watch.start()

    acked = asyncio.run(post_rounds([n.url for n in nodes], conversations(600), rounds=10,
                                    per_post=10, between_rounds=kill_in_round_four))
    assert sum(map(len, acked.values())) == 6_000  # every POST answered by a live node
    # Taken within the lease, plus one tick of the keepers (lease_s / 3) to notice.
    assert watch.took(timeout=LEASE_S * 3) <= LEASE_S * 4 / 3 + 0.5
    assert _balanced(cluster, names[:2])
    _check_everything_once_in_order(cluster, acked)
    assert all(node.errors() == [] for node in nodes[:2]), [n.errors() for n in nodes[:2]]


@pytest.mark.timeout(300)
def test_a_node_stopped_past_its_lease_writes_nothing_for_the_partitions_it_lost(
        cluster: Cluster) -> None:
    names = ["node-1", "node-2", "node-3"]
    nodes = [cluster.start(name) for name in names]
    until(lambda: _balanced(cluster, names), timeout=30, what="the partitions shared by three")
    frozen = nodes[1]

    def freeze_in_round_three(round_: int) -> None:
        if round_ == 3:
            frozen.process.send_signal(signal.SIGSTOP)
            until(lambda: _balanced(cluster, ["node-1", "node-3"]), timeout=LEASE_S * 4,
                  what="the stopped node's partitions taken over")
        if round_ == 6:
            frozen.process.send_signal(signal.SIGCONT)

    urls = [nodes[0].url, nodes[2].url]  # Meta's retries reach the live ones
    acked = asyncio.run(post_rounds(urls, conversations(300), rounds=10, per_post=10,
                                    between_rounds=freeze_in_round_three))
    _check_everything_once_in_order(cluster, acked)
    lost = frozen.wait_for_event("partitions_lost", timeout=LEASE_S * 2)
    assert lost["node"] == "node-2" and lost["partitions"]  # it woke to find them gone
    until(lambda: _balanced(cluster, names), timeout=LEASE_S * 6,
          what="the woken node back to its share")
    time.sleep(LEASE_S)  # whatever the woken node still had in flight has settled
    _check_everything_once_in_order(cluster, acked)
