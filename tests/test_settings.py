"""Config schema, file checks and secrets from the environment."""

from __future__ import annotations

import base64
import hashlib
import json
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from lawhub_actors import settings as cfg
from lawhub_actors.settings import ConfigError, ConfigIssue, Secrets, Settings

ROOT = Path(__file__).resolve().parents[1]
TOKEN_HASH = hashlib.sha256(b"token-a").hexdigest()
OTHER_HASH = hashlib.sha256(b"token-b").hexdigest()

MINIMAL = f"""
[[tenants]]
id = "firm-a"
api_token_sha256 = "{TOKEN_HASH}"

[[tenants.phone_numbers]]
id = "106540352242922"        # Meta's phone_number_id
display = "+62 811 1000 001"
tier = "2K"                   # 250 | 2K | 10K | 100K | unlimited (unique users per moving 24 h)
throughput_mps = 80           # default 80 (Meta: 80, up to 1000; 20 for numbers shared ...)

[[templates]]
tenant = "firm-a"
name = "appointment_reminder"
language = "id"
category = "utility"          # marketing | utility | authentication
status = "approved"           # approved | pending | rejected | paused
params = 2                    # number of body parameters {{{{1}}}}..{{{{n}}}}
"""


def tenant(tenant_id: str, token: str, *numbers: str) -> str:
    text = f'[[tenants]]\nid = "{tenant_id}"\napi_token_sha256 = "{token}"\n'
    for number in numbers:
        text += f'[[tenants.phone_numbers]]\nid = "{number}"\ndisplay = "x"\ntier = "250"\n'
    return text


def template(owner: str, name: str = "hello", language: str = "id") -> str:
    return (
        f'[[templates]]\ntenant = "{owner}"\nname = "{name}"\nlanguage = "{language}"\n'
        'category = "utility"\nstatus = "approved"\nparams = 0\n'
    )


def keys(issues: list[ConfigIssue]) -> list[str]:
    return [issue.key for issue in issues]


def issue_at(issues: list[ConfigIssue], key: str) -> ConfigIssue:
    matching = [issue for issue in issues if issue.key == key]
    assert matching, f"no issue at {key}: {issues}"
    return matching[0]


# --- valid configs -----------------------------------------------------------


def test_minimal_contract_config_is_valid_and_gets_defaults() -> None:
    settings = cfg.parse_text(MINIMAL, "minimal.toml")

    number = settings.tenants[0].phone_numbers[0]
    assert number.throughput_mps == 80
    assert number.unique_users_per_24h == 2_000
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.server.webhook_max_bytes == 4 * 1024 * 1024
    assert settings.supervision.mailbox.capacity == 10_000
    assert settings.supervision.message_retries == 1
    assert settings.template("firm-a", "appointment_reminder", "id") is not None


def test_empty_document_is_a_valid_config_with_every_default() -> None:
    settings = cfg.parse_text("", "empty.toml")

    assert settings.tenants == []
    assert settings.supervision.pools.session_shards == 4
    assert settings.admin.allow_fault_injection is False
    assert settings.security.require_master_key is False


def test_shipped_config_is_valid() -> None:
    assert cfg.check(ROOT / "config" / "lawhub.toml") == []


def test_shipped_config_token_hashes_are_the_documented_demo_tokens() -> None:
    settings = cfg.load(ROOT / "config" / "lawhub.toml")

    for item in settings.tenants:
        expected = hashlib.sha256(f"demo-token-{item.id}".encode()).hexdigest()
        assert item.api_token_sha256 == expected


def test_example_config_is_valid() -> None:
    assert cfg.check(ROOT / "config" / "lawhub.example.toml") == []


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _schema_keys(model: type[BaseModel], prefix: str) -> list[tuple[str, str]]:
    """(table path, key) for every field of the schema, nested tables included."""
    found: list[tuple[str, str]] = []
    for name, field in model.model_fields.items():
        found.append((prefix, name))
        for inner in _models_in(field.annotation):
            found += _schema_keys(inner, f"{prefix}.{name}".lstrip("."))
    return found


def test_example_config_sets_or_documents_every_key() -> None:
    text = (ROOT / "config" / "lawhub.example.toml").read_text()
    data = tomllib.loads(text)

    def present(table: str, key: str) -> bool:
        node: Any = data
        for part in filter(None, table.split(".")):
            if part == "overrides":
                node = next(iter(node[part].values()))
                continue
            node = node[part]
            node = node[0] if isinstance(node, list) else node
        return key in node or f"# {key} =" in text

    missing = [
        f"{table}.{key}" for table, key in _schema_keys(Settings, "") if not present(table, key)
    ]
    assert missing == []


