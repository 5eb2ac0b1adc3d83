"""A picture of the whole tree for operators, taken without asking any actor.

Supervisors keep each node's state and restart counts in the registry as
they act, so a snapshot is a read of shared records: it answers even while
an actor is busy or restarting, and it never queues behind a mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from supervisors.registry import Node, Registry, parent_of


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    path: str
    id: str
    kind: str
    state: str
    restarts_total: int
    restarts_in_period: int
    mailbox_depth: int
    info: dict[str, Any] = field(default_factory=dict)
    children: tuple[NodeSnapshot, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "restarts": {"total": self.restarts_total, "in_period": self.restarts_in_period},
            "mailbox_depth": self.mailbox_depth,
            **({"info": self.info} if self.info else {}),
            "children": [child.to_dict() for child in self.children],
        }

    def walk(self) -> list[NodeSnapshot]:
        """This node and every descendant, depth first."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found


def take(registry: Registry, now: float, root: str = "", root_id: str = "root") -> NodeSnapshot:
    nodes = registry.nodes()
    by_parent: dict[str, list[Node]] = {}
    for node in nodes:
        if node.path != root:
            by_parent.setdefault(parent_of(node.path), []).append(node)
    top = registry.get(root)

    def build(node: Node) -> NodeSnapshot:
        kids = sorted(by_parent.get(node.path, []), key=lambda n: n.order)
        return NodeSnapshot(
            path=node.path,
            id=node.path.rpartition("/")[2] or root_id,
            kind=node.kind,
            state=node.state,
            restarts_total=node.restarts.total,
            restarts_in_period=node.restarts.within(now, node.period_s),
            mailbox_depth=node.mailbox.depth(),
            info={
                **node.details,
                **(node.router.describe() if node.router is not None else {}),
            },
            children=tuple(build(kid) for kid in kids),
        )

    return build(top)
