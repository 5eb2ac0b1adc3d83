"""The restart decision, as data (OTP's ``restart_child`` cases).

``should_restart`` answers whether a child's exit calls for a restart at
all; ``plan`` says which children to stop (in reverse start order) and
which to start again (in start order) under a strategy.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from supervisors.spec import Restart, Strategy


class ExitKind(enum.StrEnum):
    """Why a child's actor stopped running its handler.

    ``normal``: it stopped itself (or was passivated); ``shutdown``: its
    supervisor stopped it; ``crash``: a handler, ``on_start`` or the factory
    raised (any ``BaseException``).
    """

    NORMAL = "normal"
    SHUTDOWN = "shutdown"
    CRASH = "crash"


_RESTART_TABLE: dict[tuple[Restart, ExitKind], bool] = {
    (Restart.PERMANENT, ExitKind.NORMAL): True,
    (Restart.PERMANENT, ExitKind.SHUTDOWN): True,
    (Restart.PERMANENT, ExitKind.CRASH): True,
    (Restart.TRANSIENT, ExitKind.NORMAL): False,
    (Restart.TRANSIENT, ExitKind.SHUTDOWN): False,
    (Restart.TRANSIENT, ExitKind.CRASH): True,
    (Restart.TEMPORARY, ExitKind.NORMAL): False,
    (Restart.TEMPORARY, ExitKind.SHUTDOWN): False,
    (Restart.TEMPORARY, ExitKind.CRASH): False,
}


def should_restart(restart: Restart, exit_kind: ExitKind) -> bool:
    return _RESTART_TABLE[(restart, exit_kind)]


@dataclass(frozen=True, slots=True)
class Plan:
    """Children to stop, already in reverse start order, then to start, in order."""

    stop: tuple[str, ...]
    start: tuple[str, ...]


def plan(
    strategy: Strategy, ids: list[str], failed: str, temporary: frozenset[str] = frozenset()
) -> Plan:
    """What to do when ``failed`` (one of ``ids``, in start order) must restart.

    Siblings in ``temporary`` are stopped with the others but never started
    again: as in OTP, a temporary child is not restarted for any reason, a
    sibling's restart included, so its supervisor forgets it."""
    index = ids.index(failed)
    if strategy is Strategy.ONE_FOR_ONE:
        affected = [failed]
    elif strategy is Strategy.ONE_FOR_ALL:
        affected = list(ids)
    else:
        affected = ids[index:]
    others = [child for child in affected if child != failed]
    start = [child for child in affected if child == failed or child not in temporary]
    return Plan(stop=tuple(reversed(others)), start=tuple(start))
