"""Typed application state (aiohttp ``AppKey``s), shared by the handlers."""

from __future__ import annotations

import asyncio

from aiohttp import web

from lawhub_actors.adapters.journal import Journal
from lawhub_actors.adapters.store import Store
from lawhub_actors.bridge import Bridge
from lawhub_actors.runtime import AppRuntime
from lawhub_actors.web.auth import TenantTokens
from lawhub_actors.web.connections import Connections
from lawhub_actors.web.feed import FeedHub
from lawhub_actors.web.ingest_supervisor import IngestState

RUNTIME = web.AppKey("runtime", AppRuntime)
ADMIN_TOKEN = web.AppKey("admin_token", str)
APP_SECRET = web.AppKey("app_secret", bytes)
VERIFY_TOKEN = web.AppKey("verify_token", str)
JOURNAL = web.AppKey("journal", Journal)
WEBHOOK_MAX_BYTES = web.AppKey("webhook_max_bytes", int)
FEED = web.AppKey("feed", FeedHub)
STORE = web.AppKey("store", Store)
TENANT_TOKENS = web.AppKey("tenant_tokens", TenantTokens)
BRIDGE = web.AppKey("bridge", Bridge)
RELOADS = web.AppKey("reloads", asyncio.Lock)
CONFIG_VERSION = web.AppKey("config_version", int)
"""The stored configuration version this node runs (0: none yet)."""
"""Held while a config reload applies: one at a time."""
INGEST = web.AppKey("ingest", IngestState)
CONNECTIONS = web.AppKey("connections", Connections)
"""This process's connections: their cap and deadlines (web/connections.py)."""
