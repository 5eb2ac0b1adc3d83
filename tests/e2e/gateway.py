"""An in-process gateway for end-to-end tests, and a feed client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientWebSocketResponse, web
from aiohttp.test_utils import TestClient

from lawhub_actors.simulator import traffic
from tests.conftest import APP_SECRET, REPO, TENANT_TOKENS

SECRET = APP_SECRET.encode()


async def post(client: TestClient, document: dict[str, Any]) -> int:
    signed = traffic.signed(document, SECRET)
    response = await client.post("/webhook", data=signed.body, headers=signed.headers)
    await response.release()
    return response.status


async def config_with_remote_classifier(
    aiohttp_server: Any, classify: Callable[[web.Request], Awaitable[web.Response]],
    timeout_s: float,
) -> str:
    """The shipped config, with ``[assist]`` pointing at ``classify`` served locally."""
    remote = web.Application()
    remote.router.add_post("/classify", classify)
    server = await aiohttp_server(remote)
    return (REPO / "config" / "lawhub.toml").read_text() + (
        f'\n[assist]\nurl = "http://127.0.0.1:{server.port}/classify"\ntimeout_s = {timeout_s}\n'
    )


def auth(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TENANT_TOKENS.get(tenant, f'demo-token-{tenant}')}"}


class Feed:
    """A websocket client of one tenant's feed, collecting frames."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, client: TestClient, tenant: str, since: int = 0) -> Feed:
        ws = await client.ws_connect(f"/ws?since={since}", headers=auth(tenant))
        return cls(ws)

    async def until(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        async def read() -> None:
            while not predicate(self.frames):
                message = await self.ws.receive_json()
                self.frames.append(message)

        await asyncio.wait_for(read(), timeout)
        return self.frames

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame["type"] == type_]

    async def close(self) -> None:
        await self.ws.close()