def test_tier_accepts_250_written_as_an_integer() -> None:
    text = tenant("firm-a", TOKEN_HASH, "1").replace('tier = "250"', "tier = 250")

    settings = cfg.parse_text(text)

    assert settings.tenants[0].phone_numbers[0].tier == "250"


def test_tier_refuses_other_integers() -> None:
    text = tenant("firm-a", TOKEN_HASH, "1").replace('tier = "250"', "tier = 2000")

    issues = cfg.check_text(text, "c.toml")

    assert keys(issues) == ["tenants[0].phone_numbers[0].tier"]


def test_phone_number_id_accepts_an_integer_and_keeps_it_as_digits() -> None:
    text = tenant("firm-a", TOKEN_HASH, "1").replace('id = "1"', "id = 106540352242922")

    settings = cfg.parse_text(text)

    assert settings.tenant_for_phone_number("106540352242922") is settings.tenants[0]


def test_shards_for_uses_the_tenant_override_else_the_pool_default() -> None:
    text = (
        tenant("firm-a", TOKEN_HASH).replace("[[tenants]]\n", "[[tenants]]\nshards = 9\n")
        + tenant("firm-b", OTHER_HASH)
        + "[supervision.pools]\nsession_shards = 3\n"
    )
    settings = cfg.parse_text(text)

    assert settings.shards_for("firm-a") == 9
    assert settings.shards_for("firm-b") == 3
    with pytest.raises(KeyError):
        settings.shards_for("nobody")


def test_supervisor_override_applies_only_to_its_path() -> None:
    settings = cfg.parse_text(
        '[supervision]\nmax_restarts = 7\n[supervision.overrides."inbound/sessions"]\n'
        'max_restarts = 2\nstrategy = "one_for_all"\n'
    )
    supervision = settings.supervision

    tuned = supervision.tuning_for("inbound/sessions", "one_for_one")
    plain = supervision.tuning_for("inbound", "one_for_one")

    assert (tuned.strategy, tuned.max_restarts, tuned.period_s) == ("one_for_all", 2, 10.0)
    assert (plain.strategy, plain.max_restarts, plain.period_s) == ("one_for_one", 7, 10.0)


def test_public_dict_is_json_and_validates_back_to_the_same_settings() -> None:
    settings = cfg.load(ROOT / "config" / "lawhub.toml")

    public = json.loads(json.dumps(settings.public_dict()))

    assert Settings.model_validate(public) == settings


def test_sqlite_path_is_under_the_data_dir_unless_absolute(tmp_path: Path) -> None:
    relative = cfg.parse_text("")
    absolute = cfg.parse_text(f'[storage]\nsqlite_file = "{tmp_path / "x.db"}"\n')

    assert relative.storage.sqlite_path(Path("var")) == Path("var/lawhub.sqlite3")
    assert absolute.storage.sqlite_path(Path("var")) == tmp_path / "x.db"


# --- invalid configs -----------------------------------------------------------


def test_every_field_error_is_reported_with_file_key_and_reason() -> None:
    text = f"""
[[tenants]]
id = "Firm_A"
api_token_sha256 = "{TOKEN_HASH.upper()}"
[[tenants.phone_numbers]]
id = "1"
display = "x"
tier = "5K"
throughput_mps = 2000
[server]
port = "8080"
prot = 1
[supervision.mailbox]
capacity = 0
overflow = "drop"
[supervision.backoff]
min_s = 10.0
max_s = 1.0
jitter = 1.5
"""
    issues = cfg.check_text(text, "bad.toml")

    assert {issue.file for issue in issues} == {"bad.toml"}
    assert sorted(keys(issues)) == sorted(
        [
            "tenants[0].id",
            "tenants[0].api_token_sha256",
            "tenants[0].phone_numbers[0].tier",
            "tenants[0].phone_numbers[0].throughput_mps",
            "server.port",
            "server.prot",
            "supervision.mailbox.capacity",
            "supervision.mailbox.overflow",
            "supervision.backoff.jitter",
        ]
    )
    assert "slug" in issue_at(issues, "tenants[0].id").reason
    assert "'5K'" in issue_at(issues, "tenants[0].phone_numbers[0].tier").reason
    assert "unlimited" in issue_at(issues, "tenants[0].phone_numbers[0].tier").reason
    assert "did you mean 'port'" in issue_at(issues, "server.prot").reason


