"""The Graph API stand-in on a frozen clock, behind aiohttp's test client."""

from __future__ import annotations

import pytest

from lawhub_actors.simulator.graph import GraphStandIn
from tests.clock import Clock

TOKEN = "graph-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stand_in(clock: Clock) -> GraphStandIn:
    return GraphStandIn(TOKEN, clock=clock)


@pytest.fixture
async def client(aiohttp_client, stand_in):
    return await aiohttp_client(stand_in.make_app())
