from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from supervisors import ChildSpec, Tree


@pytest.fixture
def start_tree() -> Iterator[Callable[..., Tree]]:
    """Starts trees and stops every one of them after the test."""
    started: list[Tree] = []

    def start(root: ChildSpec, **options: Any) -> Tree:
        tree = Tree(root, **options)
        started.append(tree)
        return tree.start()

    yield start
    for tree in started:
        tree.stop()


@pytest.fixture
def events():
    from tests.supervisors.helpers import Events

    return Events()


@pytest.fixture
def thread_baseline() -> int:
    return threading.active_count()
