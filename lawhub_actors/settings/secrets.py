"""Secrets from the environment, never from config files: :class:`Secrets` reads the
``LAWHUB_*`` variables (CONTRACT.md) and keeps them in ``SecretStr``/``SecretBytes``
so no repr shows them. The master key rotates by version: new data is sealed
with ``LAWHUB_MASTER_KEY`` under ``LAWHUB_MASTER_KEY_VERSION``, and
``LAWHUB_RETIRED_MASTER_KEYS`` keeps older keys able to open what they sealed.

:func:`preflight` checks what only shows when config and environment meet.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretBytes, SecretStr

from lawhub_actors.settings.errors import ConfigError, ConfigIssue
from lawhub_actors.settings.schema import Settings

ENV_FILE = "environment"
"""The "file" of issues about environment variables."""
DEFAULT_GRAPH_BASE_URL = "https://graph.facebook.com/v21.0"
DEFAULT_DATA_DIR = "var"
MASTER_KEY_BYTES = 32


class Secrets(BaseModel):
    """What the environment provides (CONTRACT.md); reprs never show a secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_secret: SecretStr | None = None
    verify_token: SecretStr | None = None
    access_token: SecretStr | None = None
    graph_base_url: str = DEFAULT_GRAPH_BASE_URL
    master_key: SecretBytes | None = None
    master_key_version: int = 1
    """The version of ``master_key``: new data is sealed with it, and each
    sealed value records it, so keys can rotate."""
    retired_master_keys: dict[int, SecretBytes] = Field(default_factory=dict)
    """Earlier master keys by version: they only open what they sealed."""
    admin_token: SecretStr | None = None
    redis_url: SecretStr | None = None
    database_url: SecretStr | None = None
    """PostgreSQL's (``[storage] backend = "postgres"``): a libpq URL or
    key=value string; a secret (it may hold a password)."""
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    node_id: str | None = None
    """This node's name among several (``LAWHUB_NODE_ID`` or ``--node-id``;
    ``serve`` defaults it to host and port). Not a secret: it names the
    node in the database and to operators."""
    node_address: str | None = None
    """Where this node listens (``serve`` sets it), for operators."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Secrets:
        """Read the ``LAWHUB_*`` variables (``os.environ`` by default). Empty
        values count as unset. ``ConfigError`` lists every malformed one."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        issues: list[ConfigIssue] = []
        graph = (get("LAWHUB_GRAPH_BASE_URL") or DEFAULT_GRAPH_BASE_URL).rstrip("/")
        parts = urlsplit(graph)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            issues.append(ConfigIssue(ENV_FILE, "LAWHUB_GRAPH_BASE_URL", "must be an http(s) URL"))
        master_key: bytes | None = None
        encoded = get("LAWHUB_MASTER_KEY")
        if encoded is not None:
            master_key, problem = _decode_master_key(encoded)
            if problem:
                issues.append(ConfigIssue(ENV_FILE, "LAWHUB_MASTER_KEY", problem))
        version, retired = _key_versions(
            get("LAWHUB_MASTER_KEY_VERSION"), get("LAWHUB_RETIRED_MASTER_KEYS"), issues
        )
        redis_url = get("LAWHUB_REDIS_URL")
        if redis_url is not None and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
            issues.append(
                ConfigIssue(
                    ENV_FILE, "LAWHUB_REDIS_URL", "must be a redis://, rediss:// or unix:// URL"
                )
            )
        database_url = get("LAWHUB_DATABASE_URL")
        if database_url is not None and not _libpq_target(database_url):
            issues.append(ConfigIssue(
                ENV_FILE, "LAWHUB_DATABASE_URL",
                "must be a postgresql:// (or postgres://) URL or libpq key=value settings"))
        if issues:
            raise ConfigError(issues)
        return cls(
            app_secret=_secret(get("LAWHUB_APP_SECRET")),
            verify_token=_secret(get("LAWHUB_VERIFY_TOKEN")),
            access_token=_secret(get("LAWHUB_ACCESS_TOKEN")),
            graph_base_url=graph,
            master_key=None if master_key is None else SecretBytes(master_key),
            master_key_version=version,
            retired_master_keys={v: SecretBytes(key) for v, key in retired.items()},
            admin_token=_secret(get("LAWHUB_ADMIN_TOKEN")),
            redis_url=_secret(redis_url),
            database_url=_secret(database_url),
            data_dir=Path(get("LAWHUB_DATA_DIR") or DEFAULT_DATA_DIR),
            node_id=get("LAWHUB_NODE_ID"),
        )

    def values(self) -> list[str]:
        """Every secret as text, as it could appear in a log line (for redaction):
        the tokens, the master key in both base64 alphabets, the Redis URL and
        its password."""
        out = [
            secret.get_secret_value()
            for secret in (
                self.app_secret,
                self.verify_token,
                self.access_token,
                self.admin_token,
                self.redis_url,
                self.database_url,
            )
            if secret is not None
        ]
        master_keys = [*self.retired_master_keys.values()]
        if self.master_key is not None:
            master_keys.append(self.master_key)
        for secret in master_keys:
            key = secret.get_secret_value()
            out += [base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode()]
        for url in (self.redis_url, self.database_url):
            password = None if url is None else _password(url.get_secret_value())
            if password:
                out.append(password)
        return out


