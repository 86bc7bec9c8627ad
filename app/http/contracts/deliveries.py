"""The contract of deliveries: the resource, its attempt log, and the list's filters."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema
from typing_extensions import TypedDict

from app.core.errors import ValidationError
from app.core.events import EVENT_TYPES
from app.core.queries import DeliveryQuery
from app.core.statuses import DeliveryStatus
from app.http.contracts.common import (
    PageParameters,
    choice,
    decode_id_cursor,
    limit_of,
    refuse_unknown_filters,
    resource,
    uuid_of,
)

EventType = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(EVENT_TYPES)})]


class Delivery(TypedDict):
    """One event on its way to one subscription."""

    id: int
    event_id: Annotated[str, Field(description="the webhook-id, the same on every attempt")]
    subscription_id: uuid.UUID
    job_id: uuid.UUID
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


class DeliveryFilters(PageParameters, total=False):
    """``GET /v1/deliveries``' query parameters."""

    status: DeliveryStatus
    subscription_id: uuid.UUID
    job_id: uuid.UUID
    event_type: EventType


def parse_delivery_query(params: Mapping[str, str]) -> DeliveryQuery:
    refuse_unknown_filters(params, DeliveryFilters, "/v1/deliveries")
    event_type = params.get("event_type") or None
    if event_type is not None and event_type not in EVENT_TYPES:
        raise ValidationError("event_type", "is not an event type (e.g. job.succeeded)")
    cursor = params.get("cursor")
    return DeliveryQuery(
        status=choice(params, "status", DeliveryStatus),
        subscription_id=uuid_of(params, "subscription_id"),
        job_id=uuid_of(params, "job_id"),
        event_type=event_type,
        limit=limit_of(params.get("limit")),
        before_id=decode_id_cursor(cursor) if cursor else None,
    )


class DeliveryPage(TypedDict):
    items: list[Delivery]
    next_cursor: str | None
