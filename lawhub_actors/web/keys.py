"""Typed application state (aiohttp ``AppKey``s), shared by the handlers."""

from __future__ import annotations

from aiohttp import web

from lawhub_actors.runtime import AppRuntime

RUNTIME = web.AppKey("runtime", AppRuntime)
ADMIN_TOKEN = web.AppKey("admin_token", str)