def _libpq_target(value: str) -> bool:
    """A libpq connection URL, or key=value settings (``host=/run/pg dbname=lawhub``)."""
    if "://" in value:
        return urlsplit(value).scheme in ("postgresql", "postgres")
    return all("=" in part for part in value.split())


def _password(url: str) -> str | None:
    """The password in a URL or in libpq key=value settings."""
    if "://" in url:
        return urlsplit(url).password
    for part in url.split():
        key, _, value = part.partition("=")
        if key == "password":
            return value
    return None


def _secret(value: str | None) -> SecretStr | None:
    return None if value is None else SecretStr(value)


def _key_versions(
    version_text: str | None, retired_text: str | None, issues: list[ConfigIssue]
) -> tuple[int, dict[int, bytes]]:
    """``LAWHUB_MASTER_KEY_VERSION`` (default 1) and ``LAWHUB_RETIRED_MASTER_KEYS``
    (``"<version>:<base64>,..."``); problems go to ``issues``, never with a key."""
    version, valid = 1, True
    if version_text is not None:
        valid = version_text.isdigit() and 1 <= int(version_text) <= 2**31
        if valid:
            version = int(version_text)
        else:
            issues.append(ConfigIssue(ENV_FILE, "LAWHUB_MASTER_KEY_VERSION",
                                      "must be a whole number from 1"))
    retired: dict[int, bytes] = {}
    for index, item in enumerate((retired_text or "").split(",")):
        if not item.strip():
            continue
        where = f"LAWHUB_RETIRED_MASTER_KEYS[{index}]"
        number, sep, encoded = item.strip().partition(":")
        if not sep or not number.isdigit() or int(number) < 1:
            issues.append(ConfigIssue(ENV_FILE, where, "must be <version>:<base64 key>"))
            continue
        if (valid and int(number) == version) or int(number) in retired:
            issues.append(ConfigIssue(ENV_FILE, where, f"version {number} is given twice"))
            continue
        key, problem = _decode_master_key(encoded)
        if key is None:
            issues.append(ConfigIssue(ENV_FILE, where, problem or "invalid key"))
        else:
            retired[int(number)] = key
    return version, retired


def _decode_master_key(encoded: str) -> tuple[bytes | None, str | None]:
    """Standard or URL-safe base64 of exactly 32 bytes. Errors never echo the value."""
    for alphabet in (b"+/", b"-_"):
        try:
            key = base64.b64decode(encoded, altchars=alphabet, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(key) != MASTER_KEY_BYTES:
            return None, (
                f"must be base64 of exactly {MASTER_KEY_BYTES} bytes, got {len(key)} bytes"
            )
        return key, None
    return None, f"not valid base64 (expected base64 of {MASTER_KEY_BYTES} bytes)"


def preflight(settings: Settings, secrets: Secrets) -> list[ConfigIssue]:
    """Problems that only show when config and environment meet, checked before serving."""
    issues = []
    if settings.security.require_master_key and secrets.master_key is None:
        issues.append(ConfigIssue(
            ENV_FILE, "LAWHUB_MASTER_KEY",
            "not set, and [security] require_master_key = true refuses to generate one"))
    if settings.storage.backend == "postgres":
        # Every node seals and keys with the same master key, so it cannot be
        # one a node made for itself under its data dir.
        for name, value in (("LAWHUB_DATABASE_URL", secrets.database_url),
                            ("LAWHUB_REDIS_URL", secrets.redis_url),
                            ("LAWHUB_MASTER_KEY", secrets.master_key)):
            if value is None:
                issues.append(ConfigIssue(
                    ENV_FILE, name, 'not set, and [storage] backend = "postgres" needs it'))
    return issues
