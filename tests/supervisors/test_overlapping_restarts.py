"""Two pending restarts that cover the same child (one_for_all): the second
finds it running and leaves it be; nothing crashes the supervisor."""

from __future__ import annotations

import time

from supervisors import Backoff, ChildSpec, Strategy, SupervisorFlags, Tree, supervisor_spec
from tests.supervisors.helpers import Events, Recorder


class _FailsSecondStart(Recorder):
    starts = 0

    def on_start(self) -> None:
        type(self).starts += 1
        if type(self).starts == 2:
            raise RuntimeError("b fails its second start")
        super().on_start()


def test_a_child_started_by_one_pending_restart_is_left_running_by_the_next() -> None:
    events = Events()
    flags = SupervisorFlags(max_restarts=100, period_s=60.0, strategy=Strategy.ONE_FOR_ALL,
                            backoff=Backoff(min_s=0.2, max_s=0.4, multiplier=1.0, jitter=0.0))
    tree = Tree(supervisor_spec("root", flags, [
        ChildSpec("a", lambda: Recorder("a", events), message_retries=0),
        ChildSpec("b", lambda: _FailsSecondStart("b", events), message_retries=0),
    ])).start()
    try:
        tree.tell("a", "crash")  # restart [a, b]; b fails: a restart of [b] is pending
        events.wait_count(("start", "a"), 2)
        tree.tell("a", "crash")  # meanwhile a crashes again: a restart of [a, b] is pending too
        time.sleep(1.5)
        states = {n.path: n.state for n in tree.snapshot().walk()}
        assert not tree.gave_up.is_set()
        assert states["a"] == "running" and states["b"] == "running"
    finally:
        tree.stop()
