"""The simulator's settings: AccessKey pairs it accepts and the behaviour it simulates.

``SimulatorSettings`` is frozen. The running simulator swaps in a new instance when
``PATCH /_sim/settings`` changes it; a job reads the settings once, when it is submitted, and a
callback reads them when it falls due. Every value passes through ``_validated``, whether it
comes from the environment (``from_env``), from ``replace`` (the admin route, command-line
flags) or from the constructor, so the three can never disagree about what is valid.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import ClassVar

from app.core.errors import ConfigError
from app.settings import secret_text

ENV_PREFIX = "ICEHOOK_SIM_"
ACCESS_KEYS_VARIABLE = "ICEHOOK_SIM_ACCESS_KEYS"


def new_access_key(label: str) -> tuple[str, str]:
    """A generated AccessKey pair (id, secret) for a run of the simulator, shaped like
    Alibaba's (``LTAI...``)."""
    return "LTAI" + label + secrets.token_hex(8), secrets.token_urlsafe(24)


_RATES = frozenset(
    {
        "failure_rate",
        "callback_drop_rate",
        "callback_duplicate_rate",
        "api_error_rate",
        "submit_answer_loss_rate",
    }
)
_DURATIONS = frozenset({"job_seconds", "callback_delay_seconds", "api_latency_ms", "sts_seconds"})
MAX_CALLBACK_COPIES = 10


# Where ICE's behaviour is undocumented, each plausible one, by name (docs/simulator.md); the
# first is the default.
CHOICES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        # A repeated ClientToken: the original job, a 4xx, or a second job.
        "client_token_reuse": ("original", "error", "ignored"),
        # ListBatchMediaProducingJobs' UserData: as sent, re-serialised, or no scene batches.
        "batch_listing": ("exact", "reformatted", "absent"),
        # Whether callbacks to a per-job NotifyAddress carry X-ICE-SIGNATURE.
        "callback_signing": ("signed", "unsigned"),
        # A batch whose sub-jobs all failed: Failed, or Finished as the SDK's list suggests.
        "batch_failure": ("failed-when-all-fail", "always-finished"),
        # The failure word of ProduceMediaComplete callbacks.
        "callback_failure_status": ("Failed", "Fail"),
    }
)


