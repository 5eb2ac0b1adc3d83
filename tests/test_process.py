"""The real process: ``python run.py`` starts, serves, and ends cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from lawhub_actors.runtime import AppRuntime
from lawhub_actors.web.app import EXIT_GAVE_UP, EXIT_OK, run
from supervisors import Actor, ChildSpec, SupervisorFlags, Tree, supervisor_spec
from tests.conftest import ADMIN_TOKEN, REPO, test_environment


class Served:
    """A ``run.py`` child process whose JSON log lines are read as they come."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        env = {**os.environ, **test_environment(tmp_path / "var")}
        self.process = subprocess.Popen(
            [sys.executable, "run.py", "--port", "0", *args],
            cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for_event(self, event: str, timeout: float = 15.0) -> dict[str, Any]:
        while True:
            line = self.lines.get(timeout=timeout)
            self.seen.append(line)
            record = json.loads(line)
            if record.get("event") == event:
                return record

    def get(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_healthz_and_exits_zero_on_signal_within_5s(tmp_path: Path, signum: int) -> None:
    served = Served(tmp_path)
    try:
        url = served.wait_for_event("listening")["url"]
        status, body = served.get(f"{url}/healthz")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        status, body = served.get(f"{url}/admin/tree", {"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert status == 200 and json.loads(body)["state"] == "running"
        served.process.send_signal(signum)
        assert served.process.wait(timeout=5) == 0
    finally:
        if served.process.poll() is None:
            served.process.kill()
    remaining = served.seen + [served.lines.get() for _ in range(served.lines.qsize())]
    assert any('"stopped_cleanly"' in line for line in remaining)
    assert all(ADMIN_TOKEN not in line for line in remaining)


class Bomb(Actor):
    def receive(self, message: Any) -> Any:
        raise RuntimeError("boom")


def test_run_exits_non_zero_when_the_root_gives_up(settings, secrets) -> None:
    def factory(settings, secrets, publish, on_give_up) -> AppRuntime:
        runtime = AppRuntime(settings, secrets, publish, on_give_up)
        root = supervisor_spec("root", SupervisorFlags(max_restarts=0), [ChildSpec("bomb", Bomb)])
        runtime.tree = Tree(root, on_give_up=on_give_up)
        holder.append(runtime)
        return runtime

    holder: list[AppRuntime] = []
    code = asyncio.run(
        run(settings, secrets, host="127.0.0.1", port=0, runtime_factory=factory,
            started=lambda port: holder[0].tree.tell("bomb", "go"))
    )
    assert code == EXIT_GAVE_UP


def test_a_signal_stops_every_actor_and_leaves_no_thread(settings, secrets) -> None:
    baseline = threading.active_count()
    code = asyncio.run(
        run(settings, secrets, host="127.0.0.1", port=0,
            started=lambda port: os.kill(os.getpid(), signal.SIGTERM))
    )
    assert code == EXIT_OK
    assert threading.active_count() == baseline, [t.name for t in threading.enumerate()]
