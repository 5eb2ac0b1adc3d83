"""Test actors and event-based waits (no sleeps as synchronisation)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from supervisors import Actor, Backoff, ChildSpec, Restart, SupervisorFlags

IMMEDIATE = Backoff(min_s=0.0, max_s=0.0, jitter=0.0)


def flags(**overrides: Any) -> SupervisorFlags:
    values: dict[str, Any] = {"max_restarts": 100, "period_s": 60.0, "backoff": IMMEDIATE}
    values.update(overrides)
    return SupervisorFlags(**values)


class Events:
    """A thread-safe log the tests wait on."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._cond = threading.Condition()

    def add(self, item: Any) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    @property
    def items(self) -> list[Any]:
        with self._cond:
            return list(self._items)

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float = 5.0) -> list[Any]:
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(self._items), timeout)
            assert ok, f"timed out waiting; events so far: {self._items}"
            return list(self._items)

    def wait_count(self, item: Any, count: int, timeout: float = 5.0) -> list[Any]:
        return self.wait_for(lambda items: items.count(item) >= count, timeout)


class Recorder(Actor):
    """Records its life; ``crash`` raises, ``exit`` stops normally,
    ``base`` raises a BaseException, anything else is echoed."""

    def __init__(self, name: str, events: Events) -> None:
        self.name = name
        self.events = events

    def on_start(self) -> None:
        self.events.add(("start", self.name))

    def on_stop(self) -> None:
        self.events.add(("stop", self.name))

    def on_failure(self, error: BaseException) -> None:
        self.events.add(("failed", self.name))

    def receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError(f"{self.name} asked to crash")
        if message == "base":
            raise SystemExit(f"{self.name} raised SystemExit")
        if message == "exit":
            self.context.stop()
            return None
        self.events.add(("got", self.name, message))
        return message


def recorder(
    name: str, events: Events, restart: Restart = Restart.PERMANENT, **extra: Any
) -> ChildSpec:
    """A recorder child; the crashing message is not retried unless asked."""
    extra.setdefault("message_retries", 0)
    return ChildSpec(name, lambda: Recorder(name, events), restart=restart, **extra)