@dataclass(frozen=True)
class SimulatorSettings:
    """What the simulator accepts and how it behaves. Build it with ``from_env`` or directly."""

    access_keys: Mapping[str, str] = field(repr=False)  # AccessKeyId -> AccessKeySecret
    job_seconds: float = 5.0  # from submit to the final status
    failure_rate: float = 0.0  # share of jobs that end Failed
    callback_drop_rate: float = 0.0  # share of callbacks never sent
    callback_duplicate_rate: float = 0.0  # share of callbacks delivered twice
    callback_copies: int = 1  # deliveries of every callback (a duplicate adds one more)
    callback_delay_seconds: float = 0.0  # random 0..this before a callback's first attempt
    api_error_rate: float = 0.0  # share of RPC calls answered Throttling.User or InternalError
    api_latency_ms: float = 0.0  # added before every RPC answer
    callback_auth_key: str | None = field(default=None, repr=False)  # signs callbacks when set
    submit_answer_loss_rate: float = 0.0  # share of submits whose answer is cut off
    client_token_reuse: str = CHOICES["client_token_reuse"][0]
    batch_listing: str = CHOICES["batch_listing"][0]
    callback_signing: str = CHOICES["callback_signing"][0]
    batch_failure: str = CHOICES["batch_failure"][0]
    callback_failure_status: str = CHOICES["callback_failure_status"][0]
    sts_seconds: float = 3600.0  # lifetime of the STS credentials GET /_sim/sts issues
    submit_qps: float = 30.0  # ICE's documented limit for SubmitMediaProducingJob
    user_id: int = 1234567890123456  # the account UID callbacks carry

    # What each behaviour setting does (docs/configuration.md is made from it).
    MEANINGS: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "job_seconds": "how long a job runs, submit to final status (Init 10 %, Queuing "
            "20 %, Processing 70 %)",
            "failure_rate": "share of jobs that end `Failed` (0..1)",
            "callback_drop_rate": "share of callbacks never sent",
            "callback_duplicate_rate": "share of callbacks delivered twice",
            "callback_copies": "deliveries of every callback (1-10; a duplicate adds one more)",
            "callback_delay_seconds": "random delay up to this before a callback (reorders them)",
            "api_error_rate": "share of API calls answered `Throttling.User` or `InternalError`",
            "api_latency_ms": "latency added to every API answer",
            "callback_auth_key": "sign callbacks with `X-ICE-TIMESTAMP` / `X-ICE-SIGNATURE`",
            "submit_answer_loss_rate": "share of submits that create the job and then cut the "
            "connection without answering",
            "client_token_reuse": "a submit repeating a `ClientToken`: `original` (answers the "
            "first job), `error` (a 400), `ignored` (a second job)",
            "batch_listing": "`ListBatchMediaProducingJobs` shows a scene batch's `UserData` "
            "`exact`ly as sent, `reformatted` (other key order and spacing), or is `absent`: "
            "it lists no scene batch",
            "callback_signing": "with an auth key, callbacks to a job's `NotifyAddress` are "
            "`signed` or `unsigned`",
            "batch_failure": "a batch whose sub-jobs all failed ends `Failed` "
            "(`failed-when-all-fail`) or `Finished` (`always-finished`)",
            "callback_failure_status": "the failure word of `ProduceMediaComplete` callbacks: "
            "`Failed` or `Fail`",
            "sts_seconds": "lifetime of the STS credentials `GET /_sim/sts` issues; calls "
            "signed with them after that are refused `InvalidSecurityToken.Expired`",
        }
    )

    BEHAVIOUR: ClassVar[tuple[str, ...]] = (
        "job_seconds",
        "failure_rate",
        "callback_drop_rate",
        "callback_duplicate_rate",
        "callback_copies",
        "callback_delay_seconds",
        "api_error_rate",
        "api_latency_ms",
        "callback_auth_key",
        "submit_answer_loss_rate",
        "client_token_reuse",
        "batch_listing",
        "callback_signing",
        "batch_failure",
        "callback_failure_status",
        "sts_seconds",
    )

    def __post_init__(self) -> None:
        # A read-only copy, so a caller mutating its dict cannot change a running simulator.
        object.__setattr__(self, "access_keys", MappingProxyType(dict(self.access_keys)))
        _check_access_keys(self.access_keys, "access_keys")
        for name in self.BEHAVIOUR:
            # Stored parsed: 1 becomes 1.0, "" as an auth key becomes None.
            object.__setattr__(self, name, _validated(name, getattr(self, name), name))
        if not (isinstance(self.submit_qps, int | float) and self.submit_qps > 0):
            raise ConfigError("submit_qps", f"must be a number above 0, got {self.submit_qps!r}")
        if isinstance(self.user_id, bool) or not isinstance(self.user_id, int) or self.user_id < 1:
            raise ConfigError("user_id", f"must be a positive integer, got {self.user_id!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SimulatorSettings:
        """Settings from ``environ`` (normally ``os.environ``); ``ConfigError`` names the variable.

        An empty variable counts as unset, as everywhere in icehook.
        """
        behaviour: dict[str, object] = {}
        for name in cls.BEHAVIOUR:
            variable = env_variable(name)
            raw = environ.get(variable, "").strip()
            if raw:
                behaviour[name] = _validated(name, raw, variable)
        return cls(access_keys=_access_keys_from_env(environ), **behaviour)  # type: ignore[arg-type]

    def replace(self, changes: Mapping[str, object]) -> SimulatorSettings:
        """A copy with some behaviour settings changed; ``ConfigError`` names a bad one.

        Values may be numbers or their text (as command-line flags give them);
        ``callback_auth_key`` may be ``None`` or ``""`` to switch callback signing off.
        """
        values = {name: getattr(self, name) for name in (f.name for f in fields(self))}
        for name, value in changes.items():
            if name not in self.BEHAVIOUR:
                raise ConfigError(
                    name, f"is not a behaviour setting; these are: {', '.join(self.BEHAVIOUR)}"
                )
            values[name] = _validated(name, value, name)
        return type(self)(**values)

    def public(self) -> dict[str, object]:
        """The settings as the admin route shows them: no secret, only whether one is set."""
        shown: dict[str, object] = {name: getattr(self, name) for name in self.BEHAVIOUR}
        shown["callback_auth_key"] = "set" if self.callback_auth_key else "unset"
        shown["submit_qps"] = self.submit_qps
        shown["user_id"] = self.user_id
        return shown


def shown_defaults() -> dict[str, str]:
    """Each behaviour setting's default as the documentation and ``--help`` show it."""
    defaults = {f.name: f.default for f in fields(SimulatorSettings)}
    return {
        name: "unset"
        if (default := defaults[name]) is None
        else (f"{default:g}" if isinstance(default, float) else str(default))
        for name in SimulatorSettings.BEHAVIOUR
    }


def table() -> str:
    """The behaviour settings as docs/configuration.md shows them (a test keeps them equal)."""
    defaults = shown_defaults()
    rows = []
    for name in SimulatorSettings.BEHAVIOUR:
        shown = "unset" if defaults[name] == "unset" else f"`{defaults[name]}`"
        meaning = SimulatorSettings.MEANINGS[name]
        flag = "--" + name.replace("_", "-")
        rows.append(f"| `{env_variable(name)}` | `{flag}` | {meaning} | {shown} |")
    return "\n".join(["| variable | flag | meaning | default |", "|---|---|---|---|", *rows])


def env_variable(name: str) -> str:
    """A behaviour setting's variable: ``job_seconds`` -> ``ICEHOOK_SIM_JOB_SECONDS``."""
    return ENV_PREFIX + name.upper()


def _validated(name: str, value: object, label: str) -> float | int | str | None:
    """The one check of a behaviour value; returns it parsed, or raises ConfigError(label)."""
    if name == "callback_auth_key":
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(label, "must be a text key (or empty to switch signing off)")
        # ICE's console only takes 1-32 letters and digits here; we accept any key so that a
        # receiver's own key format can be exercised, and leave that rule to the receiver's docs.
        return value.strip() or None
    if name in CHOICES:
        if value not in CHOICES[name]:
            raise ConfigError(label, f"must be one of {', '.join(CHOICES[name])}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(label, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(label, f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(label, f"must be a finite number, got {value!r}")
    if name in _RATES and not 0.0 <= number <= 1.0:
        raise ConfigError(label, f"is a share and must be between 0 and 1, got {value!r}")
    if name in _DURATIONS and number < 0.0:
        raise ConfigError(label, f"is a duration and must be 0 or more, got {value!r}")
    if name == "callback_copies":
        if not (number.is_integer() and 1 <= number <= MAX_CALLBACK_COPIES):
            raise ConfigError(
                label, f"must be a whole number from 1 to {MAX_CALLBACK_COPIES}, got {value!r}"
            )
        return int(number)
    return number


def _access_keys_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    keys: dict[str, str] = {}
    key_id = environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "").strip()
    secret, _ = secret_text(environ, "ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if key_id and secret:
        keys[key_id] = secret
    raw, source = secret_text(environ, ACCESS_KEYS_VARIABLE)
    for entry in filter(None, (part.strip() for part in (raw or "").split(","))):
        entry_id, colon, entry_secret = entry.partition(":")
        if not colon or not entry_id.strip() or not entry_secret.strip():
            raise ConfigError(
                source,
                "must be AccessKeyId:AccessKeySecret pairs separated by commas "
                "(an entry lacks the id, the ':' or the secret)",
            )
        keys[entry_id.strip()] = entry_secret.strip()
    if not keys:
        raise ConfigError(
            ACCESS_KEYS_VARIABLE,
            "no AccessKey pair to accept: set it to id:secret[,id:secret...] or set both "
            "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        )
    return keys


def _check_access_keys(keys: Mapping[str, str], label: str) -> None:
    if not keys:
        raise ConfigError(label, "at least one AccessKey pair is required")
    for key_id, secret in keys.items():
        if not (isinstance(key_id, str) and isinstance(secret, str) and key_id and secret):
            raise ConfigError(label, "AccessKeyIds and secrets must be non-empty text")
