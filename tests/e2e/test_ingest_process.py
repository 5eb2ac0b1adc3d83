"""``[server] ingest = "process"``: the webhook's ack path in a process of its
own, on the same port as everything else (real processes)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lawhub_actors.simulator import traffic
from tests.conftest import ADMIN_TOKEN, APP_SECRET, TENANT_TOKENS
from tests.e2e.outbound_helpers import (  # noqa: F401 - fixture
    NUMBER_A,
    SHIPPED_CONFIG,
    Gateway,
    Gateways,
    config_with,
    gateways,
)
from tests.priorities import may_raise_priority
from tests.waits import until_sync


def _config(tmp_path: Path) -> Path:
    text = SHIPPED_CONFIG.read_text().replace(
        '[server]\nhost = "127.0.0.1"\nport = 8080\n',
        '[server]\nhost = "127.0.0.1"\nport = 8080\ningest = "process"\n')
    assert 'ingest = "process"' in text, "config/lawhub.toml's [server] changed"
    return config_with(text, "", tmp_path / "lawhub.toml")


def _signed(customer: str, text: str) -> traffic.SignedPost:
    change = traffic.text_message(NUMBER_A, customer, text, message_id=traffic.wamid())
    return traffic.signed(traffic.envelope(change), APP_SECRET.encode())


def _post(url: str, signed: traffic.SignedPost, timeout: float = 10) -> int:
    request = urllib.request.Request(f"{url}/webhook", data=signed.body, headers=signed.headers,
                                     method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status)


def _get(url: str, path: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{url}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status), response.read()


def _messages(url: str, customer: str) -> list[dict[str, object]]:
    _, body = _get(url, f"/api/v1/conversations/{customer}/messages", TENANT_TOKENS["firm-a"])
    return json.loads(body)["messages"]  # type: ignore[no-any-return]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _ingest_pid(gateway: Gateway) -> int:
    return int(next(e["pid"] for e in reversed(gateway.log_events())
                    if e.get("event") == "ingest_process_started"))


def test_the_ack_path_process_takes_webhooks_and_everything_else_works_on_the_same_port(
    tmp_path: Path, gateways: Gateways,  # noqa: F811
) -> None:
    gateway = gateways.start(tmp_path / "var", _config(tmp_path))
    assert _ingest_pid(gateway) != gateway.process.pid
    assert _post(gateway.url, _signed("6281300000021", "halo")) == 200
    until_sync(lambda: len(_messages(gateway.url, "6281300000021")) == 1, timeout=10)
    status, tree = _get(gateway.url, "/admin/tree", ADMIN_TOKEN)
    assert status == 200 and json.loads(tree)["inbound"]["lag_entries"] == 0

    def answered() -> float:
        _, text = _get(gateway.url, "/metrics", ADMIN_TOKEN)
        return sum(sample.value for family in text_string_to_metric_families(text.decode())
                   for sample in family.samples
                   if sample.name == "lawhub_webhook_requests_total"
                   and sample.labels.get("status") == "200")

    until_sync(lambda: answered() == 1.0, timeout=5, what="the child's answers in /metrics")
    assert gateway.stop() == 0
    assert not _alive(_ingest_pid(gateway)), "the ack path's process outlived the gateway"


def test_the_ack_path_process_runs_ahead_of_the_processing_by_default(
    tmp_path: Path, gateways: Gateways,  # noqa: F811
) -> None:
    gateway = gateways.start(tmp_path / "var", _config(tmp_path))
    child = _ingest_pid(gateway)
    until_sync(lambda: any(e.get("event") == "ingest_priority" for e in gateway.log_events()),
               timeout=10, what="the ack process's priority logged")
    [told] = [e for e in gateway.log_events() if e.get("event") == "ingest_priority"]
    main_nice = os.getpriority(os.PRIO_PROCESS, gateway.process.pid)
    wanted = max(-20, main_nice - 10)  # ten ahead of the processing, never below -20
    if may_raise_priority(wanted):
        assert (told["applied"], told["level"], told["ahead"]) == (True, "info", -10)
        assert os.getpriority(os.PRIO_PROCESS, child) == told["nice"] == wanted
        assert main_nice == os.getpriority(os.PRIO_PROCESS, 0), "the processing was not lowered"
    else:
        assert (told["applied"], told["level"]) == (False, "warning") and "fix" in told
        assert os.getpriority(os.PRIO_PROCESS, child) == main_nice == told["nice"]
    assert gateway.stop() == 0


def test_webhooks_are_acknowledged_while_the_main_process_is_frozen(
    tmp_path: Path, gateways: Gateways,  # noqa: F811
) -> None:
    # Whatever the processing does (here: nothing at all, SIGSTOP), Meta's
    # acknowledgements come from the other process, durably journaled.
    gateway = gateways.start(tmp_path / "var", _config(tmp_path))
    assert _post(gateway.url, _signed("6281300000022", "sebelum")) == 200
    os.kill(gateway.process.pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        statuses = [_post(gateway.url, _signed("6281300000022", f"#{i}"), timeout=5)
                    for i in range(20)]
        took = time.monotonic() - began
    finally:
        os.kill(gateway.process.pid, signal.SIGCONT)
    assert statuses == [200] * 20 and took < 5
    until_sync(lambda: len(_messages(gateway.url, "6281300000022")) == 21, timeout=15)
    assert gateway.stop() == 0


def test_a_dead_ack_path_process_is_restarted_on_the_same_port(
    tmp_path: Path, gateways: Gateways,  # noqa: F811
) -> None:
    gateway = gateways.start(tmp_path / "var", _config(tmp_path))
    first = _ingest_pid(gateway)
    os.kill(first, signal.SIGKILL)
    gateway.wait_for_event("ingest_process_exited")
    restarted = gateway.wait_for_event("ingest_process_started")
    assert restarted["pid"] != first
    ingest = json.loads(_get(gateway.url, "/admin/tree", ADMIN_TOKEN)[1])["services"]["ingest"]
    assert ingest == {"mode": "process", "serving": True, "pid": restarted["pid"], "restarts": 1}
    assert _post(gateway.url, _signed("6281300000023", "lagi")) == 200
    until_sync(lambda: len(_messages(gateway.url, "6281300000023")) == 1, timeout=10)
    assert gateway.stop() == 0


def test_a_connection_that_began_with_a_webhook_refuses_other_paths_with_421(
    tmp_path: Path, gateways: Gateways,  # noqa: F811
) -> None:
    gateway = gateways.start(tmp_path / "var", _config(tmp_path))
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    signed = _signed("6281300000024", "halo")
    connection.request("POST", "/webhook", body=signed.body, headers=signed.headers)
    assert connection.getresponse().read() == b"ok"
    connection.request("GET", "/healthz")
    refused = connection.getresponse()
    assert refused.status == 421 and refused.getheader("Connection") == "close"
    assert json.loads(refused.read())["error"]["code"] == "misdirected"
    connection.close()
    assert _get(gateway.url, "/admin/tree", ADMIN_TOKEN)[0] == 200  # a new connection
    assert gateway.stop() == 0


def test_the_ack_path_process_ends_with_a_killed_gateway_and_frees_the_port(
    tmp_path: Path, gateways: Gateways,  # noqa: F811
) -> None:
    gateway = gateways.start(tmp_path / "var", _config(tmp_path))
    child = _ingest_pid(gateway)
    gateway.kill()  # SIGKILL: no goodbye
    until_sync(lambda: not _alive(child), timeout=10, what="the orphaned ack path to end")
    port = int(gateway.url.rsplit(":", 1)[1])
    again = gateways.start(tmp_path / "var", _config(tmp_path), port=port)
    assert _post(again.url, _signed("6281300000025", "halo")) == 200
    assert again.stop() == 0


def test_ctrl_c_leaves_the_ack_path_to_its_parent(
    tmp_path: Path, gateways: Gateways,  # noqa: F811
) -> None:
    # Ctrl-C reaches every process of the group: the child must not end on its
    # own (the main process would see a crash and start another mid-shutdown).
    gateway = gateways.start(tmp_path / "var", _config(tmp_path))
    child = _ingest_pid(gateway)
    os.kill(child, signal.SIGINT)
    time.sleep(0.5)
    assert _alive(child)
    assert _post(gateway.url, _signed("6281300000026", "halo")) == 200
    assert gateway.stop(signal.SIGINT) == 0
    assert not any(e.get("event") == "ingest_process_exited" for e in gateway.log_events())
