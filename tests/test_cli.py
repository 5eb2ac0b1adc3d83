"""The command line: check-config, serve's hand-off to the web app (demo: test_demo.py)."""

from __future__ import annotations

import base64
import errno
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from lawhub_actors import cli, logs
from lawhub_actors.settings import Secrets, Settings

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = str(ROOT / "config" / "lawhub.toml")

BROKEN = """
[[tenants]]
id = "Firm A"
api_token_sha256 = "abc"

[[tenants.phone_numbers]]
id = "1065"
display = "+62 811 1000 001"
tier = "3K"
throughput_mps = 5000

[[tenants]]
id = "firm-b"
api_token_sha256 = "069ed143a3bcd80365b7af299aca6ef2ae90e7abdbd80121d7b8648a1e384132"

[[tenants.phone_numbers]]
id = "1065"
display = "+62 811 1000 002"
tier = "250"

[[templates]]
tenant = "firm-z"
name = "reminder"
language = "id"
category = "transactional"
status = "approved"
params = 1

[server]
port = 70000

[supervision.pools]
session_shard = 8
"""

# (key, a fragment of the reason) for every problem in BROKEN.
BROKEN_ISSUES = [
    ("tenants[0].id", "slug"),
    ("tenants[0].api_token_sha256", "64 lowercase hex"),
    ("tenants[0].phone_numbers[0].tier", "'3K'"),
    ("tenants[0].phone_numbers[0].throughput_mps", "less than or equal to 1000"),
    ("templates[0].category", "'transactional'"),
    ("server.port", "less than or equal to 65535"),
    ("supervision.pools.session_shard", "did you mean 'session_shards'"),
    ("tenants[1].phone_numbers[0].id", "duplicate phone_number_id '1065'"),
    ("templates[0].tenant", "unknown tenant 'firm-z'"),
]


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN)
    return path


def assert_reports_every_issue(stderr: str, path: Path) -> None:
    lines = stderr.splitlines()
    assert len(lines) == len(BROKEN_ISSUES), stderr
    for key, fragment in BROKEN_ISSUES:
        prefix = f"{path}: {key}: "
        matching = [line for line in lines if line.startswith(prefix)]
        assert matching, f"no line for {key} in:\n{stderr}"
        assert fragment in matching[0]


