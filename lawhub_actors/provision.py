"""Secrets a newcomer's ``make run`` would otherwise lack.

CONTRACT: a missing ``LAWHUB_MASTER_KEY`` is created under the data dir,
with a warning (unless ``[security] require_master_key`` refuses, which
:func:`~lawhub_actors.settings.preflight` checks first). The admin token is
treated the same way so the operator endpoints are usable out of the box;
the token is written to a file readable only by its owner, never logged.
"""

from __future__ import annotations

import base64
import os
import secrets as random_source
import tempfile
from collections.abc import Callable
from pathlib import Path

import structlog
from pydantic import SecretBytes, SecretStr

from lawhub_actors.settings import MASTER_KEY_BYTES, Secrets

log = structlog.get_logger("lawhub.provision")

MASTER_KEY_FILE = "master.key"
ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name, not a token


def provision(secrets: Secrets, *, admin_token: bool = True) -> Secrets:
    """``secrets`` with a master key and an admin token (``admin_token=False``:
    the key only), creating either under ``secrets.data_dir`` when the
    environment does not give it."""
    updates: dict[str, object] = {}
    if secrets.master_key is None:
        text = _read_or_create(
            secrets.data_dir / MASTER_KEY_FILE,
            lambda: base64.b64encode(random_source.token_bytes(MASTER_KEY_BYTES)).decode(),
            "LAWHUB_MASTER_KEY",
        )
        updates["master_key"] = SecretBytes(base64.b64decode(text))
    if admin_token and secrets.admin_token is None:
        text = _read_or_create(
            secrets.data_dir / ADMIN_TOKEN_FILE,
            lambda: random_source.token_urlsafe(32),
            "LAWHUB_ADMIN_TOKEN",
        )
        updates["admin_token"] = SecretStr(text)
    return secrets.model_copy(update=updates) if updates else secrets


def _exclusive(path: Path) -> Path:
    """``path`` made empty and ours (raises ``FileExistsError`` if it exists)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


def _read_or_create(path: Path, make: Callable[[], str], variable: str) -> str:
    if path.is_file():
        log.warning("secret_from_file", variable=variable, file=str(path))
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # Written whole under a name of its own, then linked into place: another
    # node on this data dir making it at the same moment either wins (and we
    # read its value) or finds ours, never half a file.
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
    draft = Path(name)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(draft, path)
    except FileExistsError:
        log.warning("secret_from_file", variable=variable, file=str(path))
        return path.read_text().strip()
    except OSError:  # a filesystem without hard links: created exclusively instead
        try:
            os.replace(draft, _exclusive(path))
        except FileExistsError:
            log.warning("secret_from_file", variable=variable, file=str(path))
            return path.read_text().strip()
    finally:
        draft.unlink(missing_ok=True)
    log.warning("secret_created", variable=variable, file=str(path))
    return value

