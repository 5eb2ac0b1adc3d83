"""A business number's circuit opened on one node is open on the others
within a second (through Redis), and each node's breaker keeps its own course
once open; alone, a node shares nothing and needs nothing."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from lawhub_actors.actors import paths
from lawhub_actors.actors.number_breaker import Outcome
from lawhub_actors.adapters.breaker_board import LocalBoard, RedisBoard
from lawhub_actors.core import breaker
from lawhub_actors.runtime import AppRuntime
from lawhub_actors.settings import Secrets
from tests.conftest import test_environment
from tests.waits import until_sync

NUMBER_A = "106540352242922"


def test_a_circuit_opened_elsewhere_opens_a_closed_one_until_the_same_moment() -> None:
    closed = breaker.BreakerState(breaker.BreakerPolicy())
    opened = breaker.opened_elsewhere(closed, 100.0, 130.0, opens=2)
    assert (opened.name, opened.next_probe_at, opened.opens) == (breaker.Circuit.OPEN, 130.0, 2)
    assert breaker.retry_after(opened, 100.0) == 30.0
    assert breaker.opened_elsewhere(closed, 100.0, 90.0, opens=1) is closed  # over already
    probing = breaker.advance(opened, 131.0)
    assert breaker.opened_elsewhere(probing, 131.0, 160.0, opens=3) is probing  # own course


def test_the_board_keeps_an_open_circuit_until_it_may_be_tried_again(redis_url: str) -> None:
    board = RedisBoard(redis_url)
    try:
        board.post(NUMBER_A, time.time() + 0.3, 2)
        until, opens = board.look(NUMBER_A) or (0.0, 0)
        assert opens == 2 and until > time.time()
        time.sleep(0.4)
        assert board.look(NUMBER_A) is None  # expired with the cool-down
        board.post(NUMBER_A, time.time() - 1, 1)  # over already: not posted
        assert board.look(NUMBER_A) is None
    finally:
        board.close()
    away = RedisBoard("redis://127.0.0.1:1/0")
    away.post(NUMBER_A, time.time() + 5, 1)  # Redis away: logged, never raised
    assert away.look(NUMBER_A) is None
    away.close()
    assert LocalBoard().look(NUMBER_A) is None


def test_a_circuit_tripped_on_one_node_is_open_on_another_within_a_second(
        tmp_path: Path, make_settings, redis_url: str) -> None:
    from tests.conftest import SHIPPED_CONFIG

    settings = make_settings(SHIPPED_CONFIG.read_text())
    nodes = [AppRuntime(settings, Secrets.from_env(test_environment(
        tmp_path / name, LAWHUB_REDIS_URL=redis_url)), publish=lambda events: None).start()
        for name in ("a", "b")]
    try:
        def circuit(node: AppRuntime) -> str:
            name, _ = node.circuit(NUMBER_A)  # what the API checks a send against
            return name

        assert [circuit(node) for node in nodes] == ["closed", "closed"]
        nodes[0].tree.registry.tell(paths.breaker_of(NUMBER_A), Outcome(ok=False, trip=True))
        until_sync(lambda: circuit(nodes[1]) == "open", timeout=1.5,
                   what="node b's circuit open after node a's tripped")
        assert circuit(nodes[0]) == "open"
        redis.Redis.from_url(redis_url).flushall()
    finally:
        for node in nodes:
            node.stop()
