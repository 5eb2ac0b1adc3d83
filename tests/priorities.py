"""Whether this process may raise a thread's priority (CAP_SYS_NICE, or an
RLIMIT_NICE that allows it), found by trying in a thread of its own (Linux
sets nice per thread: the test's own stays as it is)."""

from __future__ import annotations

import os
import threading


def may_raise_priority() -> bool:
    answer: list[bool] = []

    def attempt() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) - 1)
        except OSError:
            answer.append(False)
        else:
            answer.append(True)

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join(5)
    return answer == [True]
