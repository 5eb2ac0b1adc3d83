"""``[server] processes = 2``: one command, two nodes on one port (SO_REUSEPORT),
sharing the partitions; a node that dies is started again; SIGTERM stops both."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.e2e.cluster_helpers import Cluster, cluster_config, conversations, post_rounds, until
from tests.e2e.outbound_helpers import gateways  # noqa: F401 - the fixture


def _admin_cluster(url: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{url}/admin/cluster",
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@pytest.mark.timeout(180)
def test_two_processes_serve_one_port_as_two_nodes_and_stop_together(
        cluster: Cluster, tmp_path: Path) -> None:
    config = cluster_config(tmp_path / "group.toml", lease_s=3.0)
    config.write_text(config.read_text().replace("[server]\n", "[server]\nprocesses = 2\n", 1))
    cluster.config = config
    group = cluster.start("box")
    second = group.wait_for_event("listening", timeout=30)  # the other node's
    assert second["url"] == group.url  # one port for both
    until(lambda: {n["id"]: len(n["partitions"]) for n in _admin_cluster(group.url)["nodes"]}
          == {"box/0": 8, "box/1": 8}, timeout=30, what="two nodes sharing the partitions")
    acked = asyncio.run(post_rounds([group.url], conversations(100), rounds=2, per_post=10))
    until(lambda: sum(map(len, cluster.stored().values())) == 200, timeout=60,
          what="every message stored")
    assert cluster.stored() == acked

    started = [e["pid"] for e in group.log_events() if e.get("event") == "node_started"]
    os.kill(started[1], signal.SIGKILL)  # a node dies: the group starts it again
    def held_by_one() -> list[dict[str, Any]]:
        return [e for e in group.log_events()
                if e.get("event") == "partitions_held" and e.get("node") == "box/1"]

    until(lambda: len(held_by_one()) == 2, timeout=30,
          what="the dead node started again, holding its share")
    assert held_by_one()[-1]["count"] == 8
    until(lambda: len([e for e in group.log_events() if e.get("event") == "listening"]) == 3,
          timeout=30, what="the node started again, listening")
    group.process.send_signal(signal.SIGTERM)
    assert group.process.wait(timeout=30) == 0
    stopped = [e for e in group.log_events() if e.get("event") == "tree_stopped"]
    assert len(stopped) == 2  # the killed one never stopped: the two running did
