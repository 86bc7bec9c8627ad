"""Settings: defaults, parsing, and one clear error naming the variable."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from app.core.access import ApiKey, Role
from app.core.errors import ConfigError
from app.settings import (
    DEFAULT_RETRY_SCHEDULE,
    SECRET_FILE_MAX_BYTES,
    VARIABLES,
    Settings,
    log_format_from_env,
)


def test_defaults_match_the_design() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.data_dir == Path(".icehook")
    assert settings.public_url is None  # serve then uses its own address
    assert settings.ice_region == "cn-shanghai"
    assert settings.ice_endpoint == "https://ice.cn-shanghai.aliyuncs.com"
    assert settings.sweep_after_seconds == 60
    assert settings.delivery_retry_schedule == DEFAULT_RETRY_SCHEDULE
    assert settings.callback_auth_keys == ()
    assert settings.allowed_webhook_nets == ()


def test_values_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "ICEHOOK_DATABASE_URL": "postgresql://u:p@db:5432/icehook",
            "ICEHOOK_PUBLIC_URL": "https://hooks.example.com/",
            "ICEHOOK_API_KEYS": " key-a-0123456789, key-b-0123456789 ,,",
            "ICEHOOK_ICE_REGION": "ap-southeast-1",
            "ICEHOOK_CALLBACK_AUTH_KEYS": "Old123,New456",
            "ICEHOOK_SWEEP_AFTER_SECONDS": "2.5",
            "ICEHOOK_DELIVERY_RETRY_SCHEDULE": "1, 2,3",
            "ICEHOOK_ALLOWED_WEBHOOK_NETS": "127.0.0.0/8, ::1/128",
        }
    )
    assert settings.public_url == "https://hooks.example.com"
    assert [key.secret for key in settings.api_keys] == ["key-a-0123456789", "key-b-0123456789"]
    assert settings.ice_endpoint == "https://ice.ap-southeast-1.aliyuncs.com"
    assert settings.callback_auth_keys == ("Old123", "New456")
    assert settings.sweep_after_seconds == 2.5
    assert settings.delivery_retry_schedule == (1, 2, 3)
    assert ipaddress.ip_address("127.0.0.9") in settings.allowed_webhook_nets[0]


def test_explicit_endpoint_wins_over_region() -> None:
    settings = Settings.from_env({"ICEHOOK_ICE_ENDPOINT": "http://127.0.0.1:9000/"})
    assert settings.ice_endpoint == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ICEHOOK_DATABASE_URL", "mysql://root@localhost/db"),
        ("ICEHOOK_DATABASE_URL", "postgresql://localhost"),
        ("ICEHOOK_PUBLIC_URL", "ftp://example.com"),
        ("ICEHOOK_PUBLIC_URL", "example.com"),
        ("ICEHOOK_ICE_ENDPOINT", "not a url"),
        ("ICEHOOK_ICE_REGION", "cn shanghai"),
        ("ICEHOOK_API_KEYS", ",,"),
        ("ICEHOOK_API_KEYS", "long-enough-key-0123,k"),  # a one-character key is guessed
        ("ICEHOOK_HTTP_MAX_CONNECTIONS", "\u0663"),  # ٣: a digit, but not an ASCII one
        ("ICEHOOK_HTTP_MAX_HEADER_BYTES", "512"),
        ("ICEHOOK_DATABASE_TIMEOUT_SECONDS", "0"),
        ("ICEHOOK_SHUTDOWN_TIMEOUT_SECONDS", "-1"),
        ("ICEHOOK_SWEEP_AFTER_SECONDS", "soon"),
        ("ICEHOOK_SWEEP_AFTER_SECONDS", "0"),
        ("ICEHOOK_SWEEP_AFTER_SECONDS", "nan"),
        ("ICEHOOK_DELIVERY_RETRY_SCHEDULE", "5,x,30"),
        ("ICEHOOK_ALLOWED_WEBHOOK_NETS", "10.0.0.0/33"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


def test_the_log_format_is_json_or_text() -> None:
    assert log_format_from_env({}) == "json"
    assert log_format_from_env({"ICEHOOK_LOG_FORMAT": "Text"}) == "text"
    with pytest.raises(ConfigError, match=r"^ICEHOOK_LOG_FORMAT: "):
        log_format_from_env({"ICEHOOK_LOG_FORMAT": "xml"})


def test_an_access_key_pair_is_whole_or_absent() -> None:
    Settings.from_env({}).require_whole_access_key()  # the credential chain is asked then
    with pytest.raises(ConfigError, match="ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        Settings.from_env({"ALIBABA_CLOUD_ACCESS_KEY_ID": "id"}).require_whole_access_key()
    with pytest.raises(ConfigError, match="ALIBABA_CLOUD_ACCESS_KEY_ID"):
        Settings.from_env({"ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"}).require_whole_access_key()
    Settings.from_env(
        {"ALIBABA_CLOUD_ACCESS_KEY_ID": "id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"}
    ).require_whole_access_key()


def test_secrets_stay_out_of_repr() -> None:
    settings = Settings.from_env(
        {
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "very-secret",
            "ICEHOOK_CALLBACK_AUTH_KEYS": "AuthKey123",
            "ICEHOOK_API_KEYS": "api-key-1-0123456789",
        }
    )
    text = repr(settings)
    assert "very-secret" not in text
    assert "AuthKey123" not in text
    assert "api-key-1-0123456789" not in text


def test_a_secret_may_come_from_a_file(tmp_path: Path) -> None:
    keys = tmp_path / "api_keys"
    keys.write_text("from-a-file-0123456789,other-key-0123456789\n")
    secret = tmp_path / "secret"
    secret.write_text("  sk-from-file \n")
    settings = Settings.from_env(
        {
            "ICEHOOK_API_KEYS_FILE": str(keys),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "id",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET_FILE": str(secret),
        }
    )
    assert settings.api_keys == (
        ApiKey(Role.ADMIN, "from-a-file-0123456789"),
        ApiKey(Role.ADMIN, "other-key-0123456789"),
    )
    assert settings.access_key_secret == "sk-from-file"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read"),
        (b"", "is empty"),
        (b" \n", "is empty"),
        (b"\xff\xfe", "not UTF-8"),
        (b"k" * (SECRET_FILE_MAX_BYTES + 1), "larger than"),
    ],
)
def test_a_secret_file_that_cannot_serve_names_its_variable(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    path = tmp_path / "auth_keys"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ICEHOOK_CALLBACK_AUTH_KEYS_FILE": str(path)})
    assert caught.value.variable == "ICEHOOK_CALLBACK_AUTH_KEYS_FILE"
    assert problem in str(caught.value)
    assert "k" * 100 not in str(caught.value)


def test_a_secret_given_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "url"
    path.write_text("postgresql://root@127.0.0.1:5432/test\n")
    env = {"ICEHOOK_DATABASE_URL": "postgresql://x@y/z", "ICEHOOK_DATABASE_URL_FILE": str(path)}
    with pytest.raises(ConfigError, match="either ICEHOOK_DATABASE_URL or ") as caught:
        Settings.from_env(env)
    assert caught.value.variable == "ICEHOOK_DATABASE_URL_FILE"


def test_a_bad_secret_from_a_file_names_the_file_variable(tmp_path: Path) -> None:
    path = tmp_path / "url"
    path.write_text("mysql://root@localhost/icehook")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ICEHOOK_DATABASE_URL_FILE": str(path)})
    assert caught.value.variable == "ICEHOOK_DATABASE_URL_FILE"
    assert "must be a PostgreSQL URL" in str(caught.value)
    assert "mysql" not in str(caught.value)  # a URL may hold a password: never echoed


def test_the_secret_variables_are_the_documented_ones() -> None:
    assert {v.name for v in VARIABLES if v.secret} == {
        "ICEHOOK_DATABASE_URL",
        "ICEHOOK_API_KEYS",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        "ICEHOOK_CALLBACK_AUTH_KEYS",
    }


def test_api_keys_carry_roles_and_a_bare_key_is_admin() -> None:
    settings = Settings.from_env(
        {
            "ICEHOOK_API_KEYS": "bare-key-0123456789, read:reader-0123456789,"
            "metrics:scraper-0123456789,admin:bosses-0123456789"
        }
    )
    assert settings.api_keys == (
        ApiKey(Role.ADMIN, "bare-key-0123456789"),
        ApiKey(Role.READ, "reader-0123456789"),
        ApiKey(Role.METRICS, "scraper-0123456789"),
        ApiKey(Role.ADMIN, "bosses-0123456789"),
    )


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("raed:reader-0123456789", "names the role 'raed'; roles are admin, read, metrics"),
        ("read:short", "a key of 5 characters is too easy to guess"),
    ],
)
def test_a_bad_api_key_entry_is_named_without_the_key(entry: str, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"ICEHOOK_API_KEYS": entry})
    assert says in str(raised.value)
    assert "reader-0123456789" not in str(raised.value)
    assert "short" not in str(raised.value).replace("too", "")
