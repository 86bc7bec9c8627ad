"""The contract of webhook subscriptions: creating and changing one (its filter, headers
and limits among the rest), the resource, replays and recoveries, and the events
subscribers receive."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired, Required
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, WithJsonSchema, with_config
from typing_extensions import TypedDict

from app.core.errors import ValidationError
from app.core.events import JOB_EVENT_TYPES, PATTERNS
from app.core.shaping import (
    FILTER_KEYS_MAX,
    FILTER_TEXT_MAX,
    FILTER_VALUES_MAX,
    HEADERS_MAX,
    MAX_IN_FLIGHT_LIMIT,
    MAX_PER_SECOND_LIMIT,
    MIN_PER_SECOND,
    as_text,
    header_problem,
    masked,
)
from app.http.contracts.common import BODY, Time, resource, validated
from app.http.contracts.jobs import Job
from app.webhooks.signing import public_key

URL_MAX = 2048


DESCRIPTION_MAX = 1000


EventType = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(JOB_EVENT_TYPES)})]


def _known_pattern(pattern: str) -> str:
    if pattern not in PATTERNS:
        raise ValueError(
            f"{pattern!r} is not an event type; use one of {', '.join(sorted(PATTERNS))}"
        )
    return pattern


EventPattern = Annotated[
    str,
    AfterValidator(_known_pattern),
    WithJsonSchema({"type": "string", "enum": sorted(PATTERNS)}),
    Field(description="an event type, or a pattern: job.*, batch.*, *"),
]


def _webhook_url(value: str) -> str:
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ValueError("must not hold spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials; the signature authenticates")
    if parts.fragment:
        raise ValueError("must not have a #fragment")
    return value


WebhookUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=URL_MAX,
        json_schema_extra={"format": "uri"},
        description="http:// or https://, without credentials or #fragment",
    ),
    AfterValidator(_webhook_url),
]


def _distinct(patterns: list[str]) -> list[str]:
    return list(dict.fromkeys(patterns))


EventPatterns = Annotated[list[EventPattern], Field(min_length=1), AfterValidator(_distinct)]

# Chosen when it is created, for good: to change it, create a subscription with the other
# scheme to the same URL (an event has the same webhook-id in both), then delete this one.
SignatureScheme = Annotated[
    Literal["v1", "v1a"],
    Field(description="v1: HMAC-SHA256 with a whsec_ secret; v1a: ed25519, see public_key"),
]


FilterText = Annotated[str, Field(min_length=1, max_length=FILTER_TEXT_MAX)]
FilterValue = FilterText | Annotated[int, Field(ge=-(10**18), le=10**18)] | float | bool
OneOrMore = Annotated[
    list[FilterValue] | FilterValue,
    Field(description="a value, or a list meaning any of its values"),
]


@with_config(BODY)
class EventFilterIn(TypedDict, total=False):
    """Which jobs' events reach the subscription: every key given must match."""

    project_id: OneOrMore
    user_data: Annotated[
        dict[FilterText, OneOrMore],
        Field(
            max_length=FILTER_KEYS_MAX,
            description="UserData KEY: VALUE; a number matches its text too (42 and '42')",
        ),
    ]


class EventFilter(TypedDict, total=False):
    """A filter as kept: each value as text, in a list."""

    project_id: list[str]
    user_data: dict[str, list[str]]


def _values(field: str, given: Any) -> list[str]:
    listed = given if isinstance(given, list) else [given]
    if not listed:
        raise ValueError(f"{field} must list at least one value")
    if len(listed) > FILTER_VALUES_MAX:
        raise ValueError(f"{field} may list at most {FILTER_VALUES_MAX} values")
    return list(dict.fromkeys(as_text(value) for value in listed))


