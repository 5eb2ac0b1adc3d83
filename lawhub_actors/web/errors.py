"""The JSON error body of every refusal: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import orjson
from aiohttp import web


def error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


class InvalidParameter(web.HTTPUnprocessableEntity):
    """A 422 with the JSON error body, raised from deep inside a handler
    (a query parameter of the wrong form, like a limit over the maximum)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(text=error_body(code, message).decode(), content_type="application/json")


def error_response(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers or None
    )