def run_py_check_config(path: Path) -> subprocess.CompletedProcess[str]:
    """``python run.py check-config PATH`` as its own process."""
    return subprocess.run(
        [sys.executable, "run.py", "check-config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_of_a_valid_file_prints_ok_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["check-config", SHIPPED]) == 0

    out, err = capsys.readouterr()
    assert out == f"ok: {SHIPPED}\n"
    assert err == ""


def test_check_config_prints_every_issue_to_stderr_and_exits_2(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check-config", str(broken)]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert_reports_every_issue(err, broken)


def test_run_py_check_config_reports_every_error_and_exits_2(broken: Path) -> None:
    result = run_py_check_config(broken)

    assert result.returncode == 2
    assert result.stdout == ""
    assert_reports_every_issue(result.stderr, broken)


def test_check_config_of_a_missing_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nope.toml"

    assert cli.main(["check-config", str(path)]) == 2

    assert capsys.readouterr().err == f"{path}: (file): file not found\n"


# Tests run as root, which ignores permission bits, so "unreadable" is made
# of paths that no one can read: each makes open() itself fail.
UNREADABLE = ["directory", "under_a_regular_file", "symlink_loop"]


def unreadable(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A config path of this kind that open() refuses, and the reason expected."""
    if kind == "directory":
        path = tmp_path / "lawhub.toml"
        path.mkdir()
        return path, "is a directory, not a file"
    if kind == "under_a_regular_file":  # ENOTDIR: a path component is a file
        parent = tmp_path / "config"
        parent.write_text("[server]\n")
        return parent / "lawhub.toml", "cannot read: Not a directory"
    if kind == "symlink_loop":  # ELOOP
        path, other = tmp_path / "lawhub.toml", tmp_path / "other.toml"
        path.symlink_to(other)
        other.symlink_to(path)
        return path, "cannot read: Too many levels of symbolic links"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", UNREADABLE)
def test_check_config_of_an_unreadable_path_names_file_key_and_reason_and_exits_2(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path, reason = unreadable(tmp_path, kind)

    assert cli.main(["check-config", str(path)]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{path}: (file): {reason}\n"


@pytest.mark.parametrize("kind", UNREADABLE)
def test_run_py_check_config_of_an_unreadable_path_exits_2(tmp_path: Path, kind: str) -> None:
    path, reason = unreadable(tmp_path, kind)

    result = run_py_check_config(path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"{path}: (file): {reason}\n"


def test_check_config_of_a_file_it_may_not_read_reports_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The permission error itself, as root cannot provoke it: the read fails
    the way the kernel would fail it for a mode-000 file and a normal user."""
    path = tmp_path / "lawhub.toml"
    path.write_text("[server]\n")

    def denied(self: Path) -> bytes:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)

    assert cli.main(["check-config", str(path)]) == 2

    assert capsys.readouterr().err == f"{path}: (file): cannot read: Permission denied\n"


def test_check_config_without_path_checks_lawhub_config(
    broken: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAWHUB_CONFIG", str(broken))

    assert cli.main(["check-config"]) == 2

    assert_reports_every_issue(capsys.readouterr().err, broken)


def test_a_port_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--port", "70000"])

    assert caught.value.code == 2
    assert "0..65535" in capsys.readouterr().err


class FakeWeb:
    """Stands in for ``lawhub_actors.web.app`` and the logging setup."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, exit_code: int = 0) -> None:
        self.calls: list[tuple[Settings, Secrets, str, int]] = []
        self.log_setups: list[dict[str, Any]] = []
        self.config_files: list[tuple[Path | None, str | None]] = []
        self.exit_code = exit_code
        package = types.ModuleType("lawhub_actors.web")
        app = types.ModuleType("lawhub_actors.web.app")
        app.serve = self.serve  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "lawhub_actors.web", package)
        monkeypatch.setitem(sys.modules, "lawhub_actors.web.app", app)
        monkeypatch.setattr(logs, "configure", self.configure)
        for name in list(os.environ):
            if name.startswith("LAWHUB_"):
                monkeypatch.delenv(name)

    def serve(self, settings: Settings, secrets: Secrets, *, host: str, port: int,
              config_path: Path | None = None, config_text: str | None = None) -> int:
        self.calls.append((settings, secrets, host, port))
        self.config_files.append((config_path, config_text))
        return self.exit_code

    def configure(self, **kwargs: Any) -> None:
        self.log_setups.append(kwargs)


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch) -> FakeWeb:
    return FakeWeb(monkeypatch)


def test_serve_is_the_default_and_uses_the_configs_host_and_port(web: FakeWeb) -> None:
    assert cli.main(["--config", SHIPPED]) == 0

    [(settings, secrets, host, port)] = web.calls
    assert [tenant.id for tenant in settings.tenants] == ["firm-a", "firm-b"]
    assert isinstance(secrets, Secrets)
    assert (host, port) == ("127.0.0.1", 8080)
    # SIGHUP reads the same file again; operators edit the text it held.
    assert web.config_files == [(Path(SHIPPED), Path(SHIPPED).read_text())]


def test_serve_command_line_host_and_port_override_the_config(web: FakeWeb) -> None:
    assert cli.main(["serve", "--config", SHIPPED, "--host", "0.0.0.0", "--port", "0"]) == 0

    [(_, _, host, port)] = web.calls
    assert (host, port) == ("0.0.0.0", 0)


def test_serve_reads_the_config_named_by_lawhub_config(
    web: FakeWeb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "alt.toml"
    path.write_text("[server]\nport = 9191\n")
    monkeypatch.setenv("LAWHUB_CONFIG", str(path))

    assert cli.main([]) == 0

    [(_, _, _, port)] = web.calls
    assert port == 9191


def test_serve_returns_the_web_apps_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeWeb(monkeypatch, exit_code=3)

    assert cli.main(["--config", SHIPPED]) == 3


def test_serve_configures_logging_with_the_configs_level_and_the_secrets(
    web: FakeWeb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[logging]\nlevel = "debug"\n')
    monkeypatch.setenv("LAWHUB_APP_SECRET", "app-secret-for-logs")

    assert cli.main(["--config", str(path)]) == 0

    [setup] = web.log_setups
    assert setup["level"] == "debug"
    assert "app-secret-for-logs" in setup["secrets"].values()


def test_serve_with_an_invalid_config_prints_every_issue_and_never_starts(
    web: FakeWeb, broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--config", str(broken)]) == 2

    assert web.calls == []
    assert_reports_every_issue(capsys.readouterr().err, broken)


def test_serve_with_a_bad_master_key_exits_2(
    web: FakeWeb, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAWHUB_MASTER_KEY", base64.b64encode(b"too short").decode())

    assert cli.main(["--config", SHIPPED]) == 2

    assert web.calls == []
    assert capsys.readouterr().err.startswith("environment: LAWHUB_MASTER_KEY: ")


def test_serve_refuses_to_start_without_a_master_key_when_the_config_requires_one(
    web: FakeWeb, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[security]\nrequire_master_key = true\n")

    assert cli.main(["--config", str(path)]) == 2

    assert web.calls == []
    assert "require_master_key" in capsys.readouterr().err


@pytest.fixture
def quiet_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Logging left as the suite has it: configured here, it would write to
    this test's captured stderr after the test closed it."""
    monkeypatch.setattr(logs, "configure", lambda **kwargs: None)


def _postgres_config(tmp_path: Path) -> Path:
    config = tmp_path / "lawhub.toml"
    shipped = Path(SHIPPED).read_text()
    assert "[storage]\n" in shipped
    config.write_text(shipped.replace("[storage]\n", '[storage]\nbackend = "postgres"\n', 1))
    return config


def test_migrate_makes_the_postgres_schema_once_and_then_says_it_is_current(
        quiet_logs: None, tmp_path: Path, postgres_url: str, redis_url: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = _postgres_config(tmp_path)
    monkeypatch.setenv("LAWHUB_DATABASE_URL", postgres_url)
    monkeypatch.setenv("LAWHUB_REDIS_URL", redis_url)
    monkeypatch.setenv("LAWHUB_MASTER_KEY", base64.b64encode(bytes(range(32))).decode())
    monkeypatch.setenv("LAWHUB_DATA_DIR", str(tmp_path / "data"))

    assert cli.main(["migrate", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "postgres: schema version 0 -> 6\n"
    assert cli.main(["migrate", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "postgres: schema already at version 6\n"


def test_migrate_without_the_database_it_needs_exits_2_naming_what_is_missing(
        quiet_logs: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("LAWHUB_DATABASE_URL", "LAWHUB_REDIS_URL", "LAWHUB_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["migrate", "--config", str(_postgres_config(tmp_path))]) == 2
    assert "LAWHUB_DATABASE_URL" in capsys.readouterr().err


def test_migrate_of_a_database_that_cannot_be_reached_exits_1(
        quiet_logs: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LAWHUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LAWHUB_DATABASE_URL", f"host={tmp_path} dbname=nowhere user=nobody")
    monkeypatch.setenv("LAWHUB_REDIS_URL", "unix:///nowhere.sock")
    monkeypatch.setenv("LAWHUB_MASTER_KEY", base64.b64encode(bytes(range(32))).decode())
    assert cli.main(["migrate", "--config", str(_postgres_config(tmp_path))]) == 1
    assert "migrate failed: " in capsys.readouterr().err
    assert not (tmp_path / "data" / "admin.token").exists()  # migrate makes no admin token


def test_migrate_of_the_embedded_store_upgrades_its_file(
        quiet_logs: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LAWHUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LAWHUB_MASTER_KEY", base64.b64encode(bytes(range(32))).decode())
    assert cli.main(["migrate", "--config", SHIPPED]) == 0
    assert capsys.readouterr().out == "sqlite: schema version 0 -> 6\n"
    assert (tmp_path / "data" / "lawhub.sqlite3").exists()