def _kept_filter(given: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not given:
        return None  # {} or null: every event it wants
    kept: dict[str, Any] = {}
    if "project_id" in given:
        kept["project_id"] = _values("project_id", given["project_id"])
    if given.get("user_data"):
        kept["user_data"] = {
            key: _values(f"user_data.{key}", values) for key, values in given["user_data"].items()
        }
    return kept or None


def _checked_headers(given: Mapping[str, str] | None) -> dict[str, str] | None:
    if not given:
        return None
    kept: dict[str, str] = {}
    for name, value in given.items():
        problem = header_problem(name, value)
        if problem is not None:
            raise ValueError(problem)
        if name.lower() in kept:
            raise ValueError(f"{name!r} is given twice")
        kept[name.lower()] = value
    return kept


class _SubscriptionSettings(TypedDict, total=False):
    description: Annotated[str, Field(max_length=DESCRIPTION_MAX)]
    enabled: bool
    filter: Annotated[
        EventFilterIn | None,
        AfterValidator(_kept_filter),
        Field(description="only the events of jobs it lets through; null or {}: every one"),
    ]
    headers: Annotated[
        dict[str, str] | None,
        Field(
            max_length=HEADERS_MAX,
            description="static headers sent with each webhook (e.g. a gateway's token); "
            "write-only: shown masked; cannot replace webhook-*, host, content-* and the like",
        ),
        AfterValidator(_checked_headers),
    ]
    max_in_flight: Annotated[
        int,
        Field(ge=1, le=MAX_IN_FLIGHT_LIMIT, description="its requests at once, all workers"),
    ]
    max_per_second: Annotated[
        float | None,
        Field(
            ge=MIN_PER_SECOND,
            le=MAX_PER_SECOND_LIMIT,
            description="its requests a second (0.01: one every 100 s); null: no limit",
        ),
    ]


@with_config(BODY)
class NewSubscription(_SubscriptionSettings, total=False):
    """``POST /v1/subscriptions``."""

    url: Required[WebhookUrl]
    event_types: Required[EventPatterns]
    signature_scheme: SignatureScheme  # v1 unless given; PATCH cannot change it


@with_config(BODY)
class SubscriptionChange(_SubscriptionSettings, total=False):
    """``PATCH /v1/subscriptions/{id}``: any of the fields."""

    url: WebhookUrl
    event_types: EventPatterns


class Subscription(TypedDict):
    """A webhook endpoint; a v1 secret is shown only when created or rotated, a v1a secret
    key never (its public key always)."""

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: Annotated[
        str | None, Field(description="why icehook disabled it (410 Gone, failing too long)")
    ]
    failing_since: Annotated[
        datetime | None, Field(description="the first failure since the last success")
    ]
    disabled_at: datetime | None
    queue_until: Annotated[
        datetime | None,
        Field(description="while disabled, its new events are queued for it until then"),
    ]
    filter: EventFilter | None
    headers: Annotated[dict[str, str], Field(description="names only; values masked")]
    max_in_flight: int
    max_per_second: float | None
    created_at: datetime
    updated_at: datetime
    signature_scheme: SignatureScheme
    public_key: Annotated[
        str | None, Field(description="v1a: the whpk_ ed25519 key that verifies it; v1: null")
    ]


class CreatedSubscription(Subscription):
    secret: NotRequired[Annotated[str, Field(description="v1: whsec_..., shown this once")]]


class RotatedSubscription(Subscription):
    secret: NotRequired[
        Annotated[str, Field(description="v1: the new whsec_... secret, shown this once")]
    ]
    previous_secret_valid_until: Annotated[
        datetime, Field(description="until then the old secret (v1a: key) signs too")
    ]


def parse_subscription(body: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """A subscription's columns from a POST (``url`` and ``event_types`` required) or a PATCH
    (``partial``: only what is given)."""
    return dict(validated(SubscriptionChange if partial else NewSubscription, body))


@with_config(BODY)
class Replay(TypedDict, total=False):
    """The period whose recorded events are sent again (``until`` open: up to now)."""

    since: Required[Time]
    until: Time


class Replayed(TypedDict):
    replayed: Annotated[int, Field(description="how many events were queued for sending")]


class Recovered(TypedDict):
    recovered: Annotated[
        int, Field(description="how many undelivered events were queued for sending")
    ]


class Retried(TypedDict):
    retried: Annotated[int, Field(description="how many dead deliveries were made due again")]


def parse_replay(body: Mapping[str, Any]) -> tuple[datetime, datetime | None]:
    """``since`` (required) and ``until`` of a replay."""
    replay = validated(Replay, body)
    since, until = replay["since"], replay.get("until")
    if until is not None and until <= since:
        raise ValidationError("until", "must be after since")
    return since, until


def subscription_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    key = public_key(row["secret"]) if row["signature_scheme"] == "v1a" else None
    shown = resource(Subscription, {**row, "public_key": key})
    return shown | {"event_types": list(row["event_types"]), "headers": masked(row["headers"])}


def shown_once(row: Mapping[Any, Any], secret: str) -> dict[str, Any]:
    """The subscription just created or rotated to ``secret``: a v1 one with it, shown this
    once; a v1a one without (its secret key never leaves icehook: receivers need
    ``public_key``)."""
    shown = subscription_resource(row)
    return (shown | {"secret": secret}) if row["signature_scheme"] == "v1" else shown


class Subscriptions(TypedDict):
    items: list[Subscription]


class WebhookEvent(TypedDict):
    """What a subscriber receives for a job's event (Standard Webhooks: webhook-id,
    webhook-timestamp, webhook-signature headers)."""

    type: EventType
    timestamp: datetime
    data: Job


class SubscriptionNotice(TypedDict):
    """What the subscription changed (of its URL only the host; its secrets and headers
    never shown)."""

    id: uuid.UUID
    host: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    queue_until: datetime | None


class OperationalEvent(TypedDict):
    """What a subscriber that asks for ``subscription.disabled``/``subscription.enabled``
    (or ``subscription.*``) receives, signed and retried like job events."""

    type: Annotated[
        str,
        WithJsonSchema(
            {"type": "string", "enum": ["subscription.disabled", "subscription.enabled"]}
        ),
    ]
    timestamp: datetime
    data: SubscriptionNotice
