"""Settings: read once from the environment at start, frozen, passed down explicitly.

Nothing else in icehook reads the environment. Each setting is a field of ``Settings``,
whose default is the one default there is; ``VARIABLES`` names the environment variable
that sets it, how its text is read, and what it means (docs/configuration.md is made
from it, and a test keeps the two the same). A bad value raises ``ConfigError`` naming the
variable; the command line turns that into one line on stderr and exit status 2.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.core import values
from app.core.access import ApiKey
from app.core.errors import ConfigError
from app.core.values import IpNetwork as IpNetwork  # re-exported: the settings' type

DEFAULT_RETRY_SCHEDULE = (
    *(5.0, 30.0, 120.0, 600.0, 1800.0),
    *(3600.0, 10800.0, 21600.0, 43200.0, 86400.0),
)


@dataclass(frozen=True)
class Settings:
    database_url: str | None = field(default=None, repr=False)  # may hold a password
    data_dir: Path = Path(".icehook")
    # None: `serve` uses the address it listens on (http://127.0.0.1:8000 by default).
    public_url: str | None = None
    api_keys: tuple[ApiKey, ...] = field(default=(), repr=False)
    ice_region: str = "cn-shanghai"
    ice_endpoint: str = "https://ice.cn-shanghai.aliyuncs.com"  # follows ice_region if unset
    access_key_id: str | None = field(default=None, repr=False)
    access_key_secret: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    oidc_role_arn: str | None = None
    oidc_provider_arn: str | None = None
    oidc_token_file: str | None = None
    ecs_ram_role: str | None = None
    credentials_uri: str | None = field(default=None, repr=False)  # may carry a secret
    ice_signature_version: Literal["v3", "v2"] = "v3"
    ice_timeout_seconds: float = 10.0
    ice_submit_qps: float = 25.0
    ice_read_qps: float = 100.0
    ice_max_attempts: int = 5
    ice_listing_grace_seconds: float = 120.0
    callback_auth_keys: tuple[str, ...] = field(default=(), repr=False)
    sweep_after_seconds: float = 60.0
    sweep_qps: float = 10.0
    callback_max_bytes: int = 64 * 1024
    delivery_retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    delivery_timeout_seconds: float = 15.0
    delivery_concurrency: int = 32
    webhook_disable_after_seconds: float = 5 * 24 * 3600.0
    webhook_disabled_queue_seconds: float = 3 * 24 * 3600.0
    webhook_secret_overlap_seconds: float = 24 * 3600.0
    allowed_webhook_nets: tuple[IpNetwork, ...] = ()
    log_format: Literal["json", "text"] = "json"
    database_timeout_seconds: float = 5.0
    database_pooler: Literal["none", "transaction"] = "none"  # store.engine: ``pooled``
    http_max_connections: int = 1000
    http_max_header_bytes: int = 16 * 1024
    http_header_timeout_seconds: float = 10.0
    http_body_timeout_seconds: float = 30.0
    http_keepalive_seconds: float = 5.0
    shutdown_timeout_seconds: float = 20.0
    retention_seconds: float = 30 * 86400.0  # math.inf: forever (core.retention)
    history_retention_seconds: float = math.inf

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from ``environ`` (normally ``os.environ``); raise ``ConfigError``."""
        given = {
            variable.field: parsed
            for variable in VARIABLES
            if (parsed := variable.read(environ)) is not None
        }
        if "ice_endpoint" not in given:
            region = given.get("ice_region", cls.ice_region)
            given["ice_endpoint"] = f"https://ice.{region}.aliyuncs.com"
        return cls(**given)

    @property
    def database_pooled(self) -> bool:  # through a pooler in transaction mode
        return self.database_pooler == "transaction"

    def require_whole_access_key(self) -> None:
        """Stop if half an AccessKey pair is configured (without one, ICE credentials come
        from Alibaba Cloud's credential chain: app/ice/credentials.py)."""
        pair = (
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", self.access_key_id),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", self.access_key_secret),
        )
        if any(value for _, value in pair):
            for name, value in pair:
                if not value:
                    raise ConfigError(name, "required with the other half of the AccessKey pair")


