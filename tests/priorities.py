"""Whether this process may lower a thread's nice value to ``to``
(CAP_SYS_NICE, or an RLIMIT_NICE that allows it), found by trying in a
thread of its own (Linux sets nice per thread: the test's own stays as it
is)."""

from __future__ import annotations

import os
import threading


def may_raise_priority(to: int) -> bool:
    answer: list[bool] = []

    def attempt() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, to)
        except OSError:
            answer.append(False)
        else:
            answer.append(os.getpriority(os.PRIO_PROCESS, 0) == to)

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join(5)
    return answer == [True]
