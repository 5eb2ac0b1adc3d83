"""Rate: 400 messages to 40 recipients from a number at 80 msg/s: Meta's stand-in
sees no second with more than 80 and refuses nothing (no 130429, no 131056).

The gateway runs as its own process and Meta's stand-in in this one, as in life:
a stand-in sharing the gateway's interpreter would time arrivals late whenever the
gateway holds the GIL, and see bunches that never left the gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from lawhub_actors.simulator.graph import GraphStandIn
from tests.conftest import REPO
from tests.e2e.outbound_helpers import (
    GRAPH_TOKEN,
    Gateways,
    all_sent,
    busiest_second,
    customers_wrote,
    gateways,  # noqa: F401 - fixture
    meta_in_thread,
    send_text,
)
from tests.waits import until

RATE = 80


@pytest.fixture
def meta() -> Iterator[GraphStandIn]:
    with meta_in_thread(RATE) as stand_in:  # Meta's limit, enforced with 130429
        yield stand_in


async def test_400_messages_to_40_recipients_leave_at_the_numbers_rate_and_never_above(
    tmp_path: Path, gateways: Gateways, meta: GraphStandIn,  # noqa: F811
) -> None:
    config = tmp_path / "lawhub.toml"
    config.write_text((REPO / "config" / "lawhub.toml").read_text()
                      + "\n[retry]\nmax_attempts = 3\nbase_s = 0.05\nmax_s = 0.2\n")
    gateway = await asyncio.to_thread(gateways.start, tmp_path / "var", config,
                                      LAWHUB_ACCESS_TOKEN=GRAPH_TOKEN,
                                      LAWHUB_GRAPH_BASE_URL=meta.base_url)
    customers = [f"62812345004{i:02d}" for i in range(40)]
    async with aiohttp.ClientSession() as session:
        await customers_wrote(session, gateway.url, customers)
        ids = await asyncio.gather(*(send_text(session, gateway.url, c, f"pesan {n}")
                                     for n in range(10) for c in customers))
        # Meta's count, not the API: polling would compete with the stand-in's thread
        await until(lambda: len(meta.sends) >= 400, timeout=30, what="400 sends at Meta")
        await all_sent(session, gateway.url, ids, timeout=10)
    assert [(s.status, s.code) for s in meta.sends if s.status != 200] == []
    arrivals = sorted(s.at for s in meta.sends)
    busiest = busiest_second(arrivals)
    assert busiest <= RATE, f"{busiest} sends within one second"
    assert arrivals[-1] - arrivals[0] >= 400 / RATE - 1.5  # paced, not a burst
