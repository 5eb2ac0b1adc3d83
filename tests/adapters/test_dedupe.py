"""Behaviour of the dedupe fast path, in memory and against a real redis-server."""

from __future__ import annotations

import logging
import random
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from lawhub_actors.adapters.dedupe import (
    WARN_EVERY_S,
    Dedupe,
    MemoryDedupe,
    RedisDedupe,
    dedupe_from,
)
from tests.servers import STARTUP_DEADLINE_S, _ping, _short_tempdir, _stop

Factory = Callable[..., Dedupe]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def make_dedupe(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """make(ttl_s=60) -> a fresh Dedupe of the parametrized kind."""
    made: list[Dedupe] = []
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")

        def make(ttl_s: int = 60) -> Dedupe:
            d = RedisDedupe(url, ttl_s=ttl_s)
            made.append(d)
            return d
    else:

        def make(ttl_s: int = 60) -> Dedupe:
            d = MemoryDedupe(max_entries=100_000, ttl_s=ttl_s)
            made.append(d)
            return d

    yield make
    for d in made:
        d.close()


@pytest.fixture
def count_sends(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts writes to any Redis socket: one per round trip (a pipeline is one)."""
    counts: Counter[str] = Counter()
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):  # type: ignore[no-untyped-def]
        counts["sends"] += 1
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return counts


def _commands_processed(admin: redis.Redis) -> int:
    return int(admin.info("stats")["total_commands_processed"])


class RedisProcess:
    """A private redis-server on a fixed unix socket, which a test may kill,
    stop and start again (the session's shared server must stay up)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.sock = directory / "redis.sock"
        self.url = f"unix://{self.sock}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port", "0",
                "--unixsocket", str(self.sock),
                "--unixsocketperm", "700",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.dir),
                "--logfile", str(self.dir / "redis.log"),
                "--daemonize", "no",
            ],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while not _ping(self.sock):
            assert self.proc.poll() is None, f"redis-server exited with {self.proc.returncode}"
            assert time.monotonic() < deadline, "redis-server did not answer PING"
            time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL, as a crash: the socket file stays, and connecting is refused."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=5)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A redis-server of this test's own, not started yet."""
    server = RedisProcess(_short_tempdir("lawhub-redis-own-"))
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def _dedupe_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "lawhub.dedupe"]


def _events(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in _dedupe_logs(caplog)]


UNAVAILABLE = ("WARNING", "dedupe_redis_unavailable")
RECOVERED = ("INFO", "dedupe_redis_recovered")


# ---------------------------------------------------------------- both kinds


def test_both_kinds_satisfy_the_protocol(make_dedupe: Factory) -> None:
    assert isinstance(make_dedupe(), Dedupe)


def test_unseen_until_marked(make_dedupe: Factory) -> None:
    d = make_dedupe()
    keys = ["wamid.A", "wamid.B", "wamid.A:delivered"]
    assert d.seen(keys) == set()
    d.mark(["wamid.A"])
    assert d.seen(keys) == {"wamid.A"}
    d.mark(["wamid.A:delivered"])
    assert d.seen(keys) == {"wamid.A", "wamid.A:delivered"}


def test_empty_batches_and_duplicates(make_dedupe: Factory) -> None:
    d = make_dedupe()
    assert d.seen([]) == set()
    d.mark([])
    d.mark(["k", "k"])
    assert d.seen(["k", "k", "other"]) == {"k"}


def test_marking_twice_is_harmless(make_dedupe: Factory) -> None:
    d = make_dedupe()
    d.mark(["k1", "k2"])
    d.mark(["k2", "k3"])
    assert d.seen(["k1", "k2", "k3", "k4"]) == {"k1", "k2", "k3"}


