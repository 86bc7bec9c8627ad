"""The contract of jobs and batches: submissions (ICE's own parameter names, so ICE users can
copy them), the job resource, its timeline, and the list's filters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Required

from pydantic import AfterValidator, Field, PlainValidator, with_config
from typing_extensions import TypedDict

from app.core.errors import ValidationError
from app.core.events import job_resource
from app.core.parsing import loads
from app.core.queries import PAGE_DEFAULT, JobQuery, search_terms
from app.core.retention import purged_for_job
from app.core.statuses import EventSource, JobKind, JobStatus
from app.core.submissions import Submission
from app.http.contracts.callbacks import Callback, callback_resource
from app.http.contracts.common import (
    BODY,
    FILTERS,
    UNSTORABLE,
    PageParameters,
    Time,
    all_storable,
    decode_cursor,
    refuse_unstorable,
    resource,
    validated,
    validated_filters,
)
from app.http.contracts.deliveries import Delivery, delivery_resource
from app.store.audit import Timeline


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value


Text = Annotated[str, AfterValidator(_not_blank)]


def _inner_json(text: str) -> Any:
    """A value given as JSON text, parsed and checked as the body itself is."""
    try:
        value = loads(text)
    except (ValueError, RecursionError):
        raise ValueError("is a string but not valid JSON") from None
    if not all_storable(value):
        raise ValueError(UNSTORABLE)
    return value


def _json_text(value: Any) -> str:
    """A JSON object or array, given as itself or as its JSON text, as JSON text (what ICE
    takes)."""
    if isinstance(value, str):
        value = _inner_json(value)
    if not isinstance(value, dict | list):
        raise ValueError("must be a JSON object (or its JSON text)")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


JsonDocument = Annotated[
    str,
    PlainValidator(_json_text, json_schema_input_type=dict[str, Any] | list[Any] | str),
    Field(description="a JSON object or array, or its JSON text (ICE wants text)"),
]


def _user_data(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = _inner_json(value)
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    if "NotifyAddress" in value:
        raise ValueError("NotifyAddress is set by icehook; leave it out")
    return value


UserData = Annotated[
    dict[str, Any],
    PlainValidator(_user_data, json_schema_input_type=dict[str, Any] | str | None),
    Field(
        description="your own data, kept with the job and sent back in its events; "
        "icehook adds NotifyAddress, and ICE allows 512 bytes in all"
    ),
]


@with_config(BODY)
class JobSubmission(TypedDict, total=False):
    """``SubmitMediaProducingJob``'s parameters, by ICE's names: exactly one of ProjectId,
    Timeline and TemplateId (with ClipsParam)."""

    ProjectId: Text
    Timeline: JsonDocument
    TemplateId: Text
    ClipsParam: JsonDocument
    OutputMediaConfig: Required[JsonDocument]
    OutputMediaTarget: Literal["oss-object", "vod-media", "S3"]
    ProjectMetadata: JsonDocument
    EditingProduceConfig: JsonDocument
    MediaMetadata: JsonDocument
    Source: Text
    UserData: UserData


IDEMPOTENCY_KEY_MAX = 200


SubmitHeaders = TypedDict(
    "SubmitHeaders",
    {
        "Idempotency-Key": Annotated[
            str,
            Field(
                min_length=1,
                max_length=IDEMPOTENCY_KEY_MAX,
                description="the same key and body again answer the first job (200), "
                "never a second submission",
            ),
        ]
    },
    total=False,
)


def parse_submit_headers(headers: Mapping[str, str]) -> SubmitHeaders:
    """The headers of a submission that icehook reads (the others are not its business)."""
    given = {name: headers[name] for name in SubmitHeaders.__annotations__ if name in headers}
    return validated(SubmitHeaders, given)


def _project_ids(value: Any) -> str:
    """A list of project ids, or one comma-separated string, as ICE's comma string."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise ValueError("must be a list of project ids or a comma string")
    ids = [i.strip() for i in value if i.strip()]
    if not ids:
        raise ValueError("names no project")
    return ",".join(ids)


@with_config(BODY)
class BatchSubmission(TypedDict, total=False):
    """``SubmitSceneBatchEditingJob``'s parameters, by ICE's names."""

    ProjectIds: Required[
        Annotated[
            str,
            PlainValidator(_project_ids, json_schema_input_type=list[str] | str),
            Field(description="a list, or one comma-separated string"),
        ]
    ]
    OutputConfig: Required[JsonDocument]
    UserData: UserData


INDEX_PLACEHOLDER = "{index}"  # in a batch's OutputConfig: each output's number


@with_config(BODY)
class Resolve(TypedDict):
    """An operator's choice for a submission whose fate is unknown."""

    resolution: Annotated[
        Literal["resubmit", "abandon"],
        Field(
            description="resubmit: submit it to ICE again (ICE may then hold two); abandon: "
            "record it `abandoned` and stop looking"
        ),
    ]


def parse_resolve(body: Mapping[str, Any]) -> Resolve:
    return validated(Resolve, body)


def parse_job(body: Mapping[str, Any]) -> Submission:
    """A ``SubmitMediaProducingJob`` body (ICE's parameter names)."""
    if "ClientToken" in body:  # an ICE parameter, but icehook's to set
        raise ValidationError("ClientToken", "is set by icehook (from the job's id)")
    submission = validated(JobSubmission, body)
    parameters = {name: text for name, text in submission.items() if isinstance(text, str)}
    sources = [name for name in ("ProjectId", "Timeline", "TemplateId") if name in parameters]
    if len(sources) != 1:
        raise ValidationError("ProjectId", "give exactly one of ProjectId, Timeline and TemplateId")
    if "TemplateId" in parameters and "ClipsParam" not in parameters:
        raise ValidationError("ClipsParam", "is required with TemplateId")
    user_data = submission.get("UserData", {})
    return Submission(JobKind.JOB, parameters, user_data, parameters.get("ProjectId"))


