"""Background priority for a tree's threads.

An actor tree often shares its process with a front that must answer in
milliseconds (an HTTP server on the main thread, say) while its actors
grind through a backlog. CPython's threads are OS threads, and Linux
schedules each on its own: a cell's thread at a higher *nice* value than
the front's yields the CPU to it whenever both want it, and still gets its
share when the front is idle (CFS gives a nice-10 thread a tenth of a
nice-0 one's weight, never nothing).

Only Linux has per-thread priority (``setpriority`` on a thread id); on
other systems :func:`lower_this_thread` changes nothing. It only ever
lowers a priority: raising one needs a privilege a service should not have.
"""

from __future__ import annotations

import os
import sys
import threading

NICE_MAX = 19


def lower_this_thread(nice: int) -> bool:
    """Run the calling thread at ``nice`` (0..19) unless it already runs at
    that or lower priority; whether the thread now runs at ``nice`` or
    lower. 0 leaves it as it is."""
    if not 0 <= nice <= NICE_MAX:
        raise ValueError(f"nice must be within 0..{NICE_MAX}, not {nice}")
    if nice == 0 or sys.platform != "linux":
        return nice == 0
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError:
        return False
    return True