def test_real_world_keys(make_dedupe: Factory) -> None:
    d = make_dedupe()
    keys = [
        "wamid.HBgNNjI4MTIzNDU2Nzg5FQIAEhggQTNFQjQ2RDk2RTRBNzk5QzQ2OTc0RjU0OTA3NzI3AA==",
        "wamid.HBgNNjI4MTIzNDU2Nzg5FQIAERgSRjA3MEE2NDk0QjNGQkY3NTM4AA==:read",
        "ünïcødé:🙂",
        "with space",
    ]
    d.mark(keys)
    assert d.seen(keys) == set(keys)
    assert d.seen([k + "x" for k in keys]) == set()


def test_a_batch_of_1000(make_dedupe: Factory) -> None:
    d = make_dedupe()
    keys = [f"wamid.{i}" for i in range(1000)]
    d.mark(keys[::2])
    assert d.seen(keys) == set(keys[::2])


def test_claim_first_caller_wins(make_dedupe: Factory) -> None:
    d = make_dedupe()
    assert d.claim([]) == []  # type: ignore[attr-defined]
    assert d.claim(["a", "b", "a"]) == [True, True, False]  # type: ignore[attr-defined]
    assert d.claim(["a", "c"]) == [False, True]  # type: ignore[attr-defined]
    assert d.seen(["a", "b", "c", "d"]) == {"a", "b", "c"}


def test_claim_is_atomic_under_8_racing_threads(make_dedupe: Factory) -> None:
    d = make_dedupe()
    keys = [f"wamid.race.{i}" for i in range(1000)]
    n_threads = 8
    barrier = threading.Barrier(n_threads)
    wins: list[Counter[str]] = [Counter() for _ in range(n_threads)]
    errors: list[BaseException] = []

    def racer(i: int) -> None:
        try:
            mine = keys[:]
            random.Random(i).shuffle(mine)
            barrier.wait(timeout=10)
            for start in range(0, len(mine), 50):
                batch = mine[start : start + 50]
                for key, won in zip(batch, d.claim(batch), strict=True):  # type: ignore[attr-defined]
                    if won:
                        wins[i][key] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert not any(t.is_alive() for t in threads)
    total = sum(wins, Counter())
    assert set(total) == set(keys)
    assert set(total.values()) == {1}, "some key was claimed more than once"
    assert d.seen(keys) == set(keys)


# ---------------------------------------------------------------- memory


def test_memory_ttl_expiry_with_an_injected_clock() -> None:
    clock = FakeClock()
    d = MemoryDedupe(max_entries=10, ttl_s=10, clock=clock)
    d.mark(["k"])
    clock.now += 9.999
    assert d.seen(["k"]) == {"k"}
    clock.now += 0.001
    assert d.seen(["k"]) == set(), "an expired key counts as unseen"
    assert d.claim(["k"]) == [True], "an expired key can be claimed again"
    clock.now += 5
    assert d.seen(["k"]) == {"k"}


def test_memory_remark_does_not_extend_the_ttl() -> None:
    clock = FakeClock()
    d = MemoryDedupe(max_entries=10, ttl_s=10, clock=clock)
    d.mark(["k"])
    clock.now += 5
    d.mark(["k"])
    clock.now += 5
    assert d.seen(["k"]) == set()


def test_memory_stays_bounded_under_100k_keys() -> None:
    d = MemoryDedupe(max_entries=10_000, ttl_s=3600)
    keys = [f"wamid.{i}" for i in range(100_000)]
    for start in range(0, len(keys), 1000):
        d.mark(keys[start : start + 1000])
        assert len(d) <= 10_000
    assert len(d) == 10_000
    assert d.seen(keys[-10_000:]) == set(keys[-10_000:]), "the newest marks survive"
    assert d.seen(keys[:-10_000]) == set(), "the oldest marks were evicted"


def test_memory_purges_expired_entries() -> None:
    clock = FakeClock()
    d = MemoryDedupe(max_entries=1000, ttl_s=10, clock=clock)
    d.mark([f"old{i}" for i in range(500)])
    clock.now += 10
    d.mark(["new"])
    assert len(d) == 1


