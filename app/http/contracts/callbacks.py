"""The contract of callbacks: what ICE posts, and the audit's view of each callback."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field
from typing_extensions import TypedDict

from app.core.queries import CallbackQuery
from app.core.statuses import CallbackOutcome
from app.http.contracts.common import (
    PageParameters,
    choice,
    decode_id_cursor,
    limit_of,
    refuse_unknown_filters,
    resource,
    time_of,
    uuid_of,
)


class Callback(TypedDict):
    """A received ICE callback as the audit shows it: how it was judged, not its body (whose
    UserData holds the callback token)."""

    id: int
    job_id: Annotated[uuid.UUID | None, Field(description="None when no job matched")]
    received_at: datetime
    processed_at: datetime | None
    event_type: str | None
    ice_job_id: str | None
    ice_status: str | None
    outcome: CallbackOutcome
    detail: str | None
    peer: Annotated[str | None, Field(description="the sender's address")]
    request_id: Annotated[
        str | None, Field(description="its request's X-Request-ID, as in the log lines")
    ]


def callback_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return resource(Callback, row)


class CallbackFilters(PageParameters, total=False):
    """``GET /v1/callbacks``' query parameters."""

    outcome: CallbackOutcome
    job_id: uuid.UUID
    received_after: Annotated[datetime, Field(description="inclusive")]
    received_before: Annotated[datetime, Field(description="exclusive")]


def parse_callback_query(params: Mapping[str, str]) -> CallbackQuery:
    refuse_unknown_filters(params, CallbackFilters, "/v1/callbacks")
    cursor = params.get("cursor")
    return CallbackQuery(
        outcome=choice(params, "outcome", CallbackOutcome),
        job_id=uuid_of(params, "job_id"),
        received_after=time_of(params, "received_after"),
        received_before=time_of(params, "received_before"),
        limit=limit_of(params.get("limit")),
        before_id=decode_id_cursor(cursor) if cursor else None,
    )


class CallbackPage(TypedDict):
    items: list[Callback]
    next_cursor: str | None


class IceCallback(TypedDict, total=False):
    """An ICE event notification (``ProduceMediaComplete``, ``BatchProduceMediaComplete``).
    icehook keeps every body it receives and judges it afterwards; unknown event types are
    answered 200 and ignored, as ICE expects."""

    EventType: str
    UserId: int | str
    EventTime: str
    MessageBody: Annotated[
        dict[str, Any], Field(description="JobId, Status, UserData (with the NotifyAddress)...")
    ]
