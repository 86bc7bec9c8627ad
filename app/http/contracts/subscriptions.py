"""The contract of webhook subscriptions: creating and changing one, the resource, replays,
and the events subscribers receive."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Required
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, WithJsonSchema, with_config
from typing_extensions import TypedDict

from app.core.errors import ValidationError
from app.core.events import EVENT_TYPES, PATTERNS
from app.http.contracts.common import BODY, Time, resource, validated
from app.http.contracts.jobs import Job

URL_MAX = 2048


DESCRIPTION_MAX = 1000


EventType = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(EVENT_TYPES)})]


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


class _SubscriptionSettings(TypedDict, total=False):
    description: Annotated[str, Field(max_length=DESCRIPTION_MAX)]
    enabled: bool


@with_config(BODY)
class NewSubscription(_SubscriptionSettings, total=False):
    """``POST /v1/subscriptions``."""

    url: Required[WebhookUrl]
    event_types: Required[EventPatterns]


@with_config(BODY)
class SubscriptionChange(_SubscriptionSettings, total=False):
    """``PATCH /v1/subscriptions/{id}``: any of the fields."""

    url: WebhookUrl
    event_types: EventPatterns


class Subscription(TypedDict):
    """A webhook endpoint; its secret is shown only when created or rotated."""

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
    created_at: datetime
    updated_at: datetime


class CreatedSubscription(Subscription):
    secret: Annotated[str, Field(description="whsec_...: shown this once")]


class RotatedSubscription(Subscription):
    secret: Annotated[str, Field(description="the new whsec_... secret: shown this once")]
    previous_secret_valid_until: Annotated[
        datetime, Field(description="until then the old secret signs too")
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
    return resource(Subscription, row) | {"event_types": list(row["event_types"])}


class Subscriptions(TypedDict):
    items: list[Subscription]


class WebhookEvent(TypedDict):
    """What a subscriber receives (Standard Webhooks: webhook-id, webhook-timestamp,
    webhook-signature headers)."""

    type: EventType
    timestamp: datetime
    data: Job