def test_memory_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError):
        MemoryDedupe(max_entries=0, ttl_s=10)
    with pytest.raises(ValueError):
        MemoryDedupe(max_entries=10, ttl_s=0)


@settings(max_examples=200, deadline=None)
@given(
    max_entries=st.integers(1, 6),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("tick"), st.sampled_from([0.0, 1.0, 3.0, 7.0, 10.0])),
            st.tuples(st.just("mark"), st.lists(st.sampled_from("abcdefgh"), max_size=5)),
        ),
        max_size=40,
    ),
)
def test_memory_matches_its_specification(max_entries: int, ops: list[tuple[str, object]]) -> None:
    """A key is seen iff its last fresh mark is younger than the TTL and fewer
    than max_entries fresh marks came after it (oldest marks are evicted first)."""
    ttl = 10.0
    clock = FakeClock(0.0)
    d = MemoryDedupe(max_entries=max_entries, ttl_s=ttl, clock=clock)
    inserts: list[tuple[str, float]] = []  # fresh marks, oldest first

    def spec_seen(key: str) -> bool:
        for age, (k, t) in enumerate(reversed(inserts)):
            if k == key:
                return t + ttl > clock.now and age < max_entries
        return False

    for op, arg in ops:
        if op == "tick":
            clock.now += arg  # type: ignore[operator]
        else:
            for key in arg:  # type: ignore[attr-defined]
                if not spec_seen(key):
                    inserts.append((key, clock.now))
            d.mark(arg)  # type: ignore[arg-type]
        assert len(d) <= max_entries
        assert d.seen(list("abcdefgh")) == {k for k in "abcdefgh" if spec_seen(k)}


# ---------------------------------------------------------------- redis


def test_redis_sets_the_ttl_on_mark(redis_url: str) -> None:
    d = RedisDedupe(redis_url, ttl_s=60, namespace="t:")
    try:
        d.mark(["k"])
        assert 58 <= d.client.ttl("t:k") <= 60
        assert 0 < d.client.pttl("t:k") <= 60_000
        assert d.claim(["c"]) == [True]
        assert 58 <= d.client.ttl("t:c") <= 60
    finally:
        d.close()


def test_redis_remark_does_not_extend_the_ttl(redis_url: str) -> None:
    d = RedisDedupe(redis_url, ttl_s=60, namespace="t:")
    try:
        d.mark(["k"])
        d.client.expire("t:k", 5)
        d.mark(["k"])
        assert 0 < d.client.ttl("t:k") <= 5
    finally:
        d.close()


def test_redis_two_instances_share_marks(redis_url: str) -> None:
    a = RedisDedupe(redis_url, ttl_s=60)
    b = RedisDedupe(redis_url, ttl_s=60)
    try:
        a.mark(["wamid.1"])
        assert b.seen(["wamid.1", "wamid.2"]) == {"wamid.1"}
        assert b.claim(["wamid.1", "wamid.2"]) == [False, True]
        assert a.seen(["wamid.2"]) == {"wamid.2"}
        assert a.claim(["wamid.2"]) == [False]
    finally:
        a.close()
        b.close()


def test_redis_namespaces_are_isolated(redis_url: str) -> None:
    a = RedisDedupe(redis_url, ttl_s=60, namespace="tenant-a:")
    b = RedisDedupe(redis_url, ttl_s=60, namespace="tenant-b:")
    try:
        a.mark(["wamid.1"])
        assert b.seen(["wamid.1"]) == set()
        assert b.claim(["wamid.1"]) == [True]
        assert sorted(a.client.keys("*")) == [b"tenant-a:wamid.1", b"tenant-b:wamid.1"]
    finally:
        a.close()
        b.close()


def test_redis_default_namespace(redis_url: str) -> None:
    d = RedisDedupe(redis_url, ttl_s=60)
    try:
        d.mark(["wamid.1"])
        assert d.client.keys("*") == [b"lawhub:dedupe:wamid.1"]
    finally:
        d.close()


