"""Settings: read once from the environment at start, frozen, passed down explicitly.

Nothing else in icehook reads the environment. Each setting is a field of ``Settings``,
whose default is the one default there is; ``VARIABLES`` names the environment variable
that sets it, how its text is read, and what it means (docs/configuration.md is made
from it, and a test keeps the two the same). A bad value raises ``ConfigError`` naming the
variable; the command line turns that into one line on stderr and exit status 2.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from app.core.errors import ConfigError
from app.core.parsing import natural

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_RETRY_SCHEDULE = (
    5.0,
    30.0,
    120.0,
    600.0,
    1800.0,
    3600.0,
    10800.0,
    21600.0,
    43200.0,
    86400.0,
)
API_KEY_MIN_LENGTH = 16
GENERATE_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


@dataclass(frozen=True)
class Settings:
    database_url: str | None = field(default=None, repr=False)  # may hold a password
    data_dir: Path = Path(".icehook")
    # None: `serve` uses the address it listens on (http://127.0.0.1:8000 by default).
    public_url: str | None = None
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    ice_region: str = "cn-shanghai"
    ice_endpoint: str = "https://ice.cn-shanghai.aliyuncs.com"  # follows ice_region if unset
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
    log_format: Literal["json", "text"] = "json"
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
        values = {
            variable.field: parsed
            for variable in VARIABLES
            if (parsed := variable.read(environ)) is not None
        }
        if "ice_endpoint" not in values:
            region = values.get("ice_region", cls.ice_region)
            values["ice_endpoint"] = f"https://ice.{region}.aliyuncs.com"
        return cls(**values)

    def require_ice_credentials(self) -> None:
        """Stop unless an AccessKey pair is configured (any command that calls real ICE)."""
        for name, value in (
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", self.access_key_id),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", self.access_key_secret),
        ):
            if not value:
                raise ConfigError(name, "required to call ICE (or run with --simulate)")


@dataclass(frozen=True)
class Variable:
    """One environment variable: the ``Settings`` field it sets, how its text is read, what
    it means, and (where the field's own default would mislead) how its default reads."""

    name: str
    field: str
    parse: Callable[[str], Any]
    meaning: str
    default_text: str | None = None

    def read(self, environ: Mapping[str, str]) -> Any:
        """Its value in ``environ``; None when unset (an empty value counts as unset)."""
        raw = environ.get(self.name, "").strip()
        if not raw:
            return None
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise ConfigError(self.name, str(exc)) from None

    def shown_default(self) -> str:
        """The default as the documentation shows it."""
        if self.default_text is not None:
            return self.default_text
        value = {f.name: f.default for f in dataclasses.fields(Settings)}[self.field]
        if value is None or value == ():
            return "unset"
        if isinstance(value, tuple):
            return "`" + ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) + "`"
        return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def table() -> str:
    """The environment variables as docs/configuration.md shows them (a test keeps the page
    the same as this)."""
    rows = [f"| `{v.name}` | {v.meaning} | {v.shown_default()} |" for v in VARIABLES]
    return "\n".join(["| variable | meaning | default |", "|---|---|---|", *rows])


def log_format_from_env(environ: Mapping[str, str]) -> Literal["json", "text"]:
    """``ICEHOOK_LOG_FORMAT`` alone: every command sets up its logs before anything else."""
    chosen: Literal["json", "text"] | None = LOG_FORMAT.read(environ)
    return chosen or Settings.log_format


# -- reading values ----------------------------------------------------------------------------


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


def _parse_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    if not keys:
        raise ValueError("lists no key")
    return keys


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
    value = natural(raw)
    if value is None or value < 1:
        raise ValueError(f"must be a whole number of at least 1, got {raw!r}")
    return value


def _parse_header_bytes(raw: str) -> int:
    value = _parse_count(raw)
    if value < 1024:
        raise ValueError(f"must be at least 1024 (bytes), got {raw!r}")
    return value


def _choice(*choices: str) -> Callable[[str], Any]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return raw.lower()

    return parse


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


# -- the variables -------------------------------------------------------------------------------

LOG_FORMAT = Variable(
    "ICEHOOK_LOG_FORMAT",
    "log_format",
    _choice("json", "text"),
    "`json` (one object per line) or `text` (for people)",
)

