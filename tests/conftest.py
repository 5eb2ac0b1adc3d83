"""Fixtures shared by the application tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lawhub_actors.settings import Secrets, Settings, load, parse_text
from tests.servers import redis_server, redis_url  # noqa: F401 - fixtures for every test

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO / "config" / "lawhub.toml"
ADMIN_TOKEN = "admin-token-for-tests-0123456789"


@pytest.fixture
def settings() -> Settings:
    return load(SHIPPED_CONFIG)


@pytest.fixture
def make_settings():
    """Settings from TOML text (validated like any config file)."""
    return lambda text: parse_text(text, "test.toml")


@pytest.fixture
def secrets(tmp_path: Path) -> Secrets:
    return Secrets.from_env({"LAWHUB_ADMIN_TOKEN": ADMIN_TOKEN, "LAWHUB_DATA_DIR": str(tmp_path)})
