"""Fixtures shared by the application tests."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import pytest

from lawhub_actors.settings import Secrets, Settings, load, parse_text
from tests.servers import (  # noqa: F401 - fixtures for every test
    clamd_down,
    clamd_process,
    clamd_server,
    postgres_server,
    postgres_url,
    redis_server,
    redis_url,
)

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO / "config" / "lawhub.toml"
ADMIN_TOKEN = "admin-token-for-tests-0123456789"
APP_SECRET = "app-secret-for-tests-0123456789"
VERIFY_TOKEN = "verify-token-for-tests"
MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
TENANT_TOKENS = {"firm-a": "demo-token-firm-a", "firm-b": "demo-token-firm-b"}


def test_environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """The LAWHUB_* variables a test gateway runs with."""
    return {
        "LAWHUB_ADMIN_TOKEN": ADMIN_TOKEN,
        "LAWHUB_APP_SECRET": APP_SECRET,
        "LAWHUB_VERIFY_TOKEN": VERIFY_TOKEN,
        "LAWHUB_MASTER_KEY": MASTER_KEY,
        "LAWHUB_DATA_DIR": str(data_dir),
        **extra,
    }


@pytest.fixture
def settings() -> Settings:
    return load(SHIPPED_CONFIG)


@pytest.fixture
def make_settings():
    """Settings from TOML text (validated like any config file)."""
    return lambda text: parse_text(text, "test.toml")


@pytest.fixture
def secrets(tmp_path: Path) -> Secrets:
    return Secrets.from_env(test_environment(tmp_path))


test_environment.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@dataclass(frozen=True)
class Storage:
    """Where a test gateway keeps its journal and store: the embedded files,
    or a fresh PostgreSQL database (with the Redis it then needs)."""

    backend: str
    environment: dict[str, str]

    def config(self, text: str) -> str:
        """``text`` (a config with a ``[storage]`` table) set to this backend."""
        assert "[storage]\n" in text
        return text.replace("[storage]\n", f'[storage]\nbackend = "{self.backend}"\n', 1)


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest) -> Storage:
    """Each engine in turn, for the suites that run on both."""
    if request.param == "sqlite":
        return Storage("sqlite", {})
    return Storage("postgres", {"LAWHUB_DATABASE_URL": request.getfixturevalue("postgres_url"),
                                "LAWHUB_REDIS_URL": request.getfixturevalue("redis_url")})
