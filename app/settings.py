"""Settings: read once from the environment at start, frozen, passed down explicitly.

Nothing else in icehook reads the environment. A bad value raises ``ConfigError`` naming
the variable; the command line turns that into one line on stderr and exit status 2.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from app import numbers
from app.errors import ConfigError

T = TypeVar("T")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_RETRY_SCHEDULE = (5, 30, 120, 600, 1800, 3600, 10800, 21600, 43200, 86400)


@dataclass(frozen=True)
class Settings:
    database_url: str | None = field(default=None, repr=False)  # may hold a password
    data_dir: Path = Path(".icehook")
    # None: `serve` uses the address it listens on (http://127.0.0.1:8000 by default).
    public_url: str | None = None
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    ice_region: str = "cn-shanghai"
    ice_endpoint: str = "https://ice.cn-shanghai.aliyuncs.com"
    access_key_id: str | None = field(default=None, repr=False)
    access_key_secret: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    ice_signature_version: Literal["v3", "v2"] = "v3"
    ice_timeout_seconds: float = 10.0
    ice_submit_qps: float = 30.0
    ice_max_attempts: int = 5
    callback_auth_keys: tuple[str, ...] = field(default=(), repr=False)
    sweep_after_seconds: float = 60.0
    sweep_qps: float = 10.0
    callback_max_bytes: int = 64 * 1024
    delivery_retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    delivery_timeout_seconds: float = 15.0
    delivery_concurrency: int = 32
    webhook_disable_after_seconds: float = 5 * 24 * 3600.0
    webhook_secret_overlap_seconds: float = 24 * 3600.0
    allowed_webhook_nets: tuple[IpNetwork, ...] = ()
    # Every database statement, connection and wait for a pooled connection.
    database_timeout_seconds: float = 5.0
    http_max_connections: int = 1000
    http_max_header_bytes: int = 16 * 1024
    http_header_timeout_seconds: float = 10.0
    http_body_timeout_seconds: float = 30.0
    http_keepalive_seconds: float = 5.0
    shutdown_timeout_seconds: float = 20.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from ``environ`` (normally ``os.environ``); raise ``ConfigError``."""
        env = _Env(environ)
        region = env.get("ICEHOOK_ICE_REGION", "cn-shanghai", _parse_region)
        return cls(
            database_url=env.get("ICEHOOK_DATABASE_URL", None, _parse_database_url),
            data_dir=env.get("ICEHOOK_DATA_DIR", Path(".icehook"), Path),
            public_url=env.get("ICEHOOK_PUBLIC_URL", None, _parse_http_url),
            api_keys=env.get("ICEHOOK_API_KEYS", (), _parse_api_keys),
            ice_region=region,
            ice_endpoint=env.get(
                "ICEHOOK_ICE_ENDPOINT", f"https://ice.{region}.aliyuncs.com", _parse_http_url
            ),
            access_key_id=env.get("ALIBABA_CLOUD_ACCESS_KEY_ID", None, str),
            access_key_secret=env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", None, str),
            security_token=env.get("ALIBABA_CLOUD_SECURITY_TOKEN", None, str),
            ice_signature_version=env.get("ICEHOOK_ICE_SIGNATURE_VERSION", "v3", _parse_version),
            ice_timeout_seconds=env.get("ICEHOOK_ICE_TIMEOUT_SECONDS", 10.0, parse_positive),
            ice_submit_qps=env.get("ICEHOOK_ICE_SUBMIT_QPS", 30.0, parse_positive),
            ice_max_attempts=env.get("ICEHOOK_ICE_MAX_ATTEMPTS", 5, _parse_count),
            callback_auth_keys=env.get("ICEHOOK_CALLBACK_AUTH_KEYS", (), _parse_keys),
            sweep_after_seconds=env.get("ICEHOOK_SWEEP_AFTER_SECONDS", 60.0, parse_positive),
            sweep_qps=env.get("ICEHOOK_SWEEP_QPS", 10.0, parse_positive),
            callback_max_bytes=env.get("ICEHOOK_CALLBACK_MAX_BYTES", 64 * 1024, _parse_count),
            delivery_retry_schedule=env.get(
                "ICEHOOK_DELIVERY_RETRY_SCHEDULE", DEFAULT_RETRY_SCHEDULE, _parse_schedule
            ),
            delivery_timeout_seconds=env.get(
                "ICEHOOK_DELIVERY_TIMEOUT_SECONDS", 15.0, parse_positive
            ),
            delivery_concurrency=env.get("ICEHOOK_DELIVERY_CONCURRENCY", 32, _parse_count),
            webhook_disable_after_seconds=env.get(
                "ICEHOOK_WEBHOOK_DISABLE_AFTER_SECONDS", 5 * 24 * 3600.0, parse_positive
            ),
            webhook_secret_overlap_seconds=env.get(
                "ICEHOOK_WEBHOOK_SECRET_OVERLAP_SECONDS", 24 * 3600.0, parse_positive
            ),
            allowed_webhook_nets=env.get("ICEHOOK_ALLOWED_WEBHOOK_NETS", (), _parse_nets),
            database_timeout_seconds=env.get(
                "ICEHOOK_DATABASE_TIMEOUT_SECONDS", 5.0, parse_positive
            ),
            http_max_connections=env.get("ICEHOOK_HTTP_MAX_CONNECTIONS", 1000, _parse_count),
            http_max_header_bytes=env.get(
                "ICEHOOK_HTTP_MAX_HEADER_BYTES", 16 * 1024, _parse_header_bytes
            ),
            http_header_timeout_seconds=env.get(
                "ICEHOOK_HTTP_HEADER_TIMEOUT_SECONDS", 10.0, parse_positive
            ),
            http_body_timeout_seconds=env.get(
                "ICEHOOK_HTTP_BODY_TIMEOUT_SECONDS", 30.0, parse_positive
            ),
            http_keepalive_seconds=env.get("ICEHOOK_HTTP_KEEPALIVE_SECONDS", 5.0, parse_positive),
            shutdown_timeout_seconds=env.get(
                "ICEHOOK_SHUTDOWN_TIMEOUT_SECONDS", 20.0, parse_positive
            ),
        )

    def require_ice_credentials(self) -> None:
        """Stop unless an AccessKey pair is configured (any command that calls real ICE)."""
        for name, value in (
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", self.access_key_id),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", self.access_key_secret),
        ):
            if not value:
                raise ConfigError(name, "required to call ICE (or run with --simulate)")


