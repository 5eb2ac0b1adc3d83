"""Reading a JSON request body at the API's boundary."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from lawhub_actors.core import limits
from lawhub_actors.web.errors import InvalidParameter


async def json_body(request: web.Request) -> Any:
    """The JSON body (``None`` when it is not JSON: the model refuses it);
    422 when it nests deeper than any API body (orjson refuses past 1,024
    levels instead of recursing as the standard library's parser does)."""
    raw = await request.read()
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if limits.too_deep(document, raw):
        raise InvalidParameter(
            "invalid_body", f"the body nests more than {limits.MAX_DEPTH} levels")
    return document
