"""A clock for code that takes one: frozen until the test moves it."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1_767_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