def log_format_from_env(environ: Mapping[str, str]) -> Literal["json", "text"]:
    """``ICEHOOK_LOG_FORMAT`` alone: every command sets up its logs before anything else."""
    return _Env(environ).get("ICEHOOK_LOG_FORMAT", "json", _parse_log_format)


class _Env:
    """Reads one variable at a time; an empty value counts as unset."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str, default: T, parse: Callable[[str], T]) -> T:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            raise ConfigError(name, str(exc)) from None


def _parse_database_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise ValueError("must be a PostgreSQL URL (postgresql://user@host:port/database)")
    if not parts.path.strip("/"):
        raise ValueError("names no database (postgresql://user@host:port/database)")
    return raw


def _parse_http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL with a host, got {raw!r}")
    return raw.rstrip("/")


def _parse_region(raw: str) -> str:
    if not all(part.isalnum() for part in raw.split("-")):
        raise ValueError(f"is not a region id like cn-shanghai: {raw!r}")
    return raw


API_KEY_MIN_LENGTH = 16
GENERATE_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def _parse_api_keys(raw: str) -> tuple[str, ...]:
    keys = _parse_keys(raw)
    for key in keys:
        if len(key) < API_KEY_MIN_LENGTH:
            # Not the key itself: this line goes to the terminal and the logs.
            raise ValueError(
                f"a key of {len(key)} characters is too easy to guess; use at least "
                f"{API_KEY_MIN_LENGTH}, e.g. {GENERATE_KEY}"
            )
    return keys


def _parse_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    if not keys:
        raise ValueError("lists no key")
    return keys


def parse_positive(raw: str) -> float:
    """A number of seconds above 0 (also for command-line flags)."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"must be a number of seconds, got {raw!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"must be a finite number greater than 0, got {raw!r}")
    return value


def _parse_count(raw: str) -> int:
    value = numbers.natural(raw)
    if value is None or value < 1:
        raise ValueError(f"must be a whole number of at least 1, got {raw!r}")
    return value


def _parse_header_bytes(raw: str) -> int:
    value = _parse_count(raw)
    if value < 1024:
        raise ValueError(f"must be at least 1024 (bytes), got {raw!r}")
    return value


def _parse_version(raw: str) -> Literal["v3", "v2"]:
    if raw.lower() == "v3":
        return "v3"
    if raw.lower() == "v2":
        return "v2"
    raise ValueError(f"must be v3 (ACS3-HMAC-SHA256) or v2 (HMAC-SHA1), got {raw!r}")


def _parse_log_format(raw: str) -> Literal["json", "text"]:
    if raw.lower() == "json":
        return "json"
    if raw.lower() == "text":
        return "text"
    raise ValueError(f"must be json (one object per line) or text, got {raw!r}")


def _parse_schedule(raw: str) -> tuple[float, ...]:
    return tuple(parse_positive(part.strip()) for part in raw.split(","))


def _parse_nets(raw: str) -> tuple[IpNetwork, ...]:
    nets = []
    for part in raw.split(","):
        try:
            nets.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a CIDR network") from None
    return tuple(nets)