@dataclass(frozen=True)
class Variable:
    """One environment variable: the ``Settings`` field it sets, how its text is read, what
    it means, and (where the field's own default would mislead) how its default reads."""

    name: str
    field: str
    parse: Callable[[str], Any]
    meaning: str
    default_text: str | None = None
    secret: bool = False  # may also come from a file named by ``<name>_FILE``

    def read(self, environ: Mapping[str, str]) -> Any:
        """Its value in ``environ``; None when unset (an empty value counts as unset)."""
        if self.secret:
            raw, source = secret_text(environ, self.name)
        else:
            raw, source = environ.get(self.name, "").strip() or None, self.name
        if raw is None:
            return None
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise ConfigError(source, str(exc)) from None

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


SECRET_FILE_MAX_BYTES = 64 * 1024


def secret_text(environ: Mapping[str, str], name: str) -> tuple[str | None, str]:
    """A secret's text and the variable it came from: ``name`` itself, or the file that
    ``<name>_FILE`` names (as containers and Kubernetes hand secrets over), without its
    surrounding whitespace. None when neither is set; ``ConfigError`` when both are, or the
    file cannot be read. An error never shows the file's content."""
    file_variable = f"{name}_FILE"
    given = environ.get(name, "").strip()
    path = environ.get(file_variable, "").strip()
    if not path:
        return given or None, name
    if given:
        raise ConfigError(file_variable, f"set either {name} or {file_variable}, not both")
    try:
        with open(path, "rb") as file:
            content = file.read(SECRET_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(file_variable, f"cannot read {path}: {exc.strerror}") from None
    if len(content) > SECRET_FILE_MAX_BYTES:
        raise ConfigError(file_variable, f"{path} is larger than {SECRET_FILE_MAX_BYTES} bytes")
    try:
        text = content.decode().strip()
    except UnicodeDecodeError:
        raise ConfigError(file_variable, f"{path} is not UTF-8 text") from None
    if not text:
        raise ConfigError(file_variable, f"{path} is empty")
    return text, file_variable


def table() -> str:
    """The environment variables as docs/configuration.md shows them (a test keeps the page
    the same as this)."""
    rows = [
        f"| `{v.name}`{f' (or `{v.name}_FILE`)' if v.secret else ''} | {v.meaning} "
        f"| {v.shown_default()} |"
        for v in VARIABLES
    ]
    return "\n".join(["| variable | meaning | default |", "|---|---|---|", *rows])


def log_format_from_env(environ: Mapping[str, str]) -> Literal["json", "text"]:
    """``ICEHOOK_LOG_FORMAT`` alone: every command sets up its logs before anything else."""
    chosen: Literal["json", "text"] | None = LOG_FORMAT.read(environ)
    return chosen or Settings.log_format


# -- the variables -------------------------------------------------------------------------------

LOG_FORMAT = Variable(
    "ICEHOOK_LOG_FORMAT",
    "log_format",
    values.choice("json", "text"),
    "`json` (one object per line) or `text` (for people)",
)

VARIABLES = (
    Variable(
        "ICEHOOK_DATABASE_URL",
        "database_url",
        values.database_url,
        "PostgreSQL URL (`postgresql://user:password@host:5432/db`)",
        "unset: embedded PostgreSQL under `ICEHOOK_DATA_DIR`",
        secret=True,
    ),
    Variable("ICEHOOK_DATA_DIR", "data_dir", Path, "where embedded state lives", "`./.icehook`"),
    Variable(
        "ICEHOOK_PUBLIC_URL",
        "public_url",
        values.http_url,
        "base URL at which ICE can reach this service; `NotifyAddress` is built from it",
        "the address `serve` listens on (`http://127.0.0.1:8000`)",
    ),
    Variable(
        "ICEHOOK_API_KEYS",
        "api_keys",
        values.api_keys,
        "comma-separated bearer keys, each `role:key` (role `admin`, `read` or `metrics`; "
        f"docs/api.md) or a bare admin key, at least {values.API_KEY_MIN_LENGTH} characters; "
        "required by `serve` (`--simulate` generates and prints an admin key when unset)",
        secret=True,
    ),
    Variable("ICEHOOK_ICE_REGION", "ice_region", values.region, "ICE region"),
    Variable(
        "ICEHOOK_ICE_ENDPOINT",
        "ice_endpoint",
        values.http_url,
        "an explicit ICE endpoint URL",
        "`https://ice.<region>.aliyuncs.com`",
    ),
    Variable(
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "access_key_id",
        str,
        "ICE AccessKey id; required by `serve` unless `--simulate`",
    ),
    Variable(
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "access_key_secret",
        str,
        "ICE AccessKey secret",
        secret=True,
    ),
    Variable(
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        "security_token",
        str,
        "STS security token, with a temporary AccessKey",
        secret=True,
    ),
    Variable(
        "ALIBABA_CLOUD_ROLE_ARN",
        "oidc_role_arn",
        str,
        "without an AccessKey pair: the RAM role to assume with OIDC (RRSA on ACK)",
    ),
    Variable(
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
        "oidc_provider_arn",
        str,
        "the OIDC provider of that role",
    ),
    Variable(
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
        "oidc_token_file",
        str,
        "the file holding the OIDC token (ACK mounts and renews it)",
    ),
    Variable(
        "ALIBABA_CLOUD_ECS_METADATA",
        "ecs_ram_role",
        str,
        "without an AccessKey pair or OIDC role: the ECS instance's RAM role name",
    ),
    Variable(
        "ALIBABA_CLOUD_CREDENTIALS_URI",
        "credentials_uri",
        str,
        "otherwise: a URL answering temporary STS credentials, renewed before they expire",
    ),
    Variable(
        "ICEHOOK_ICE_SIGNATURE_VERSION",
        "ice_signature_version",
        values.choice("v3", "v2"),
        "`v3` (`ACS3-HMAC-SHA256`) or `v2` (`HMAC-SHA1`, legacy)",
    ),
    Variable(
        "ICEHOOK_ICE_TIMEOUT_SECONDS",
        "ice_timeout_seconds",
        values.parse_positive,
        "deadline of one ICE call attempt, all of it",
    ),
    Variable(
        "ICEHOOK_ICE_SUBMIT_QPS",
        "ice_submit_qps",
        values.parse_positive,
        "submits per second, all processes on one database together: ICE allows 30 in any "
        "second, and a request's travel time varies, so icehook aims below that",
    ),
    Variable(
        "ICEHOOK_ICE_READ_QPS",
        "ice_read_qps",
        values.parse_positive,
        "Get and List calls per second, all processes on one database together (ICE "
        "documents no limit; 100 is Alibaba's usual one for its media products' queries)",
    ),
    Variable(
        "ICEHOOK_ICE_MAX_ATTEMPTS",
        "ice_max_attempts",
        values.count,
        "tries of one ICE call, first included, when a retry is safe",
    ),
    Variable(
        "ICEHOOK_ICE_LISTING_GRACE_SECONDS",
        "ice_listing_grace_seconds",
        values.parse_positive,
        "how long after a submission was last sent ICE's List may still not show it; only "
        "then is one whose answer was lost sent again (never less than an ICE call may take; "
        "docs/ice.md)",
    ),
    Variable(
        "ICEHOOK_CALLBACK_AUTH_KEYS",
        "callback_auth_keys",
        values.keys,
        "ICE callback AuthKey(s), comma-separated (several during rotation); a signature "
        "that is sent must verify",
        "unset: `X-ICE-SIGNATURE` not checked",
        secret=True,
    ),
    Variable(
        "ICEHOOK_SWEEP_AFTER_SECONDS",
        "sweep_after_seconds",
        values.parse_positive,
        "how long a non-terminal job may go unheard before icehook asks ICE",
    ),
    Variable(
        "ICEHOOK_SWEEP_QPS",
        "sweep_qps",
        values.parse_positive,
        "ICE calls per second the sweeper may make (per worker)",
    ),
    Variable(
        "ICEHOOK_CALLBACK_MAX_BYTES",
        "callback_max_bytes",
        values.count,
        "largest callback body accepted (413 above)",
    ),
    Variable(
        "ICEHOOK_DELIVERY_RETRY_SCHEDULE",
        "delivery_retry_schedule",
        values.schedule,
        "seconds between webhook delivery attempts",
    ),
    Variable(
        "ICEHOOK_DELIVERY_TIMEOUT_SECONDS",
        "delivery_timeout_seconds",
        values.parse_positive,
        "deadline of one webhook request, all of it",
    ),
    Variable(
        "ICEHOOK_DELIVERY_CONCURRENCY",
        "delivery_concurrency",
        values.count,
        "webhook requests in flight at once, per worker",
    ),
    Variable(
        "ICEHOOK_WEBHOOK_DISABLE_AFTER_SECONDS",
        "webhook_disable_after_seconds",
        values.parse_positive,
        "a subscription failing without a success for this long is disabled (5 days)",
    ),
    Variable(
        "ICEHOOK_WEBHOOK_DISABLED_QUEUE_SECONDS",
        "webhook_disabled_queue_seconds",
        values.parse_positive,
        "a disabled subscription's events are still queued for it this long (3 days)",
    ),
    Variable(
        "ICEHOOK_WEBHOOK_SECRET_OVERLAP_SECONDS",
        "webhook_secret_overlap_seconds",
        values.parse_positive,
        "how long a rotated-out secret still signs",
    ),
    Variable(
        "ICEHOOK_ALLOWED_WEBHOOK_NETS",
        "allowed_webhook_nets",
        values.nets,
        "non-public networks that subscriptions may reach, e.g. `127.0.0.0/8,10.0.0.0/8`",
        "unset: none",
    ),
    LOG_FORMAT,
    Variable(
        "ICEHOOK_DATABASE_TIMEOUT_SECONDS",
        "database_timeout_seconds",
        values.parse_positive,
        "deadline of every database statement, new connection and wait for a pooled one",
    ),
    Variable(
        "ICEHOOK_DATABASE_POOLER",
        "database_pooler",
        values.choice("none", "transaction"),
        "`transaction` when `ICEHOOK_DATABASE_URL` is a pooler in transaction mode, like "
        "PgBouncer's (docs/operations.md, Behind a connection pooler)",
    ),
    Variable(
        "ICEHOOK_HTTP_MAX_CONNECTIONS",
        "http_max_connections",
        values.count,
        "open connections per server process",
    ),
    Variable(
        "ICEHOOK_HTTP_MAX_HEADER_BYTES",
        "http_max_header_bytes",
        values.header_bytes,
        "largest request head (request line and headers)",
    ),
    Variable(
        "ICEHOOK_HTTP_HEADER_TIMEOUT_SECONDS",
        "http_header_timeout_seconds",
        values.parse_positive,
        "time to receive a request head",
    ),
    Variable(
        "ICEHOOK_HTTP_BODY_TIMEOUT_SECONDS",
        "http_body_timeout_seconds",
        values.parse_positive,
        "time to receive a request body",
    ),
    Variable(
        "ICEHOOK_HTTP_KEEPALIVE_SECONDS",
        "http_keepalive_seconds",
        values.parse_positive,
        "an idle kept-alive connection is closed after this; a client or load balancer must "
        "drop idle ones sooner (httpx's default is also 5 s)",
    ),
    Variable(
        "ICEHOOK_RETENTION",
        "retention_seconds",
        values.duration,
        "how long callbacks as received and webhooks (payloads, deliveries, attempts) are "
        "kept, e.g. `30d`, `12h` or `forever` (docs/operations.md, Retention)",
        "`30d`",
    ),
    Variable(
        "ICEHOOK_HISTORY_RETENTION",
        "history_retention_seconds",
        values.duration,
        "how long a finished job is kept with its events after it finished, e.g. `365d`",
        "`forever`",
    ),
    Variable(
        "ICEHOOK_SHUTDOWN_TIMEOUT_SECONDS",
        "shutdown_timeout_seconds",
        values.parse_positive,
        "how long stopping may take before what still runs is cancelled",
    ),
)