def parse_batch(body: Mapping[str, Any]) -> Submission:
    """A ``SubmitSceneBatchEditingJob`` body: ``ProjectIds`` as a list or a comma string."""
    batch = validated(BatchSubmission, body)
    if "," in batch["ProjectIds"] and INDEX_PLACEHOLDER not in batch["OutputConfig"]:
        raise ValidationError(
            "OutputConfig",
            f"must name {INDEX_PLACEHOLDER} (in MediaURL or FileName) when there are several "
            "projects, or every video would be written to one object",
        )
    parameters = {"ProjectIds": batch["ProjectIds"], "OutputConfig": batch["OutputConfig"]}
    return Submission(JobKind.BATCH, parameters, batch.get("UserData", {}), None)


class Job(TypedDict):
    """A job (``kind`` job) or a batch (``kind`` batch); ``status`` only moves forward."""

    id: uuid.UUID
    ice_job_id: str | None
    kind: JobKind
    status: JobStatus
    ice_status: Annotated[str | None, Field(description="ICE's own word, verbatim")]
    project_id: str | None
    media_id: str | None
    media_url: str | None
    error_code: str | None
    error_message: str | None
    user_data: Annotated[
        dict[str, Any] | None, Field(description="what the client sent, without NotifyAddress")
    ]
    batch_id: Annotated[uuid.UUID | None, Field(description="the batch of a sub-job")]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    fate_unknown_since: Annotated[
        datetime | None,
        Field(
            description="set while ICE cannot show whether a submission whose answer was lost "
            "exists (a batch, when ICE lists no scene batch); a callback settles it, or "
            "POST /v1/batch-jobs/{id}/resolve"
        ),
    ]
    sub_jobs_succeeded: Annotated[
        int | None,
        Field(description="a batch's sub-jobs that succeeded, once ICE has listed them"),
    ]
    sub_jobs_failed: Annotated[
        int | None,
        Field(description="a batch's sub-jobs that failed, once ICE has listed them"),
    ]


class Event(TypedDict):
    """One observed change of a job's status."""

    id: int
    from_status: JobStatus | None
    to_status: JobStatus
    source: EventSource
    payload: Annotated[dict[str, Any] | None, Field(description="the ICE answer that caused it")]
    created_at: datetime


def event_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return resource(Event, row)


# ``user_data.KEY=VALUE``: UserData's KEY is the string VALUE or a number equal to it.
USER_DATA_FILTER = "user_data."
SEARCH_MAX = 256


@with_config(FILTERS)
class JobFilters(PageParameters, total=False):
    """``GET /v1/jobs``'s query parameters, and ``user_data.KEY=VALUE`` (any number of
    them, each of which must match)."""

    q: Annotated[
        str,
        Field(
            max_length=SEARCH_MAX,
            description="one search box: an icehook id or an ICE JobId (that job), a project "
            "id (its jobs), or KEY=VALUE (as user_data.KEY=VALUE)",
        ),
    ]
    status: JobStatus
    ice_job_id: str
    project_id: str
    batch_id: uuid.UUID
    created_after: Annotated[Time, Field(description="inclusive")]
    created_before: Annotated[Time, Field(description="exclusive")]


def parse_job_query(params: Mapping[str, str]) -> JobQuery:
    user_data = []
    for name, value in params.items():
        key = name.removeprefix(USER_DATA_FILTER)
        if key == name or value == "":
            continue
        refuse_unstorable(name, value)
        if not key or len(key) > SEARCH_MAX or len(value) > SEARCH_MAX:
            raise ValidationError(name, f"needs a key and a value of 1 to {SEARCH_MAX} characters")
        user_data.append((key, value))
    plain = {name: value for name, value in params.items() if not name.startswith(USER_DATA_FILTER)}
    filters = validated_filters(JobFilters, plain)
    text, searched = search_terms(filters["q"]) if "q" in filters else (None, ())
    cursor = filters.get("cursor")
    return JobQuery(
        text=text,
        user_data=(*searched, *user_data),
        status=filters.get("status"),
        ice_job_id=filters.get("ice_job_id"),
        project_id=filters.get("project_id"),
        batch_id=filters.get("batch_id"),
        created_after=filters.get("created_after"),
        created_before=filters.get("created_before"),
        limit=filters.get("limit", PAGE_DEFAULT),
        cursor=decode_cursor(cursor) if cursor else None,
    )


class Purged(TypedDict):
    """What retention has removed of a job (ICEHOOK_RETENTION): each is null while nothing
    of the job can have been removed, or the time before which its records are gone (a
    callback by when it was received, a webhook, with its deliveries and their attempts, by
    when its event was recorded)."""

    callbacks_before: datetime | None
    webhooks_before: datetime | None


class JobTimeline(Job):
    """A job with everything that happened to it, each list oldest first, and what of it
    retention has removed."""

    events: list[Event]
    callbacks: list[Callback]
    deliveries: list[Delivery]
    purged: Purged


class Batch(Job):
    sub_jobs: list[Job]


class JobPage(TypedDict):
    items: list[Job]
    next_cursor: Annotated[str | None, Field(description="None on the last page")]


def timeline_resource(job: Mapping[Any, Any], timeline: Timeline) -> dict[str, Any]:
    """``job`` with its timeline (``JobTimeline``)."""
    return job_resource(job) | {
        "events": [event_resource(e) for e in timeline.events],
        "callbacks": [callback_resource(c) for c in timeline.callbacks],
        "deliveries": [delivery_resource(d) for d in timeline.deliveries],
        "purged": resource(Purged, purged_for_job(job["created_at"], timeline.horizons)),
    }