def test_redis_a_batch_of_1000_is_one_round_trip(
    redis_url: str,
    count_sends: Counter[str],
) -> None:
    d = RedisDedupe(redis_url, ttl_s=60)
    admin = redis.Redis.from_url(redis_url)
    keys = [f"wamid.{i}" for i in range(1000)]
    try:
        d.client.ping()  # open the connection: its handshake is not the batch's
        before = _commands_processed(admin)
        count_sends.clear()

        assert d.seen(keys) == set()
        assert count_sends["sends"] == 1
        d.mark(keys)
        assert count_sends["sends"] == 2
        assert d.seen(keys) == set(keys)
        assert count_sends["sends"] == 3
        assert d.claim(keys) == [False] * 1000
        assert count_sends["sends"] == 4

        # server side: one MGET per seen(), one SET NX per key, +1 for the INFO
        # that took `before` (a command is counted once it has run)
        assert _commands_processed(admin) - before == 1 + 1000 + 1 + 1000 + 1
    finally:
        admin.close()
        d.close()


def test_redis_uses_a_blocking_pool_with_explicit_timeouts(redis_url: str) -> None:
    d = RedisDedupe(
        redis_url,
        ttl_s=60,
        max_connections=3,
        socket_timeout_s=0.7,
        connect_timeout_s=0.3,
        pool_timeout_s=0.2,
    )
    try:
        pool = d.client.connection_pool
        assert isinstance(pool, redis.BlockingConnectionPool)
        assert pool.max_connections == 3
        assert pool.timeout == 0.2
        kwargs = pool.connection_kwargs
        assert kwargs["socket_timeout"] == 0.7
        assert kwargs["socket_connect_timeout"] == 0.3
        assert kwargs["retry"].get_retries() == 0
    finally:
        d.close()


