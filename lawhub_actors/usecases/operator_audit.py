"""What operators do to the running gateway, audited for them: a config
change (who, through which door, what changed, what the tree could not
adopt) and a rehearsed failure. Each is one audit entry under the
operators' own name (``_operators``), read back by ``GET /admin/config/history``."""

from __future__ import annotations

import uuid
from typing import Any

from lawhub_actors.adapters.store_reads import audited_entries
from lawhub_actors.adapters.store_tx import OPERATORS, Tx

CONFIG_CHANGE = "config_change"


def config_changed(tx: Tx, *, by: str, via: str, changes: list[dict[str, Any]],
                   not_adopted: list[str]) -> None:
    tx.audit(f"config:{uuid.uuid4().hex}", OPERATORS, CONFIG_CHANGE, via,
             {"by": by, "via": via, "changes": changes, "not_adopted": not_adopted})


def config_history(tx: Tx) -> list[dict[str, Any]]:
    return audited_entries(tx, OPERATORS, CONFIG_CHANGE)


def fault_injected(tx: Tx, *, path: str, kind: str, by: str) -> None:
    tx.audit(f"fault:{uuid.uuid4().hex}", OPERATORS, "fault_injected", path,
             {"kind": kind, "by": by})
