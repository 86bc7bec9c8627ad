"""The contract of deliveries: the resource, its attempt log, and the list's filters."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, WithJsonSchema, with_config
from typing_extensions import TypedDict

from app.core.events import EVENT_TYPES
from app.core.queries import PAGE_DEFAULT, DeliveryQuery
from app.core.statuses import DeliveryStatus
from app.http.contracts.common import (
    FILTERS,
    PageParameters,
    decode_id_cursor,
    resource,
    validated_filters,
)


def _known_event_type(name: str) -> str:
    if name not in EVENT_TYPES:
        raise ValueError("is not an event type (e.g. job.succeeded)")
    return name


EventType = Annotated[
    str,
    AfterValidator(_known_event_type),
    WithJsonSchema({"type": "string", "enum": sorted(EVENT_TYPES)}),
]


class Delivery(TypedDict):
    """One event on its way to one subscription."""

    id: int
    event_id: Annotated[str, Field(description="the webhook-id, the same on every attempt")]
    subscription_id: uuid.UUID
    job_id: Annotated[
        uuid.UUID | None, Field(description="null for an operational event (subscription.*)")
    ]
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryAttempt(TypedDict):
    attempted_at: datetime
    status_code: int | None
    latency_ms: float | None
    error: str | None
    response_excerpt: Annotated[str | None, Field(description="the first KiB of the response")]


class DeliveryDetail(Delivery):
    attempt_log: list[DeliveryAttempt]


def delivery_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return resource(Delivery, row)


def attempt_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return resource(DeliveryAttempt, row)


@with_config(FILTERS)
class DeliveryFilters(PageParameters, total=False):
    """``GET /v1/deliveries``' query parameters."""

    status: DeliveryStatus
    subscription_id: uuid.UUID
    job_id: uuid.UUID
    event_type: EventType


def parse_delivery_query(params: Mapping[str, str]) -> DeliveryQuery:
    filters = validated_filters(DeliveryFilters, params)
    cursor = filters.get("cursor")
    return DeliveryQuery(
        status=filters.get("status"),
        subscription_id=filters.get("subscription_id"),
        job_id=filters.get("job_id"),
        event_type=filters.get("event_type"),
        limit=filters.get("limit", PAGE_DEFAULT),
        before_id=decode_id_cursor(cursor) if cursor else None,
    )


class DeliveryPage(TypedDict):
    items: list[Delivery]
    next_cursor: str | None