def test_redis_pool_exhaustion_waits_then_answers_nothing_seen(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lawhub.dedupe")
    d = RedisDedupe(redis_url, ttl_s=60, max_connections=1, pool_timeout_s=0.2)
    held = d.client.connection_pool.get_connection()
    try:
        started = time.monotonic()
        assert d.seen(["k"]) == set()
        assert 0.15 <= time.monotonic() - started < 2
        assert _events(caplog) == [UNAVAILABLE]
        assert _dedupe_logs(caplog)[0].error == "ConnectionError"  # type: ignore[attr-defined]
    finally:
        d.client.connection_pool.release(held)
    try:
        d.mark(["k"])
        assert d.seen(["k"]) == {"k"}, "a free connection again: Redis is used again"
        assert _events(caplog) == [UNAVAILABLE, RECOVERED]
    finally:
        d.close()


def test_redis_a_stalled_server_times_out_without_retrying(
    redis_url: str,
    count_sends: Counter[str],
) -> None:
    d = RedisDedupe(redis_url, ttl_s=60, socket_timeout_s=0.2)
    admin = redis.Redis.from_url(redis_url)
    try:
        d.client.ping()
        admin.ping()
        count_sends.clear()
        admin.client_pause(1000)  # the server stops serving clients; self-heals in 1 s
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            d.claim(["k"])
        assert time.monotonic() - started < 1.5
        assert count_sends["sends"] == 2, "one CLIENT PAUSE + one claim attempt, no retry"
    finally:
        admin.client_unpause()
        admin.close()
        d.close()


def test_redis_seen_on_a_stalled_server_answers_nothing_seen_after_the_socket_timeout(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lawhub.dedupe")
    d = RedisDedupe(redis_url, ttl_s=60, socket_timeout_s=0.2)
    admin = redis.Redis.from_url(redis_url)
    try:
        d.mark(["k"])
        admin.client_pause(5000)  # the server stops serving clients (until unpaused)
        started = time.monotonic()
        assert d.seen(["k"]) == set(), "no answer in time counts as nothing seen"
        assert time.monotonic() - started < 2.0
        d.mark(["other"])  # times out too, and does not raise
        admin.client_unpause()
        assert d.seen(["k"]) == {"k"}
        assert _events(caplog) == [UNAVAILABLE, RECOVERED], "one warning for both timeouts"
        assert _dedupe_logs(caplog)[0].error == "TimeoutError"  # type: ignore[attr-defined]
        assert _dedupe_logs(caplog)[1].degraded_calls == 2  # type: ignore[attr-defined]
    finally:
        admin.client_unpause()
        admin.close()
        d.close()


def test_redis_seen_answers_nothing_and_mark_skips_when_nothing_listens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lawhub.dedupe")
    d = RedisDedupe(f"unix://{tmp_path}/nothing.sock", ttl_s=60)
    try:
        assert d.seen(["wamid.A", "wamid.B"]) == set()
        d.mark(["wamid.A"])
        assert d.seen(["wamid.A"]) == set()
        assert _events(caplog) == [UNAVAILABLE], "one warning, not one per call"
        record = _dedupe_logs(caplog)[0]
        assert (record.op, record.error) == ("seen", "ConnectionError")  # type: ignore[attr-defined]
    finally:
        d.close()


def test_redis_claim_still_raises_when_nothing_listens(tmp_path: Path) -> None:
    """A claim has no honest degraded answer: its caller must see the error."""
    d = RedisDedupe(f"unix://{tmp_path}/nothing.sock", ttl_s=60)
    try:
        with pytest.raises(redis.ConnectionError):
            d.claim(["k"])
    finally:
        d.close()


def test_redis_killed_mid_use_degrades_then_recovers_when_a_server_is_back_on_its_socket(
    own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lawhub.dedupe")
    own_redis.start()
    d = RedisDedupe(own_redis.url, ttl_s=60)
    try:
        d.mark(["wamid.A"])
        assert d.seen(["wamid.A", "wamid.B"]) == {"wamid.A"}  # a pooled connection is open
        assert _events(caplog) == []

        own_redis.kill()
        assert own_redis.sock.exists(), "a crashed server leaves its socket: connections are refused"
        assert d.seen(["wamid.A", "wamid.B"]) == set(), "the open connection breaks: nothing seen"
        d.mark(["wamid.B"])
        assert d.seen(["wamid.A", "wamid.B"]) == set(), "reconnecting is refused: nothing seen"
        assert _events(caplog) == [UNAVAILABLE]

        own_redis.start()  # a new, empty server at the same socket
        assert d.seen(["wamid.A", "wamid.B"]) == set(), "answered by the new, empty server"
        d.mark(["wamid.C"])
        assert d.seen(["wamid.A", "wamid.C"]) == {"wamid.C"}
        assert _events(caplog) == [UNAVAILABLE, RECOVERED]
        recovered = _dedupe_logs(caplog)[1]
        assert recovered.degraded_calls == 3  # type: ignore[attr-defined]
    finally:
        d.close()


def test_redis_stopped_degrades_and_warns_at_most_once_per_interval_until_it_is_back(
    own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens (no server yet, then one stopped cleanly, which removes
    its socket): a warning for the first failure, then at most one per
    WARN_EVERY_S however many calls fail, and one info line when it answers."""
    caplog.set_level(logging.INFO, logger="lawhub.dedupe")
    clock = FakeClock()
    d = RedisDedupe(own_redis.url, ttl_s=60, clock=clock)
    try:
        for _ in range(100):
            assert d.seen(["wamid.A"]) == set()
            d.mark(["wamid.A"])
        assert _events(caplog) == [UNAVAILABLE]
        clock.now += WARN_EVERY_S - 0.001
        d.mark(["wamid.A"])
        assert _events(caplog) == [UNAVAILABLE]
        clock.now += 0.001
        assert d.seen(["wamid.A"]) == set()
        assert _events(caplog) == [UNAVAILABLE, UNAVAILABLE]
        second = _dedupe_logs(caplog)[1]
        assert second.degraded_calls == 201, "the calls degraded since the last warning"  # type: ignore[attr-defined]
        assert second.down_for_s == WARN_EVERY_S  # type: ignore[attr-defined]

        own_redis.start()
        clock.now += 1
        d.mark(["wamid.A"])
        assert d.seen(["wamid.A"]) == {"wamid.A"}
        assert _events(caplog) == [UNAVAILABLE, UNAVAILABLE, RECOVERED]
        recovered = _dedupe_logs(caplog)[2]
        assert recovered.degraded_calls == 202  # type: ignore[attr-defined]
        assert recovered.down_for_s == WARN_EVERY_S + 1  # type: ignore[attr-defined]

        own_redis.stop()
        assert not own_redis.sock.exists()
        clock.now += 1  # a new outage, but less than WARN_EVERY_S after the last warning
        assert d.seen(["wamid.A"]) == set()
        own_redis.start()
        d.mark(["wamid.B"])
        assert _events(caplog) == [UNAVAILABLE, UNAVAILABLE, RECOVERED], (
            "a flapping server logs at most a warning and a recovery per interval"
        )
        own_redis.stop()
        clock.now += WARN_EVERY_S
        d.mark(["wamid.C"])
        assert _events(caplog)[3:] == [UNAVAILABLE]
        assert _dedupe_logs(caplog)[3].degraded_calls == 2, "the unlogged blip is counted"  # type: ignore[attr-defined]
    finally:
        d.close()


def test_redis_outage_logs_never_carry_a_key(
    own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """A real error reply quoting the key (redis-py annotates a failed pipeline
    command with its arguments): a preference key holds a customer's number."""
    caplog.set_level(logging.DEBUG)
    own_redis.start()
    customer = "6281234567890"
    key = f"106540352242922:{customer}:marketing_messages:stop:1700000000"
    d = RedisDedupe(own_redis.url, ttl_s=60)
    admin = redis.Redis.from_url(own_redis.url)
    try:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)  # every write is now refused: OOM
        with pytest.raises(redis.ResponseError, match=customer):
            d.claim([key])  # the error's own text does quote the key
        d.mark([key])
        assert d.seen([key]) == set()  # reads still work: the key was never marked
        assert _events(caplog) == [UNAVAILABLE, RECOVERED]
        assert _dedupe_logs(caplog)[0].error == "OutOfMemoryError"  # type: ignore[attr-defined]
        for record in caplog.records:
            text = repr(record.__dict__) + record.getMessage()
            assert customer not in text and key not in text
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()
        d.close()


def test_redis_with_a_caller_owned_client(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    d = RedisDedupe("ignored://", ttl_s=60, client=client)
    d.mark(["k"])
    d.close()
    assert client.exists("lawhub:dedupe:k") == 1, "close() leaves a caller's client open"
    client.close()


def test_redis_rejects_a_ttl_redis_cannot_take() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            RedisDedupe("unix:///nowhere.sock", ttl_s=bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- dedupe_from


def test_dedupe_from_without_a_url_is_memory() -> None:
    for url in (None, ""):
        d = dedupe_from(url, ttl_s=30.0, max_entries=5)
        assert isinstance(d, MemoryDedupe)
        d.mark([f"k{i}" for i in range(10)])
        assert len(d) == 5
        d.close()


def test_dedupe_from_a_url_is_redis_with_whole_second_ttl(redis_url: str) -> None:
    d = dedupe_from(redis_url, ttl_s=7.2, max_entries=5)
    assert isinstance(d, RedisDedupe)
    try:
        d.mark(["k"])
        assert 7 <= d.client.ttl("lawhub:dedupe:k") <= 8
    finally:
        d.close()
    tiny = dedupe_from(redis_url, ttl_s=0.01, max_entries=5)
    assert isinstance(tiny, RedisDedupe)
    try:
        tiny.mark(["t"])
        assert 0 < tiny.client.pttl("lawhub:dedupe:t") <= 1000
    finally:
        tiny.close()
