"""GCRA state stores: in memory, and shared through a real redis-server (Lua)."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from lawhub_actors.adapters.rate_store import (
    KEY_PREFIX,
    TAT_ORIGIN_S,
    MemoryRateStore,
    RateStore,
    RedisRateStore,
    rate_store_from,
)
from lawhub_actors.core.gcra import SLACK_S, Rate, reserve

REPO = Path(__file__).resolve().parents[2]


class RealTime:
    """Redis runs on the real clock. A wait and a TAT are 1-Lipschitz in "now"
    (sums and maxima of it), so a wait expected as if the test took no time
    can be off by at most the time the test took since it began, less the
    sleeps it planned (the expectations include those)."""

    def __init__(self) -> None:
        self._began = time.monotonic()
        self._planned = 0.0

    def sleep(self, seconds: float) -> None:
        self._planned += seconds
        time.sleep(seconds)

    def tolerance(self) -> float:
        return time.monotonic() - self._began - self._planned + 0.001

    def approx(self, expected: object) -> object:
        return pytest.approx(expected, abs=self.tolerance())


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """A store plus a way to let time pass for it."""

    store: RateStore
    advance: Callable[[float], None]
    approx: Callable[[object], object]


@pytest.fixture(params=["memory", "redis"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "redis":
        store: RateStore = RedisRateStore(request.getfixturevalue("redis_url"))
        real = RealTime()
        yield Harness(store, real.sleep, real.approx)
    else:
        clock = FakeClock()

        def advance(seconds: float) -> None:
            clock.now += seconds

        store = MemoryRateStore(clock=clock)
        yield Harness(store, advance, lambda expected: pytest.approx(expected, abs=1e-9))
    store.close()


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[RedisRateStore]:
    store = RedisRateStore(redis_url)
    yield store
    store.close()


def max_in_window(starts: list[float], window: float = 1.0) -> int:
    """The most start times that fall within any `window` seconds."""
    ordered = sorted(starts)
    best, first = 0, 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


JITTER_S = 0.02
"""Start times measured as time.time() after the reply + wait are late by the round trip."""


def conforms(starts: list[float], rate: Rate, slack: float = 0.0) -> bool:
    """GCRA conformance: any n of the permits span at least (n - burst) * T."""
    s = sorted(starts)
    return all(
        s[j] - s[i] >= (j - i + 1 - rate.burst) * rate.interval - slack
        for i in range(len(s))
        for j in range(i + rate.burst, len(s))
    )


def run_in_threads(target: Callable[..., None], args: list[tuple[object, ...]]) -> None:
    """Runs ``target(*a)`` for each ``a`` in ``args``, each in its own thread, all at once;
    returns when every one has ended."""
    threads = [threading.Thread(target=target, args=a) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def server_time_us(client: redis.Redis) -> int:
    """Redis TIME as the store keeps it: microseconds since TAT_ORIGIN_S."""
    seconds, micros = client.time()
    return (seconds - TAT_ORIGIN_S) * 1_000_000 + micros


# ------------------------------------------------------------ both stores


def test_both_stores_are_rate_stores(harness: Harness) -> None:
    assert isinstance(harness.store, RateStore)


def test_a_burst_is_immediate_then_spaced_by_the_interval(harness: Harness) -> None:
    rate = Rate.every(1.0, burst=3)
    waits = [harness.store.reserve("number", rate) for _ in range(6)]
    assert waits == harness.approx([0.0, 0.0, 0.0, 1.0, 2.0, 3.0])


def test_keys_are_independent(harness: Harness) -> None:
    rate = Rate.every(1.0)
    assert harness.store.reserve("a", rate) == 0.0
    assert harness.store.reserve("b", rate) == 0.0
    assert harness.store.reserve("a", rate) == harness.approx(1.0)


def test_idle_time_is_credit_up_to_the_burst_only(harness: Harness) -> None:
    rate = Rate(20.0, burst=3)  # T = 50 ms
    first = [harness.store.reserve("k", rate) for _ in range(5)]
    assert first == harness.approx([0.0, 0.0, 0.0, 0.05, 0.10])
    harness.advance(0.5)  # far longer than the queue: credit is capped at the burst
    again = [harness.store.reserve("k", rate) for _ in range(5)]
    assert again == harness.approx([0.0, 0.0, 0.0, 0.05, 0.10])


def test_reserve_all_waits_for_the_stricter_limit_and_advances_both(harness: Harness) -> None:
    store = harness.store
    throughput = Rate(10.0)  # the number: T = 0.1 s
    pair = Rate.every(1.0)  # (number, recipient): T = 1 s
    waits = [store.reserve_all([("number", throughput), ("number:alice", pair)]) for _ in range(3)]
    assert waits == harness.approx([0.0, 1.0, 2.0]), "the pair rate is the stricter"
    # Both TATs moved as if each permit was used at its start: the number's
    # last permit started at 2.0, so its next one is at 2.1, not at 0.3.
    assert store.reserve_all([("number", throughput), ("number:bob", pair)]) == harness.approx(2.1)
    assert store.reserve("number:alice", pair) == harness.approx(3.0)
    assert store.reserve("number", throughput) == harness.approx(2.2)


def test_a_permit_the_pair_rate_delays_holds_the_number_until_it_starts(
    harness: Harness,
) -> None:
    """The price of "as if used at its start": one TAT per key cannot leave a
    hole, so the number's next permit, for any recipient, comes after the
    delayed one. Callers should reserve under a pair only when it is due."""
    store = harness.store
    throughput, pair = Rate(80.0), Rate.every(6.0)
    assert store.reserve_all([("number", throughput), ("number:alice", pair)]) == 0.0
    assert store.reserve_all([("number", throughput), ("number:alice", pair)]) == harness.approx(
        6.0
    )
    assert store.reserve_all([("number", throughput), ("number:bob", pair)]) == harness.approx(
        6.0 + 1 / 80
    )


def test_reserve_all_of_one_key_is_reserve(harness: Harness) -> None:
    rate = Rate(5.0, burst=2)
    alone = [harness.store.reserve("a", rate) for _ in range(5)]
    together = [harness.store.reserve_all([("b", rate)]) for _ in range(5)]
    assert together == harness.approx(alone)


def test_reserve_all_without_limits_is_immediate(harness: Harness) -> None:
    assert harness.store.reserve_all([]) == 0.0


def test_reserve_all_rejects_a_key_given_twice(harness: Harness) -> None:
    with pytest.raises(ValueError, match="only once"):
        harness.store.reserve_all([("k", Rate(1.0)), ("k", Rate(2.0))])
    assert harness.store.reserve("k", Rate(1.0)) == 0.0, "nothing was reserved"


# ------------------------------------------------------------------ memory


def test_memory_follows_gcra_reserve_exactly_on_its_clock() -> None:
    clock = FakeClock(50.0)
    store = MemoryRateStore(clock=clock)
    rate = Rate(3.0, burst=4)
    tat: float | None = None
    for step in [0.0, 0.01, 0.0, 0.2, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0]:
        clock.now += step
        expected = reserve(tat, clock.now, rate)
        assert store.reserve("k", rate) == expected.start_at - clock.now
        tat = expected.tat
        assert store.tat("k") == tat


def test_memory_never_grants_more_when_the_clock_goes_backwards() -> None:
    clock = FakeClock(1000.0)
    store = MemoryRateStore(clock=clock)
    rate = Rate(1.0)
    assert store.reserve("k", rate) == 0.0
    clock.now = 990.0
    assert store.reserve("k", rate) == 11.0, "the next permit is still at 1001"


def test_memory_threads_on_one_key_get_distinct_slots() -> None:
    clock = FakeClock(0.0)  # frozen: every slot is decided by the TAT alone
    store = MemoryRateStore(clock=clock)
    rate = Rate(100.0, burst=5)
    waits: list[float] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = [store.reserve("k", rate) for _ in range(200)]
        with lock:
            waits.extend(mine)

    run_in_threads(hammer, [()] * 8)
    expected = [0.0] * 4 + [reserve(None, 0.0, rate).tat * i for i in range(1600 - 4)]
    assert sorted(waits) == pytest.approx(expected, abs=1e-9)


def test_memory_forgets_keys_whose_tat_has_passed() -> None:
    clock = FakeClock()
    store = MemoryRateStore(clock=clock)
    rate = Rate(1.0)
    for i in range(1000):
        store.reserve(f"old{i}", rate)
    clock.now += 10.0  # every TAT has passed
    for i in range(100):
        store.reserve(f"new{i}", rate)
    assert len(store) == 100
    assert store.tat("old0") is None
    assert store.reserve("old0", rate) == 0.0, "a forgotten key is a fresh key"


def test_memory_close_forgets_everything() -> None:
    store = MemoryRateStore(clock=FakeClock())
    store.reserve("k", Rate(1.0))
    store.close()
    assert len(store) == 0


@given(
    ops=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=2.0),  # time passing before the call
            st.sets(st.sampled_from(["num", "pair1", "pair2"]), min_size=1),
        ),
        max_size=60,
    )
)
def test_memory_reserve_all_never_lets_any_limit_exceed_its_rate(
    ops: list[tuple[float, set[str]]],
) -> None:
    """For every key, the permits that involved it conform to its GCRA: any
    n of them span at least (n - burst) * T."""
    rates = {"num": Rate(4.0, burst=3), "pair1": Rate.every(1.0, burst=2), "pair2": Rate(2.0)}
    clock = FakeClock()
    store = MemoryRateStore(clock=clock)
    starts: dict[str, list[float]] = {k: [] for k in rates}
    for step, keys in ops:
        clock.now += step
        ordered = sorted(keys)
        start = clock.now + store.reserve_all([(k, rates[k]) for k in ordered])
        assert start >= clock.now
        for k in ordered:
            starts[k].append(start)
    for key, rate in rates.items():
        assert conforms(starts[key], rate, SLACK_S + 1e-9), key


# ------------------------------------------------------------------- redis


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_redis_gives_the_same_waits_as_memory_for_a_random_sequence(
    redis_store: RedisRateStore, seed: int
) -> None:
    """Both run on real time. Every wait and TAT is 1-Lipschitz in "now" (sums
    and maxima of it), so the stores may differ only by the time between their
    two calls at some step: the tolerance is the longest such gap so far."""
    rng = random.Random(seed)
    memory = MemoryRateStore()  # time.monotonic: both see the same time pass
    longest_gap = 0.0
    keys = ["num1", "num2", "num1:alice", "num1:bob"]
    rates = [Rate(8.0, burst=3), Rate.every(0.5), Rate.every(1.0, burst=4), Rate(3.0, burst=2)]
    for _ in range(80):
        if rng.random() < 0.1:
            time.sleep(rng.uniform(0.02, 0.15))
        chosen = rng.sample(range(len(keys)), rng.randint(1, 3))
        pairs = [(keys[i], rates[i]) for i in chosen]
        single = len(pairs) == 1 and rng.random() < 0.5
        before = time.monotonic()
        got = redis_store.reserve(*pairs[0]) if single else redis_store.reserve_all(pairs)
        want = memory.reserve(*pairs[0]) if single else memory.reserve_all(pairs)
        longest_gap = max(longest_gap, time.monotonic() - before)
        assert got == pytest.approx(want, abs=longest_gap + 0.001), pairs


def test_redis_stores_the_tat_on_the_server_clock(redis_store: RedisRateStore) -> None:
    """The Lua arithmetic is gcra.reserve in microseconds of Redis TIME."""
    client = redis_store.client
    rate = Rate(7.0, burst=2)
    key = KEY_PREFIX + "k"
    real = RealTime()
    before = server_time_us(client)
    assert redis_store.reserve("k", rate) == 0.0
    after = server_time_us(client)
    tat = float(client.get(key))  # type: ignore[arg-type]
    assert before + rate.interval * 1e6 <= tat <= after + rate.interval * 1e6
    for _ in range(20):  # queued: each permit starts at tat - tau, and the TAT moves by T
        now = server_time_us(client)
        wait = redis_store.reserve("k", rate)
        new_tat = float(client.get(key))  # type: ignore[arg-type]
        assert new_tat == pytest.approx(tat + rate.interval * 1e6, abs=0.5)
        start = now + wait * 1e6
        assert start == pytest.approx(tat - rate.tolerance * 1e6, abs=real.tolerance() * 1e6)
        tat = new_tat


def test_two_redis_clients_in_threads_never_together_exceed_the_rate(redis_url: str) -> None:
    rate = Rate(50.0, burst=5)
    clients = [RedisRateStore(redis_url), RedisRateStore(redis_url)]  # two "processes"
    starts: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def hammer(store: RedisRateStore) -> None:
        barrier.wait()
        mine = []
        for _ in range(40):
            wait = store.reserve("number", rate)
            mine.append(time.time() + wait)
        with lock:
            starts.extend(mine)

    try:
        run_in_threads(hammer, [(clients[i % 2],) for i in range(4)])
    finally:
        for c in clients:
            c.close()
    assert len(starts) == 160
    assert conforms(starts, rate, JITTER_S)
    busiest = max_in_window(starts)
    assert busiest <= rate.burst + rate.per_second
    assert busiest >= rate.burst + rate.per_second - 5, "the limit was actually reached"
    span = max(starts) - min(starts)
    assert span == pytest.approx((160 - rate.burst) * rate.interval, abs=0.1), (
        "every permit got its own slot: none twice, none lost"
    )


def test_reserve_all_from_threads_keeps_every_limit(redis_url: str) -> None:
    throughput = Rate(40.0, burst=4)
    pair = Rate(10.0, burst=2)
    clients = [RedisRateStore(redis_url), RedisRateStore(redis_url)]
    starts: dict[str, list[float]] = {"number": [], "number:a": [], "number:b": [], "number:c": []}
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def hammer(store: RedisRateStore, recipient: str) -> None:
        barrier.wait()
        mine = []
        for _ in range(25):
            wait = store.reserve_all([("number", throughput), (recipient, pair)])
            mine.append(time.time() + wait)
        with lock:
            starts["number"].extend(mine)
            starts[recipient].extend(mine)

    recipients = ["number:a", "number:b", "number:c"] * 2
    try:
        run_in_threads(hammer, [(clients[i % 2], r) for i, r in enumerate(recipients)])
    finally:
        for c in clients:
            c.close()
    assert len(starts["number"]) == 150
    assert max_in_window(starts["number"]) <= throughput.burst + throughput.per_second
    for r in ("number:a", "number:b", "number:c"):
        assert len(starts[r]) == 50
        assert max_in_window(starts[r]) <= pair.burst + pair.per_second
    assert conforms(starts["number"], throughput, JITTER_S)
    for r in ("number:a", "number:b", "number:c"):
        assert conforms(starts[r], pair, JITTER_S)


_PROCESS = textwrap.dedent(
    """
    import sys, time
    from lawhub_actors.adapters.rate_store import RedisRateStore
    from lawhub_actors.core.gcra import Rate

    url, go, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    store = RedisRateStore(url)
    rate = Rate(40.0, burst=4)
    store.client.ping()  # connect before the start line
    while time.time() < go:
        time.sleep(0.001)
    for _ in range(n):
        wait = store.reserve("shared", rate)
        print(time.time() + wait)
    store.close()
    """
)


def test_two_real_processes_share_one_limit(redis_url: str) -> None:
    go = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS, redis_url, repr(go), "60"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    starts: list[float] = []
    for p in procs:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        starts += [float(line) for line in out.split()]
    assert len(starts) == 120
    assert max_in_window(starts) <= 4 + 40
    assert conforms(starts, Rate(40.0, burst=4), JITTER_S)
    assert max(starts) - min(starts) == pytest.approx((120 - 4) / 40.0, abs=0.1)


def test_redis_keys_carry_the_prefix_and_live_until_their_tat_plus_a_margin(
    redis_store: RedisRateStore,
) -> None:
    client = redis_store.client
    rate = Rate(20.0, burst=2)  # T = 50 ms, tau = 50 ms
    real = RealTime()
    redis_store.reserve("idle", rate)
    assert client.keys("*") == [f"{KEY_PREFIX}idle".encode()]
    ttl = client.pttl(KEY_PREFIX + "idle")
    assert 1000 + 50 - real.tolerance() * 1000 - 1 <= ttl <= 1000 + 50 + 1, "T + margin"
    real = RealTime()
    for _ in range(40):  # a queue 2 s long: its key must outlive it
        redis_store.reserve("queued", rate)
    ttl = client.pttl(KEY_PREFIX + "queued")
    assert 1000 + 2000 - real.tolerance() * 1000 - 1 <= ttl <= 1000 + 2000 + 1


def test_redis_idle_keys_vanish_and_then_behave_as_fresh(redis_url: str) -> None:
    store = RedisRateStore(redis_url, expiry_margin_s=0.05)
    try:
        rate = Rate(10.0, burst=2)
        real = RealTime()
        assert [store.reserve("k", rate) for _ in range(3)] == real.approx([0.0, 0.0, 0.1])
        deadline = time.monotonic() + 5.0
        while store.client.exists(KEY_PREFIX + "k"):
            assert time.monotonic() < deadline, "the key never expired"
            time.sleep(0.01)
        real = RealTime()
        assert [store.reserve("k", rate) for _ in range(3)] == real.approx([0.0, 0.0, 0.1])
    finally:
        store.close()


def test_redis_recovers_from_noscript_after_script_flush(redis_store: RedisRateStore) -> None:
    rate = Rate.every(1.0)
    real = RealTime()
    assert redis_store.reserve("k", rate) == 0.0
    redis_store.client.script_flush()
    assert redis_store.client.script_exists(redis_store._script.sha) == [False]
    assert redis_store.reserve("k", rate) == real.approx(1.0), "reloaded, and the state survived"
    assert redis_store.client.script_exists(redis_store._script.sha) == [True]


def test_redis_errors_propagate_and_a_failed_reserve_all_writes_nothing(
    redis_store: RedisRateStore,
) -> None:
    client = redis_store.client
    client.hset(KEY_PREFIX + "hash", "f", "v")
    client.set(KEY_PREFIX + "junk", "not a number")
    for bad in ("hash", "junk"):
        with pytest.raises(redis.ResponseError):
            redis_store.reserve_all([("good", Rate(1.0)), (bad, Rate(1.0))])
    assert not client.exists(KEY_PREFIX + "good"), "all reads happen before any write"
    assert redis_store.reserve("good", Rate(1.0)) == 0.0


def test_redis_unreachable_raises_connection_error(tmp_path: Path) -> None:
    store = RedisRateStore(f"unix://{tmp_path}/nothing.sock", connect_timeout_s=0.2)
    try:
        with pytest.raises(redis.ConnectionError):
            store.reserve("k", Rate(1.0))
    finally:
        store.close()


def test_redis_pool_waits_for_a_connection_instead_of_raising(redis_url: str) -> None:
    store = RedisRateStore(redis_url, max_connections=1, pool_timeout_s=5.0)
    assert isinstance(store.client.connection_pool, redis.BlockingConnectionPool)
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(50):
                store.reserve("k", Rate(1000.0))
        except BaseException as error:
            errors.append(error)

    try:
        run_in_threads(hammer, [()] * 8)
    finally:
        store.close()
    assert errors == []


def test_redis_with_a_caller_owned_client(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisRateStore("ignored://", client=client)
    real = RealTime()
    assert store.reserve("k", Rate(1.0)) == 0.0
    assert store.reserve("k", Rate(1.0)) == real.approx(1.0)
    store.close()
    assert client.exists(KEY_PREFIX + "k") == 1, "close() leaves a caller's client open"
    client.close()


def test_redis_rejects_a_margin_that_is_not_positive() -> None:
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            RedisRateStore("unix:///nowhere.sock", expiry_margin_s=bad)


# ---------------------------------------------------------- rate_store_from


def test_rate_store_from_without_a_url_is_memory() -> None:
    for url in (None, ""):
        store = rate_store_from(url)
        assert isinstance(store, MemoryRateStore)
        store.close()


def test_rate_store_from_a_url_is_redis(redis_url: str) -> None:
    store = rate_store_from(redis_url)
    try:
        assert isinstance(store, RedisRateStore)
        assert store.reserve("k", Rate(1.0)) == 0.0
        assert store.client.exists(KEY_PREFIX + "k") == 1
    finally:
        store.close()
