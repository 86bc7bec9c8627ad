"""The contract of the events as recorded (``GET /v1/events``): each is a webhook's body with
its ``webhook-id``, and the list's filters."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema, with_config
from typing_extensions import TypedDict

from app.core.events import EVENT_TYPES
from app.core.queries import PAGE_DEFAULT, EventQuery
from app.http.contracts.common import (
    FILTERS,
    PageParameters,
    decode_id_cursor,
    encode_id_cursor,
    refuse_unstorable,
    validated,
)
from app.http.contracts.jobs import Job
from app.http.contracts.subscriptions import EventPattern, SubscriptionNotice


class RecordedEvent(TypedDict):
    """An event as recorded: the body its webhooks carry, and their ``webhook-id``."""

    id: Annotated[str, Field(description="msg_...: the webhook-id of its webhooks")]
    type: Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(EVENT_TYPES)})]
    timestamp: datetime
    data: Annotated[
        Job | SubscriptionNotice,
        Field(description="the job; for a subscription.* event, the subscription"),
    ]


def recorded_event_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    body = row["payload"]
    return {
        "id": row["event_id"],
        "type": body["type"],
        "timestamp": body["timestamp"],
        "data": body["data"],
    }


@with_config(FILTERS)
class EventFilters(PageParameters, total=False):
    """``GET /v1/events``' query parameters."""

    type: Annotated[
        list[EventPattern],
        Field(description="an event type, or a pattern: job.*, batch.*, *; repeat for more"),
    ]
    job_id: uuid.UUID


def parse_event_query(params: Iterable[tuple[str, str]]) -> EventQuery:
    """The query's (name, value) pairs as given: ``type`` may come more than once (an event
    matching any is listed); of any other name, the last counts. An empty value is as if not
    given, as for every list."""
    given: dict[str, Any] = {}
    types = []
    for name, value in params:
        if value == "":
            continue
        refuse_unstorable(name, value)
        if name == "type":
            types.append(value)
        else:
            given[name] = value
    if types:
        given["type"] = types
    filters = validated(EventFilters, given)
    cursor = filters.get("cursor")
    return EventQuery(
        types=tuple(filters.get("type", ())),
        job_id=filters.get("job_id"),
        limit=filters.get("limit", PAGE_DEFAULT),
        after_id=decode_id_cursor(cursor) if cursor else 0,
    )


class EventPage(TypedDict):
    items: list[RecordedEvent]
    next_cursor: Annotated[
        str,
        Field(
            description="where to read on from: after the last event of this page, or where "
            "this page began when it is empty (always given: an empty page means none newer "
            "yet; ask again later with the same cursor)"
        ),
    ]


def event_page(rows: Sequence[Mapping[Any, Any]], query: EventQuery) -> dict[str, Any]:
    """A page of events and the cursor after its last one (or its own, when it is empty)."""
    last = rows[-1]["id"] if rows else query.after_id
    items = [recorded_event_resource(row) for row in rows]
    return {"items": items, "next_cursor": encode_id_cursor(last)}