VARIABLES = (
    Variable(
        "ICEHOOK_DATABASE_URL",
        "database_url",
        _parse_database_url,
        "PostgreSQL URL (`postgresql://user:password@host:5432/db`)",
        "unset: embedded PostgreSQL under `ICEHOOK_DATA_DIR`",
    ),
    Variable("ICEHOOK_DATA_DIR", "data_dir", Path, "where embedded state lives", "`./.icehook`"),
    Variable(
        "ICEHOOK_PUBLIC_URL",
        "public_url",
        _parse_http_url,
        "base URL at which ICE can reach this service; `NotifyAddress` is built from it",
        "the address `serve` listens on (`http://127.0.0.1:8000`)",
    ),
    Variable(
        "ICEHOOK_API_KEYS",
        "api_keys",
        _parse_api_keys,
        f"comma-separated bearer keys for the `/v1` API, each at least {API_KEY_MIN_LENGTH} "
        "characters; required by `serve` (with `--simulate` a key is generated and printed "
        "when unset)",
    ),
    Variable("ICEHOOK_ICE_REGION", "ice_region", _parse_region, "ICE region"),
    Variable(
        "ICEHOOK_ICE_ENDPOINT",
        "ice_endpoint",
        _parse_http_url,
        "an explicit ICE endpoint URL",
        "`https://ice.<region>.aliyuncs.com`",
    ),
    Variable(
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "access_key_id",
        str,
        "ICE AccessKey id; required by `serve` unless `--simulate`",
    ),
    Variable("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "access_key_secret", str, "ICE AccessKey secret"),
    Variable(
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        "security_token",
        str,
        "STS security token, with a temporary AccessKey",
    ),
    Variable(
        "ICEHOOK_ICE_SIGNATURE_VERSION",
        "ice_signature_version",
        _choice("v3", "v2"),
        "`v3` (`ACS3-HMAC-SHA256`) or `v2` (`HMAC-SHA1`, legacy)",
    ),
    Variable(
        "ICEHOOK_ICE_TIMEOUT_SECONDS",
        "ice_timeout_seconds",
        parse_positive,
        "deadline of one ICE call attempt, all of it",
    ),
    Variable(
        "ICEHOOK_ICE_SUBMIT_QPS",
        "ice_submit_qps",
        parse_positive,
        "client-side limit on submits per second (ICE allows 30)",
    ),
    Variable(
        "ICEHOOK_ICE_MAX_ATTEMPTS",
        "ice_max_attempts",
        _parse_count,
        "tries of one ICE call, first included, when a retry is safe",
    ),
    Variable(
        "ICEHOOK_CALLBACK_AUTH_KEYS",
        "callback_auth_keys",
        _parse_keys,
        "ICE callback AuthKey(s), comma-separated (several during rotation)",
        "unset: `X-ICE-SIGNATURE` not required",
    ),
    Variable(
        "ICEHOOK_SWEEP_AFTER_SECONDS",
        "sweep_after_seconds",
        parse_positive,
        "how long a non-terminal job may go unheard before icehook asks ICE",
    ),
    Variable(
        "ICEHOOK_SWEEP_QPS",
        "sweep_qps",
        parse_positive,
        "ICE calls per second the sweeper may make (per worker)",
    ),
    Variable(
        "ICEHOOK_CALLBACK_MAX_BYTES",
        "callback_max_bytes",
        _parse_count,
        "largest callback body accepted (413 above)",
    ),
    Variable(
        "ICEHOOK_DELIVERY_RETRY_SCHEDULE",
        "delivery_retry_schedule",
        _parse_schedule,
        "seconds between webhook delivery attempts",
    ),
    Variable(
        "ICEHOOK_DELIVERY_TIMEOUT_SECONDS",
        "delivery_timeout_seconds",
        parse_positive,
        "deadline of one webhook request, all of it",
    ),
    Variable(
        "ICEHOOK_DELIVERY_CONCURRENCY",
        "delivery_concurrency",
        _parse_count,
        "webhook requests in flight at once, per worker",
    ),
    Variable(
        "ICEHOOK_WEBHOOK_DISABLE_AFTER_SECONDS",
        "webhook_disable_after_seconds",
        parse_positive,
        "a subscription failing without a success for this long is disabled (5 days)",
    ),
    Variable(
        "ICEHOOK_WEBHOOK_SECRET_OVERLAP_SECONDS",
        "webhook_secret_overlap_seconds",
        parse_positive,
        "how long a rotated-out secret still signs",
    ),
    Variable(
        "ICEHOOK_ALLOWED_WEBHOOK_NETS",
        "allowed_webhook_nets",
        _parse_nets,
        "non-public networks that subscriptions may reach, e.g. `127.0.0.0/8,10.0.0.0/8`",
        "unset: none",
    ),
    LOG_FORMAT,
    Variable(
        "ICEHOOK_DATABASE_TIMEOUT_SECONDS",
        "database_timeout_seconds",
        parse_positive,
        "deadline of every database statement, new connection and wait for a pooled one",
    ),
    Variable(
        "ICEHOOK_HTTP_MAX_CONNECTIONS",
        "http_max_connections",
        _parse_count,
        "open connections per server process",
    ),
    Variable(
        "ICEHOOK_HTTP_MAX_HEADER_BYTES",
        "http_max_header_bytes",
        _parse_header_bytes,
        "largest request head (request line and headers)",
    ),
    Variable(
        "ICEHOOK_HTTP_HEADER_TIMEOUT_SECONDS",
        "http_header_timeout_seconds",
        parse_positive,
        "time to receive a request head",
    ),
    Variable(
        "ICEHOOK_HTTP_BODY_TIMEOUT_SECONDS",
        "http_body_timeout_seconds",
        parse_positive,
        "time to receive a request body",
    ),
    Variable(
        "ICEHOOK_HTTP_KEEPALIVE_SECONDS",
        "http_keepalive_seconds",
        parse_positive,
        "an idle kept-alive connection is closed after this",
    ),
    Variable(
        "ICEHOOK_SHUTDOWN_TIMEOUT_SECONDS",
        "shutdown_timeout_seconds",
        parse_positive,
        "how long stopping may take before what still runs is cancelled",
    ),
)
