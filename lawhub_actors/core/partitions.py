"""Partitions of the conversations, and who should own them (pure).

Every conversation — a tenant and a customer key — falls in one of P
partitions by a stable hash (:func:`partition_of`: the same on every node,
in every process, across restarts). Each partition is owned by one live
node at a time through a lease with a fencing epoch (the database holds
them; :mod:`lawhub_actors.adapters.leases`). This module decides, from one
reading of the leases and of which nodes are alive, what a node should
take and what it should give up (:func:`plan`): every live node aims at
its fair share, partitions nobody holds (free, or held by a node whose
lease ran out) are taken first, and a node gives partitions up only while
another live node is below its share and nothing is free — so nodes that
join and leave end up balanced without handing partitions back and forth.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass


def partition_of(tenant: str, key: str, partitions: int) -> int:
    """The partition of the conversation ``(tenant, key)`` among ``partitions``."""
    digest = hashlib.blake2b(f"{tenant}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


@dataclass(frozen=True, slots=True)
class Lease:
    partition: int
    owner: str | None
    epoch: int
    """Raised by one at every change of owner: a write made under an older
    epoch is refused (fencing)."""
    until: float
    """When the lease runs out unless renewed (seconds since the epoch)."""

    def held(self, now: float) -> bool:
        return self.owner is not None and self.until > now


@dataclass(frozen=True, slots=True)
class Plan:
    take: tuple[Lease, ...] = ()
    """Leases to take (each at the epoch read: a race another node won fails)."""
    give_up: tuple[int, ...] = ()
    """Partitions of ours to release."""


def fair_share(partitions: int, live: Collection[str], node: str) -> int:
    """How many partitions ``node`` should own among the ``live`` nodes: an
    equal share, the remainder going one each to the first nodes by name."""
    nodes = sorted({*live, node})
    base, extra = divmod(partitions, len(nodes))
    return base + (1 if nodes.index(node) < extra else 0)


def plan(node: str, leases: Sequence[Lease], live: Collection[str], now: float,
         held: Mapping[int, int]) -> Plan:
    """What ``node`` should do now, given every partition's lease, the nodes
    alive (``node`` itself counts as alive) and the epochs it ``held`` them
    at. A lease in ``node``'s name at another epoch is an earlier
    incarnation's (a restart under the same name): free to take at once."""
    live = {*live, node}
    mine = [lease for lease in leases
            if lease.owner == node and held.get(lease.partition) == lease.epoch]
    share = fair_share(len(leases), live, node)
    if len(mine) < share:
        free = [lease for lease in leases if lease not in mine and (
            lease.owner == node or not lease.held(now) or lease.owner not in live)]
        return Plan(take=tuple(free[:share - len(mine)]))
    surplus = len(mine) - share
    if surplus <= 0:
        return Plan()
    held_by = {other: 0 for other in live}
    unheld = 0
    for lease in leases:
        if lease.held(now) and lease.owner in live:
            held_by[lease.owner] = held_by.get(lease.owner, 0) + 1
        elif lease.owner != node:
            unheld += 1
    wanting = sum(max(0, fair_share(len(leases), live, other) - count)
                  for other, count in held_by.items() if other != node)
    give = min(surplus, max(0, wanting - unheld))
    return Plan(give_up=tuple(sorted(lease.partition for lease in mine)[len(mine) - give:]))