def test_min_above_max_is_reported_on_its_table() -> None:
    issues = cfg.check_text(
        "[supervision.backoff]\nmin_s = 10.0\nmax_s = 1.0\n"
        "[retry]\nbase_s = 90.0\n"
        "[breaker]\ncooldown_s = 600.0\n"
        "[limits]\npair_rate_per_6s = 50\n",
        "c.toml",
    )

    assert keys(issues) == ["supervision.backoff", "limits", "breaker", "retry"]
    assert "min_s (10.0) must be <= max_s (1.0)" in issues[0].reason


def test_unknown_section_is_an_error() -> None:
    issues = cfg.check_text("[sever]\nport = 1\n", "c.toml")

    assert keys(issues) == ["sever"]
    assert "did you mean 'server'" in issues[0].reason


def test_numbers_given_as_strings_are_refused_not_coerced() -> None:
    issues = cfg.check_text(
        '[server]\nport = "8080"\n[admin]\nallow_fault_injection = "yes"\n', "c"
    )

    assert keys(issues) == ["server.port", "admin.allow_fault_injection"]


def test_bad_supervisor_override_path_and_key_are_reported() -> None:
    issues = cfg.check_text(
        '[supervision.overrides."Inbound Sessions"]\nmax_restarts = 1\n'
        '[supervision.overrides."inbound/sessions"]\nmaxrestarts = 1\n',
        "c.toml",
    )

    assert keys(issues) == [
        'supervision.overrides."Inbound Sessions"',
        'supervision.overrides."inbound/sessions".maxrestarts',
    ]


def test_duplicate_tenant_ids_are_reported() -> None:
    text = tenant("firm-a", TOKEN_HASH) + tenant("firm-a", OTHER_HASH)

    issues = cfg.check_text(text, "c.toml")

    assert issues == [
        ConfigIssue("c.toml", "tenants[1].id", "duplicate tenant id 'firm-a' (first at tenants[0])")
    ]


def test_phone_number_ids_must_be_unique_across_tenants() -> None:
    text = tenant("firm-a", TOKEN_HASH, "111", "222") + tenant("firm-b", OTHER_HASH, "222")

    issues = cfg.check_text(text, "c.toml")

    assert keys(issues) == ["tenants[1].phone_numbers[0].id"]
    assert "tenants[0].phone_numbers[1]" in issues[0].reason


def test_two_tenants_may_not_share_an_api_token() -> None:
    issues = cfg.check_text(tenant("firm-a", TOKEN_HASH) + tenant("firm-b", TOKEN_HASH), "c")

    assert keys(issues) == ["tenants[1].api_token_sha256"]


def test_template_for_unknown_tenant_is_reported() -> None:
    issues = cfg.check_text(tenant("firm-a", TOKEN_HASH) + template("firm-z"), "c.toml")

    assert keys(issues) == ["templates[0].tenant"]
    assert "unknown tenant 'firm-z'" in issues[0].reason
    assert "firm-a" in issues[0].reason


def test_template_identity_is_tenant_name_and_language() -> None:
    text = (
        tenant("firm-a", TOKEN_HASH)
        + template("firm-a", "hello", "id")
        + template("firm-a", "hello", "en")
        + template("firm-a", "hello", "id")
    )

    issues = cfg.check_text(text, "c.toml")

    assert keys(issues) == ["templates[2]"]
    assert "templates[0]" in issues[0].reason


def test_cross_field_errors_are_reported_together_with_field_errors() -> None:
    text = tenant("firm-a", "not-a-hash") + tenant("firm-a", OTHER_HASH) + template("ghost")

    issues = cfg.check_text(text, "c.toml")

    assert sorted(keys(issues)) == [
        "templates[0].tenant",
        "tenants[0].api_token_sha256",
        "tenants[1].id",
    ]


def test_validating_a_settings_dict_directly_enforces_the_cross_field_rules() -> None:
    data = tomllib.loads(tenant("firm-a", TOKEN_HASH) + tenant("firm-a", OTHER_HASH))

    with pytest.raises(ValidationError, match=r"tenants\[1\]\.id: duplicate tenant id"):
        Settings.model_validate(data)


def test_toml_syntax_error_reports_line_and_column() -> None:
    issues = cfg.check_text('[server]\nport = 8080\nhost = "x\n', "c.toml")

    assert len(issues) == 1
    assert issues[0].key == cfg.SYNTAX_KEY
    assert "line 3, column" in issues[0].reason


