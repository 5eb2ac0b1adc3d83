"""``[server] processes = N``: N nodes of this machine behind one port.

The command that was asked to serve becomes a small supervisor: it picks
the port (reserving port 0's pick for all of them), starts N ``run.py
serve`` processes, each a whole node named ``<node>/<i>`` that binds the
port with ``SO_REUSEPORT`` (the kernel spreads the connections), and stays
with them:

- SIGTERM and SIGINT go to every node (each finishes what it has in flight
  and hands its partitions over); the group exits 0 when all exit 0.
- SIGHUP goes to the first node: it reads the config file again and, when
  it applies a change, stores it; the others are told and run it (each
  node reading the file itself would store and audit the one change N
  times).
- Each node dies with the group (``PR_SET_PDEATHSIG``): a group killed
  outright leaves no node serving behind it under a name a new group
  would take again.
- A node that exits on its own is started again after a pause that
  doubles up to :data:`MAX_PAUSE_S`; its partitions are taken over by the
  others meanwhile (the lease), so nothing waits for it. More than
  :data:`MAX_RESTARTS` within :data:`RESTART_WINDOW_S` ends the group
  (exit 1): a node that cannot stay up is for the operator to see.

Secrets stay in the environment each node inherits; nothing secret is on
a command line.
"""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

log = structlog.get_logger("lawhub.processes")

MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 10.0
POLL_S = 0.2
EXIT_GAVE_UP = 1
PR_SET_PDEATHSIG = 1


@dataclass
class _Node:
    index: int
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    pause_s: float = FIRST_PAUSE_S
    due: float = 0.0
    """When to start it again (after it exited on its own)."""

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own run.py, our arguments
            self.command,
            preexec_fn=_die_with_parent)  # noqa: PLW1509 - the supervisor has one thread
        log.info("node_started", index=self.index, pid=self.process.pid)


@dataclass
class ProcessGroup:
    nodes: list[_Node]
    restarts: deque[float] = field(default_factory=deque)
    stopping: bool = False
    gave_up: bool = False

    def signal_all(self, signum: int) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signum)

    def reload(self) -> None:
        """SIGHUP to the first node still running (the others follow its change)."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGHUP)
                return

    def run(self) -> int:
        for node in self.nodes:
            node.start()
        while True:
            now = time.monotonic()
            running = 0
            for node in self.nodes:
                code = None if node.process is None else node.process.poll()
                if node.process is not None and code is None:
                    running += 1
                    continue
                if self.stopping:
                    continue
                if node.process is not None:  # it ended on its own
                    log.error("node_exited", index=node.index, code=code,
                              again_in_s=node.pause_s)
                    self._count_restart(now)
                    node.process, node.due = None, now + node.pause_s
                    node.pause_s = min(node.pause_s * 2, MAX_PAUSE_S)
                if node.due <= now and not self.stopping:
                    node.start()
                    running += 1
                    if self.stopping:  # a stop came while it started: it goes too
                        self.signal_all(signal.SIGTERM)
            if self.stopping and running == 0:
                if self.gave_up:
                    return EXIT_GAVE_UP
                codes = [n.process.returncode if n.process else 0 for n in self.nodes]
                failed = [code for code in codes if code != 0]
                return 0 if not failed else failed[0] if failed[0] > 0 else EXIT_GAVE_UP
            if len(self.restarts) > MAX_RESTARTS and not self.stopping:
                log.critical("node_group_gave_up", restarts=len(self.restarts),
                             within_s=RESTART_WINDOW_S)
                self.stopping = self.gave_up = True
                self.signal_all(signal.SIGTERM)
            time.sleep(POLL_S)

    def _count_restart(self, now: float) -> None:
        self.restarts.append(now)
        while self.restarts and now - self.restarts[0] > RESTART_WINDOW_S:
            self.restarts.popleft()


def _die_with_parent() -> None:
    """In the node's process before it runs: SIGTERM when the group dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def serve_group(*, processes: int, config: Path, host: str, port: int, node: str | None,
                run_py: Sequence[str] | None = None) -> int:
    """Run ``processes`` nodes on ``host:port`` until a signal; the exit code.
    ``node``: the nodes' common name (default: host name and port)."""
    reserved: socket.socket | None = None
    if port == 0:  # one pick for all: held (bound, never listening) while they run
        family = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0][0]
        reserved = socket.socket(family, socket.SOCK_STREAM)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserved.bind((host, 0))
        port = int(reserved.getsockname()[1])
    node = node or f"{socket.gethostname()}:{port}"
    base = list(run_py or [sys.executable, str(Path(__file__).resolve().parent.parent / "run.py")])
    group = ProcessGroup([
        _Node(i, [*base, "serve", "--config", str(config), "--host", host, "--port", str(port),
                  "--node-id", f"{node}/{i}", "--in-group"])
        for i in range(processes)])

    def forward(signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            group.reload()
            return
        group.stopping = True
        group.signal_all(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    log.info("node_group_starting", processes=processes, port=port, node=node)
    try:
        return group.run()
    finally:
        if reserved is not None:
            reserved.close()


__all__ = ["ProcessGroup", "serve_group"]
