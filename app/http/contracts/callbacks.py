"""The contract of callbacks: what ICE posts, and the audit's view of each callback."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, with_config
from typing_extensions import TypedDict

from app.core.queries import PAGE_DEFAULT, CallbackQuery
from app.core.statuses import CallbackOutcome
from app.http.contracts.common import (
    FILTERS,
    PageParameters,
    Time,
    decode_id_cursor,
    resource,
    validated_filters,
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
    signed: Annotated[
        bool | None,
        Field(
            description="whether its X-ICE-SIGNATURE verified: false when AuthKeys are "
            "configured but it carried none (kept as a hint: every callback is confirmed "
            "with ICE); null when no AuthKey is configured"
        ),
    ]


def callback_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return resource(Callback, row)


@with_config(FILTERS)
class CallbackFilters(PageParameters, total=False):
    """``GET /v1/callbacks``' query parameters."""

    outcome: CallbackOutcome
    job_id: uuid.UUID
    received_after: Annotated[Time, Field(description="inclusive")]
    received_before: Annotated[Time, Field(description="exclusive")]


def parse_callback_query(params: Mapping[str, str]) -> CallbackQuery:
    filters = validated_filters(CallbackFilters, params)
    cursor = filters.get("cursor")
    return CallbackQuery(
        outcome=filters.get("outcome"),
        job_id=filters.get("job_id"),
        received_after=filters.get("received_after"),
        received_before=filters.get("received_before"),
        limit=filters.get("limit", PAGE_DEFAULT),
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