def test_missing_file_is_one_issue(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    assert cfg.check(path) == [ConfigIssue(str(path), cfg.FILE_KEY, "file not found")]


def test_directory_as_path_is_one_issue(tmp_path: Path) -> None:
    assert cfg.check(tmp_path) == [
        ConfigIssue(str(tmp_path), cfg.FILE_KEY, "is a directory, not a file")
    ]


def test_invalid_utf8_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[server]\nhost = "caf\xe9"\n')

    issues = cfg.check(path)

    assert keys(issues) == [cfg.FILE_KEY]
    assert "not valid UTF-8" in issues[0].reason
    assert "0xe9 at line 2" in issues[0].reason


def test_load_raises_config_error_carrying_every_issue(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[server]\nport = -1\n[limits]\nmedia_max_bytes = 0\n")

    with pytest.raises(ConfigError) as caught:
        cfg.load(path)

    assert keys(caught.value.issues) == ["server.port", "limits.media_max_bytes"]
    assert str(caught.value).startswith(f"{path}: server.port: ")


def test_parse_text_and_check_text_agree() -> None:
    text = '[server]\nport = "x"\n'

    with pytest.raises(ConfigError) as caught:
        cfg.parse_text(text, "body.toml")

    assert caught.value.issues == cfg.check_text(text, "body.toml")


# --- secrets -----------------------------------------------------------------

KEY = bytes(range(32))


def test_secrets_default_to_unset_with_documented_defaults() -> None:
    secrets = Secrets.from_env({})

    assert secrets.app_secret is None
    assert secrets.master_key is None
    assert secrets.graph_base_url == "https://graph.facebook.com/v21.0"
    assert secrets.data_dir == Path("var")


def test_secrets_are_read_from_every_documented_variable() -> None:
    env = {
        "LAWHUB_APP_SECRET": "app-secret-1",
        "LAWHUB_VERIFY_TOKEN": "verify-1",
        "LAWHUB_ACCESS_TOKEN": "access-1",
        "LAWHUB_GRAPH_BASE_URL": "http://127.0.0.1:9999/v21.0/",
        "LAWHUB_MASTER_KEY": base64.b64encode(KEY).decode(),
        "LAWHUB_ADMIN_TOKEN": "admin-1",
        "LAWHUB_REDIS_URL": "redis://:pw-123456@localhost:6379/0",
        "LAWHUB_DATA_DIR": "/srv/lawhub",
    }

    secrets = Secrets.from_env(env)

    assert secrets.app_secret is not None
    assert secrets.app_secret.get_secret_value() == "app-secret-1"
    assert secrets.master_key is not None
    assert secrets.master_key.get_secret_value() == KEY
    assert secrets.graph_base_url == "http://127.0.0.1:9999/v21.0"
    assert secrets.data_dir == Path("/srv/lawhub")
    assert "pw-123456" in secrets.values()
    assert base64.b64encode(KEY).decode() in secrets.values()


def test_secrets_repr_never_shows_a_value() -> None:
    secrets = Secrets.from_env(
        {"LAWHUB_APP_SECRET": "app-secret-1", "LAWHUB_MASTER_KEY": base64.b64encode(KEY).decode()}
    )

    assert "app-secret-1" not in repr(secrets)
    assert "app-secret-1" not in str(secrets)
    assert repr(KEY) not in repr(secrets)


def test_empty_variables_count_as_unset() -> None:
    secrets = Secrets.from_env({"LAWHUB_APP_SECRET": "", "LAWHUB_MASTER_KEY": "  "})

    assert secrets.app_secret is None
    assert secrets.master_key is None


def test_url_safe_base64_master_key_is_accepted() -> None:
    key = b"\xff" * 32
    secrets = Secrets.from_env({"LAWHUB_MASTER_KEY": base64.urlsafe_b64encode(key).decode()})

    assert secrets.master_key is not None
    assert secrets.master_key.get_secret_value() == key


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(b"short").decode(), "exactly 32 bytes, got 5 bytes"),
        (base64.b64encode(bytes(33)).decode(), "exactly 32 bytes, got 33 bytes"),
    ],
)
def test_bad_master_key_is_a_clear_error_that_never_echoes_it(value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Secrets.from_env({"LAWHUB_MASTER_KEY": value})

    [issue] = caught.value.issues
    assert (issue.file, issue.key) == ("environment", "LAWHUB_MASTER_KEY")
    assert reason in issue.reason
    assert value not in str(caught.value)


def test_retired_master_keys_and_the_current_version_are_read_for_rotation() -> None:
    old, older = bytes(range(32)), bytes(range(1, 33))
    secrets = Secrets.from_env({
        "LAWHUB_MASTER_KEY": base64.b64encode(KEY).decode(),
        "LAWHUB_MASTER_KEY_VERSION": "3",
        "LAWHUB_RETIRED_MASTER_KEYS": f"2:{base64.b64encode(old).decode()}, "
                                      f"1:{base64.urlsafe_b64encode(older).decode()}",
    })
    assert secrets.master_key_version == 3
    assert {v: k.get_secret_value() for v, k in secrets.retired_master_keys.items()} == {
        2: old, 1: older,
    }
    assert base64.b64encode(old).decode() in secrets.values()  # redacted from logs too
    assert base64.b64encode(old).decode() not in repr(secrets)


def test_bad_rotation_variables_are_reported_each_without_echoing_a_key() -> None:
    key = base64.b64encode(KEY).decode()
    with pytest.raises(ConfigError) as caught:
        Secrets.from_env({
            "LAWHUB_MASTER_KEY": key,
            "LAWHUB_MASTER_KEY_VERSION": "0",
            "LAWHUB_RETIRED_MASTER_KEYS": f"two:{key},1:{key},1:{key},3:c2hvcnQ=",
        })
    assert [(i.key, i.reason) for i in caught.value.issues] == [
        ("LAWHUB_MASTER_KEY_VERSION", "must be a whole number from 1"),
        ("LAWHUB_RETIRED_MASTER_KEYS[0]", "must be <version>:<base64 key>"),
        ("LAWHUB_RETIRED_MASTER_KEYS[2]", "version 1 is given twice"),
        ("LAWHUB_RETIRED_MASTER_KEYS[3]", "must be base64 of exactly 32 bytes, got 5 bytes"),
    ]
    assert key not in str(caught.value)


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        Secrets.from_env(
            {
                "LAWHUB_MASTER_KEY": "x",
                "LAWHUB_GRAPH_BASE_URL": "graph.facebook.com",
                "LAWHUB_REDIS_URL": "localhost:6379",
            }
        )

    assert keys(caught.value.issues) == [
        "LAWHUB_GRAPH_BASE_URL",
        "LAWHUB_MASTER_KEY",
        "LAWHUB_REDIS_URL",
    ]


def test_preflight_refuses_a_missing_master_key_only_when_required() -> None:
    required = cfg.parse_text("[security]\nrequire_master_key = true\n")
    optional = cfg.parse_text("")
    without = Secrets.from_env({})
    with_key = Secrets.from_env({"LAWHUB_MASTER_KEY": base64.b64encode(KEY).decode()})

    assert keys(cfg.preflight(required, without)) == ["LAWHUB_MASTER_KEY"]
    assert cfg.preflight(required, with_key) == []
    assert cfg.preflight(optional, without) == []


def test_a_database_url_is_a_secret_read_as_a_url_or_libpq_settings() -> None:
    url = Secrets.from_env({"LAWHUB_DATABASE_URL": "postgresql://lawhub:pw-98765@db/lawhub"})
    settings = Secrets.from_env({"LAWHUB_DATABASE_URL": "host=/run/pg dbname=lawhub password=s3"})

    assert url.database_url is not None and "pw-98765" in url.values()
    assert "pw-98765" not in repr(url)
    assert settings.database_url is not None and "s3" in settings.values()
    with pytest.raises(ConfigError) as caught:
        Secrets.from_env({"LAWHUB_DATABASE_URL": "mysql://db/lawhub"})
    [issue] = caught.value.issues
    assert issue.key == "LAWHUB_DATABASE_URL" and "postgresql://" in issue.reason
    assert "mysql" not in str(caught.value)


def test_the_postgres_backend_needs_a_database_redis_and_one_master_key_for_every_node() -> None:
    postgres = cfg.parse_text('[storage]\nbackend = "postgres"\n')
    everything = Secrets.from_env({
        "LAWHUB_DATABASE_URL": "postgresql:///lawhub?host=/run/pg",
        "LAWHUB_REDIS_URL": "unix:///run/redis.sock",
        "LAWHUB_MASTER_KEY": base64.b64encode(KEY).decode(),
    })

    assert keys(cfg.preflight(postgres, Secrets.from_env({}))) == [
        "LAWHUB_DATABASE_URL", "LAWHUB_REDIS_URL", "LAWHUB_MASTER_KEY"]
    assert cfg.preflight(postgres, everything) == []
    assert cfg.preflight(cfg.parse_text(""), Secrets.from_env({})) == []


def test_several_processes_need_the_postgres_backend() -> None:
    with pytest.raises(ConfigError) as caught:
        cfg.parse_text("[server]\nprocesses = 2\n")
    assert [(i.key, "postgres" in i.reason) for i in caught.value.issues] == [
        ("server.processes", True)]
    assert cfg.parse_text('[server]\nprocesses = 2\n[storage]\nbackend = "postgres"\n'
                          ).server.processes == 2
