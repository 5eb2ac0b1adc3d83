"""Cells' threads run below the priority of the thread that started the tree."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import pytest

from supervisors import Actor, ChildSpec, Tree, supervisor_spec
from supervisors.priority import lower_this_thread
from tests.supervisors.helpers import flags

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")


def _nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def _in_thread(work: Any) -> Any:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join(5)
    return result[0]


class _Tid(Actor):
    def receive(self, message: Any) -> Any:
        return threading.get_native_id()


@linux_only
def test_lower_this_thread_changes_the_calling_thread_only() -> None:
    mine = _nice_of(threading.get_native_id())
    theirs = _in_thread(lambda: (lower_this_thread(mine + 5),
                                 _nice_of(threading.get_native_id())))
    assert theirs == (True, mine + 5)
    assert _nice_of(threading.get_native_id()) == mine


@linux_only
def test_lower_this_thread_never_raises_a_priority() -> None:
    mine = _nice_of(threading.get_native_id())

    def twice() -> tuple[bool, int]:
        lower_this_thread(mine + 6)
        applied = lower_this_thread(mine + 2)
        return applied, _nice_of(threading.get_native_id())

    assert _in_thread(twice) == (True, mine + 6)


def test_nice_outside_0_to_19_is_refused() -> None:
    for nice in (-1, 20):
        with pytest.raises(ValueError, match=r"0\.\.19"):
            lower_this_thread(nice)


def test_zero_leaves_the_thread_as_it_is() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    assert _in_thread(lambda: (lower_this_thread(0), os.getpriority(os.PRIO_PROCESS, 0))) == (
        True, before)


@linux_only
def test_every_cell_runs_at_the_trees_thread_nice_and_the_caller_keeps_its_own() -> None:
    mine = _nice_of(threading.get_native_id())
    tree = Tree(supervisor_spec("root", flags(), [ChildSpec("a", _Tid), ChildSpec("b", _Tid)]),
                thread_nice=mine + 7).start()
    try:
        for name in ("a", "b"):
            assert _nice_of(tree.ask(name, "tid", timeout=2)) == mine + 7
    finally:
        tree.stop()
    assert _nice_of(threading.get_native_id()) == mine
