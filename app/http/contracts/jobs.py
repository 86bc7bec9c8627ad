"""The contract of jobs and batches: submissions (ICE's own parameter names, so ICE users can
copy them), the job resource, its timeline, and the list's filters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Required, get_args, get_origin, get_type_hints

from pydantic import Field, with_config
from typing_extensions import TypedDict

from app.core.errors import ValidationError
from app.core.events import job_resource
from app.core.parsing import loads
from app.core.queries import JobQuery
from app.core.statuses import EventSource, JobKind, JobStatus
from app.core.submissions import Submission
from app.http.contracts.callbacks import Callback, callback_resource
from app.http.contracts.common import (
    CLOSED,
    PageParameters,
    choice,
    decode_cursor,
    limit_of,
    refuse_unknown,
    refuse_unknown_filters,
    refuse_unstorable,
    resource,
    time_of,
    uuid_of,
)
from app.http.contracts.deliveries import Delivery, delivery_resource
from app.store.audit import Timeline

OutputMediaTarget = Literal["oss-object", "vod-media", "S3"]


OUTPUT_MEDIA_TARGETS = frozenset(get_args(OutputMediaTarget))


JsonDocument = Annotated[
    dict[str, Any] | list[Any] | str,
    Field(description="a JSON object or array, or its JSON text (ICE wants text)"),
]


UserData = Annotated[
    dict[str, Any] | str | None,
    Field(
        description="your own data, kept with the job and sent back in its events; "
        "icehook adds NotifyAddress, and ICE allows 512 bytes in all"
    ),
]


@with_config(CLOSED)
class JobSubmission(TypedDict, total=False):
    """``SubmitMediaProducingJob``'s parameters, by ICE's names: exactly one of ProjectId,
    Timeline and TemplateId (with ClipsParam)."""

    ProjectId: str
    Timeline: JsonDocument
    TemplateId: str
    ClipsParam: JsonDocument
    OutputMediaConfig: Required[JsonDocument]
    OutputMediaTarget: OutputMediaTarget
    ProjectMetadata: JsonDocument
    EditingProduceConfig: JsonDocument
    MediaMetadata: JsonDocument
    Source: str
    UserData: UserData


# SubmitMediaProducingJob's parameters by the form of their values: text, or JSON documents
# (sent to ICE as JSON text). UserData is neither: icehook adds to it.
_JOB_HINTS = get_type_hints(JobSubmission)


JOB_TEXT_PARAMETERS = frozenset(
    name for name, hint in _JOB_HINTS.items() if hint is str or get_origin(hint) is Literal
)


JOB_JSON_PARAMETERS = frozenset(_JOB_HINTS.keys() - JOB_TEXT_PARAMETERS - {"UserData"})


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


@with_config(CLOSED)
class BatchSubmission(TypedDict, total=False):
    """``SubmitSceneBatchEditingJob``'s parameters, by ICE's names."""

    ProjectIds: Required[
        Annotated[list[str] | str, Field(description="a list, or one comma-separated string")]
    ]
    OutputConfig: Required[JsonDocument]
    UserData: UserData


def parse_job(body: Mapping[str, Any]) -> Submission:
    """A ``SubmitMediaProducingJob`` body (ICE's parameter names)."""
    refuse_unknown(body, JobSubmission)
    parameters: dict[str, str] = {}
    for name in sorted(JOB_TEXT_PARAMETERS & body.keys()):
        parameters[name] = _text(body, name)
    for name in sorted(JOB_JSON_PARAMETERS & body.keys()):
        parameters[name] = _json_text(body, name)
    sources = [name for name in ("ProjectId", "Timeline", "TemplateId") if name in parameters]
    if len(sources) != 1:
        raise ValidationError("ProjectId", "give exactly one of ProjectId, Timeline and TemplateId")
    if "TemplateId" in parameters and "ClipsParam" not in parameters:
        raise ValidationError("ClipsParam", "is required with TemplateId")
    if "OutputMediaConfig" not in parameters:
        raise ValidationError("OutputMediaConfig", "is required")
    target = parameters.get("OutputMediaTarget")
    if target is not None and target not in OUTPUT_MEDIA_TARGETS:
        raise ValidationError(
            "OutputMediaTarget", f"must be one of {', '.join(sorted(OUTPUT_MEDIA_TARGETS))}"
        )
    return Submission(JobKind.JOB, parameters, _user_data(body), parameters.get("ProjectId"))


def parse_batch(body: Mapping[str, Any]) -> Submission:
    """A ``SubmitSceneBatchEditingJob`` body: ``ProjectIds`` as a list or a comma string."""
    refuse_unknown(body, BatchSubmission)
    raw_ids = body.get("ProjectIds")
    if isinstance(raw_ids, str):
        raw_ids = raw_ids.split(",")
    if not isinstance(raw_ids, list) or not all(isinstance(i, str) for i in raw_ids):
        raise ValidationError("ProjectIds", "must be a list of project ids or a comma string")
    ids = [i.strip() for i in raw_ids if i.strip()]
    if not ids:
        raise ValidationError("ProjectIds", "names no project")
    if "OutputConfig" not in body:
        raise ValidationError("OutputConfig", "is required")
    parameters = {"ProjectIds": ",".join(ids), "OutputConfig": _json_text(body, "OutputConfig")}
    return Submission(JobKind.BATCH, parameters, _user_data(body), None)


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, "must be a non-empty string")
    return value


def _inner_json(name: str, text: str) -> Any:
    """A parameter given as JSON text, parsed and checked as the body itself is."""
    try:
        value = loads(text)
    except (ValueError, RecursionError):
        raise ValidationError(name, "is a string but not valid JSON") from None
    refuse_unstorable(name, value)
    return value


def _json_text(body: Mapping[str, Any], name: str) -> str:
    """A JSON-valued parameter, given as an object/array or as a JSON string; ICE wants text."""
    value = body[name]
    if isinstance(value, str):
        value = _inner_json(name, value)
    if not isinstance(value, dict | list):
        raise ValidationError(name, "must be a JSON object (or its JSON text)")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _user_data(body: Mapping[str, Any]) -> dict[str, Any]:
    if "UserData" not in body or body["UserData"] is None:
        return {}
    value = body["UserData"]
    if isinstance(value, str):
        value = _inner_json("UserData", value)
    if not isinstance(value, dict):
        raise ValidationError("UserData", "must be a JSON object")
    if "NotifyAddress" in value:
        raise ValidationError("UserData", "NotifyAddress is set by icehook; leave it out")
    return value


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


class JobFilters(PageParameters, total=False):
    """``GET /v1/jobs``'s query parameters."""

    status: JobStatus
    ice_job_id: str
    project_id: str
    batch_id: uuid.UUID
    created_after: Annotated[datetime, Field(description="inclusive")]
    created_before: Annotated[datetime, Field(description="exclusive")]


def parse_job_query(params: Mapping[str, str]) -> JobQuery:
    refuse_unknown_filters(params, JobFilters, "/v1/jobs")
    return JobQuery(
        status=choice(params, "status", JobStatus),
        ice_job_id=params.get("ice_job_id") or None,
        project_id=params.get("project_id") or None,
        batch_id=uuid_of(params, "batch_id"),
        created_after=time_of(params, "created_after"),
        created_before=time_of(params, "created_before"),
        limit=limit_of(params.get("limit")),
        cursor=decode_cursor(params["cursor"]) if params.get("cursor") else None,
    )


class JobTimeline(Job):
    """A job with everything that happened to it, each list oldest first."""

    events: list[Event]
    callbacks: list[Callback]
    deliveries: list[Delivery]


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
    }
