"""Request parsing and response serialisation for the /v1 API.

Job submissions use ICE's own parameter names (PascalCase) so ICE users can copy them;
icehook's own resources are snake_case. Every parsing failure is a ``ValidationError``
naming the field.
"""

from __future__ import annotations

import base64
import enum
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
    TypeVar,
    get_args,
    get_origin,
    get_type_hints,
)
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, WithJsonSchema, with_config
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from app import db, jsontext, numbers
from app.errors import ValidationError
from app.models import CallbackOutcome, DeliveryStatus, EventSource, JobKind, JobStatus
from app.outbox import EVENT_TYPES, PATTERNS

OutputMediaTarget = Literal["oss-object", "vod-media", "S3"]
OUTPUT_MEDIA_TARGETS = frozenset(get_args(OutputMediaTarget))
USER_DATA_MAX_BYTES = 512  # ICE's limit on UserData

# The shapes below are the API's own description: the parsers take their field names from
# them, the serialisers their keys, and app/openapi.py turns them into JSON Schema. A type
# names a value's JSON form (a UUID or datetime is a string in that format). Request bodies
# are closed: the parsers refuse a field they do not name.
CLOSED = ConfigDict(extra="forbid")

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


@dataclass(frozen=True)
class Submission:
    """A validated submission: ICE parameters as strings, without UserData, and the client's
    own UserData (icehook adds NotifyAddress when it submits)."""

    kind: JobKind
    parameters: dict[str, str]
    user_data: dict[str, Any]
    project_id: str | None


def parse_json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = jsontext.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python goes
        raise ValidationError(
            "body", "is not valid JSON (NaN and Infinity are not JSON), or is nested too deeply"
        ) from None
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    for name, value in body.items():
        _refuse_unstorable(name, value)
    return body


def _refuse_unstorable(field: str, value: Any) -> None:
    """Refuses text anywhere in ``value`` (keys too) that PostgreSQL cannot hold though
    JSON can escape it (``db.storable``); walks without recursion, however deep."""
    pending = [field, value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not db.storable(item):
                raise ValidationError(field, "holds NUL or an unpaired surrogate, not kept")
        elif isinstance(item, dict):
            pending += item.keys()
            pending += item.values()
        elif isinstance(item, list):
            pending += item


def parse_job(body: Mapping[str, Any]) -> Submission:
    """A ``SubmitMediaProducingJob`` body (ICE's parameter names)."""
    _refuse_unknown(body, JobSubmission)
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
    _refuse_unknown(body, BatchSubmission)
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


def _refuse_unknown(body: Mapping[str, Any], shape: type[Any]) -> None:
    """Refuses a field that ``shape`` (a TypedDict of a request body) does not name."""
    known = shape.__annotations__
    for name in body:
        if name == "ClientToken":  # an ICE parameter, but icehook's to set
            raise ValidationError("ClientToken", "is set by icehook (from the job's id)")
        if name not in known:
            raise ValidationError(name, f"is not a field here; known: {', '.join(sorted(known))}")


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, "must be a non-empty string")
    return value


def _inner_json(name: str, text: str) -> Any:
    """A parameter given as JSON text, parsed and checked as the body itself is."""
    try:
        value = jsontext.loads(text)
    except (ValueError, RecursionError):
        raise ValidationError(name, "is a string but not valid JSON") from None
    _refuse_unstorable(name, value)
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


def user_data_text(user_data: Mapping[str, Any], notify_address: str) -> str:
    """The UserData icehook sends: the client's keys plus NotifyAddress, within ICE's 512 bytes."""
    merged = json.dumps(
        {**user_data, "NotifyAddress": notify_address}, ensure_ascii=False, separators=(",", ":")
    )
    size = len(merged.encode())
    if size > USER_DATA_MAX_BYTES:
        own = len(json.dumps(dict(user_data), ensure_ascii=False, separators=(",", ":")).encode())
        allowed = USER_DATA_MAX_BYTES - (size - own)
        raise ValidationError(
            "UserData",
            f"is {own} bytes; with the NotifyAddress icehook adds, ICE's 512-byte limit "
            f"leaves {allowed} bytes for your own data",
        )
    return merged


# -- resources ------------------------------------------------------------------------------


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


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _resource(shape: type[Any], row: Mapping[Any, Any]) -> dict[str, Any]:
    """The keys of ``shape`` (a TypedDict), from ``row``, in their JSON form."""
    return {name: _plain(row[name]) for name in shape.__annotations__}


def job_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return _resource(Job, row)


def event_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return _resource(Event, row)


# -- list queries ---------------------------------------------------------------------------

PAGE_MAX = 200


class PageParameters(TypedDict, total=False):
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX, description="items per page (default 50)")]
    cursor: Annotated[str, Field(description="the next_cursor of the previous page")]


class JobFilters(PageParameters, total=False):
    """``GET /v1/jobs``'s query parameters."""

    status: JobStatus
    ice_job_id: str
    project_id: str
    batch_id: uuid.UUID
    created_after: Annotated[datetime, Field(description="inclusive")]
    created_before: Annotated[datetime, Field(description="exclusive")]


@dataclass(frozen=True)
class JobQuery:
    status: JobStatus | None = None
    ice_job_id: str | None = None
    project_id: str | None = None
    batch_id: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = 50
    cursor: tuple[datetime, uuid.UUID] | None = None


def parse_job_query(params: Mapping[str, str]) -> JobQuery:
    _refuse_unknown_filters(params, JobFilters, "/v1/jobs")
    return JobQuery(
        status=_choice(params, "status", JobStatus),
        ice_job_id=params.get("ice_job_id") or None,
        project_id=params.get("project_id") or None,
        batch_id=_uuid(params, "batch_id"),
        created_after=_time(params, "created_after"),
        created_before=_time(params, "created_before"),
        limit=_limit(params.get("limit")),
        cursor=decode_cursor(params["cursor"]) if params.get("cursor") else None,
    )


def _refuse_unknown_filters(params: Mapping[str, str], filters: type[Any], path: str) -> None:
    """Refuses a parameter that ``filters`` (a TypedDict of query parameters) does not name,
    and a value that PostgreSQL cannot hold."""
    for name, value in params.items():
        if name not in filters.__annotations__:
            raise ValidationError(name, f"is not a filter of {path}")
        _refuse_unstorable(name, value)


Choice = TypeVar("Choice", bound=enum.StrEnum)


def _choice(params: Mapping[str, str], name: str, choices: type[Choice]) -> Choice | None:
    value = params.get(name)
    if value is None:
        return None
    if value not in set(choices):
        raise ValidationError(name, f"must be one of {', '.join(choices)}")
    return choices(value)


def _uuid(params: Mapping[str, str], name: str) -> uuid.UUID | None:
    if not params.get(name):
        return None
    try:
        return uuid.UUID(params[name])
    except ValueError:
        raise ValidationError(name, "is not an id (a UUID)") from None


def _time(params: Mapping[str, Any], name: str) -> datetime | None:
    if not params.get(name):
        return None
    if not isinstance(params[name], str):
        raise ValidationError(name, "must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z")
    try:
        moment = datetime.fromisoformat(params[name])
    except ValueError:
        raise ValidationError(name, "must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        raise ValidationError(name, "must carry a time zone, e.g. Z or +08:00")
    if not _in_range(moment):
        raise ValidationError(name, "is out of range")
    return moment


def _in_range(moment: datetime) -> bool:
    """Whether ``moment`` exists in UTC (the database's form): 0001-01-01T00:00+01:00 does
    not."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True


def _limit(raw: str | None) -> int:
    if raw is None:
        return 50
    limit = numbers.natural(raw, PAGE_MAX)
    if limit is None or limit < 1:
        raise ValidationError("limit", f"must be a whole number from 1 to {PAGE_MAX}")
    return limit


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{job_id}".encode()).decode()


def decode_cursor(raw: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, job_id = base64.urlsafe_b64decode(raw.encode()).decode().split("|")
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None or not _in_range(moment):
            raise ValueError
        return moment, uuid.UUID(job_id)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "is not a cursor this API gave out") from None


# -- subscriptions and deliveries -----------------------------------------------------------

URL_MAX = 2048
DESCRIPTION_MAX = 1000

EventType = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(EVENT_TYPES)})]
EventPattern = Annotated[
    str,
    WithJsonSchema({"type": "string", "enum": sorted(PATTERNS)}),
    Field(description="an event type, or a pattern: job.*, batch.*, *"),
]
WebhookUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=URL_MAX,
        json_schema_extra={"format": "uri"},
        description="http:// or https://, without credentials or #fragment",
    ),
]


EventPatterns = Annotated[list[EventPattern], Field(min_length=1)]


class _SubscriptionSettings(TypedDict, total=False):
    description: Annotated[str, Field(max_length=DESCRIPTION_MAX)]
    enabled: bool


@with_config(CLOSED)
class NewSubscription(_SubscriptionSettings, total=False):
    """``POST /v1/subscriptions``."""

    url: Required[WebhookUrl]
    event_types: Required[EventPatterns]


@with_config(CLOSED)
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


class Attempt(TypedDict):
    attempted_at: datetime
    status_code: int | None
    latency_ms: float | None
    error: str | None
    response_excerpt: Annotated[str | None, Field(description="the first KiB of the response")]


class DeliveryDetail(Delivery):
    attempt_log: list[Attempt]


def parse_subscription(body: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """A subscription's columns from a POST (``url`` and ``event_types`` required) or a PATCH
    (``partial``: only what is given)."""
    _refuse_unknown(body, SubscriptionChange)
    if not partial:
        for name in required_keys(NewSubscription):
            if name not in body:
                raise ValidationError(name, "is required")
    values: dict[str, Any] = {}
    if "url" in body:
        values["url"] = _webhook_url(body["url"])
    if "event_types" in body:
        values["event_types"] = _event_types(body["event_types"])
    if "description" in body:
        description = body["description"]
        if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
            raise ValidationError("description", f"must be a string of at most {DESCRIPTION_MAX}")
        values["description"] = description
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise ValidationError("enabled", "must be true or false")
        values["enabled"] = body["enabled"]
    return values


def required_keys(shape: type[Any]) -> list[str]:
    """The keys ``shape`` (a TypedDict) requires. (``__required_keys__`` cannot tell while
    annotations are strings, as in this module.)"""
    hints = get_type_hints(shape, include_extras=True)
    return [
        name
        for name, hint in hints.items()
        if get_origin(hint) is Required or (shape.__total__ and get_origin(hint) is not NotRequired)
    ]


def _webhook_url(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= URL_MAX:
        raise ValidationError("url", f"must be a URL of at most {URL_MAX} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ValidationError("url", "must not hold spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        raise ValidationError("url", "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("url", "must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("url", "must not carry credentials; the signature authenticates")
    if parts.fragment:
        raise ValidationError("url", "must not have a #fragment")
    return value


def _event_types(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValidationError("event_types", "must be a non-empty list of event types")
    for pattern in value:
        if pattern not in PATTERNS:
            raise ValidationError(
                "event_types",
                f"{pattern!r} is not an event type; use one of {', '.join(sorted(PATTERNS))}",
            )
    return list(dict.fromkeys(value))


@with_config(CLOSED)
class Replay(TypedDict, total=False):
    """The period whose recorded events are sent again (``until`` open: up to now)."""

    since: Required[datetime]
    until: datetime


class Replayed(TypedDict):
    replayed: Annotated[int, Field(description="how many events were queued for sending")]


def parse_replay(body: Mapping[str, Any]) -> tuple[datetime, datetime | None]:
    """``since`` (required) and ``until`` of a replay."""
    _refuse_unknown(body, Replay)
    since = _time(body, "since")
    if since is None:
        raise ValidationError("since", "is required (an ISO 8601 time)")
    until = _time(body, "until")
    if until is not None and until <= since:
        raise ValidationError("until", "must be after since")
    return since, until


def subscription_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return _resource(Subscription, row) | {"event_types": list(row["event_types"])}


def delivery_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return _resource(Delivery, row)


def attempt_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return _resource(Attempt, row)


class DeliveryFilters(PageParameters, total=False):
    """``GET /v1/deliveries``' query parameters."""

    status: DeliveryStatus
    subscription_id: uuid.UUID
    job_id: uuid.UUID
    event_type: EventType


@dataclass(frozen=True)
class DeliveryQuery:
    status: DeliveryStatus | None = None
    subscription_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = None
    event_type: str | None = None
    limit: int = 50
    before_id: int | None = None  # the cursor: deliveries older than this one


def parse_delivery_query(params: Mapping[str, str]) -> DeliveryQuery:
    _refuse_unknown_filters(params, DeliveryFilters, "/v1/deliveries")
    event_type = params.get("event_type") or None
    if event_type is not None and event_type not in EVENT_TYPES:
        raise ValidationError("event_type", "is not an event type (e.g. job.succeeded)")
    cursor = params.get("cursor")
    return DeliveryQuery(
        status=_choice(params, "status", DeliveryStatus),
        subscription_id=_uuid(params, "subscription_id"),
        job_id=_uuid(params, "job_id"),
        event_type=event_type,
        limit=_limit(params.get("limit")),
        before_id=_decode_id_cursor(cursor) if cursor else None,
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
    return _resource(Callback, row)


class CallbackFilters(PageParameters, total=False):
    """``GET /v1/callbacks``' query parameters."""

    outcome: CallbackOutcome
    job_id: uuid.UUID
    received_after: Annotated[datetime, Field(description="inclusive")]
    received_before: Annotated[datetime, Field(description="exclusive")]


@dataclass(frozen=True)
class CallbackQuery:
    outcome: CallbackOutcome | None = None
    job_id: uuid.UUID | None = None
    received_after: datetime | None = None
    received_before: datetime | None = None
    limit: int = 50
    before_id: int | None = None  # the cursor: callbacks older than this one


def parse_callback_query(params: Mapping[str, str]) -> CallbackQuery:
    _refuse_unknown_filters(params, CallbackFilters, "/v1/callbacks")
    cursor = params.get("cursor")
    return CallbackQuery(
        outcome=_choice(params, "outcome", CallbackOutcome),
        job_id=_uuid(params, "job_id"),
        received_after=_time(params, "received_after"),
        received_before=_time(params, "received_before"),
        limit=_limit(params.get("limit")),
        before_id=_decode_id_cursor(cursor) if cursor else None,
    )


def encode_id_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id|{last_id}".encode()).decode()


def _decode_id_cursor(raw: str) -> int:
    try:
        tag, value = base64.urlsafe_b64decode(raw.encode()).decode().split("|")
        last_id = numbers.natural(value)
        if tag != "id" or last_id is None:
            raise ValueError
        return last_id
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "is not a cursor this API gave out") from None


# -- whole answers --------------------------------------------------------------------------


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


class CallbackPage(TypedDict):
    items: list[Callback]
    next_cursor: str | None


class DeliveryPage(TypedDict):
    items: list[Delivery]
    next_cursor: str | None


class Subscriptions(TypedDict):
    items: list[Subscription]


class WebhookEvent(TypedDict):
    """What a subscriber receives (Standard Webhooks: webhook-id, webhook-timestamp,
    webhook-signature headers)."""

    type: EventType
    timestamp: datetime
    data: Job


class Health(TypedDict):
    status: Literal["ok"]


class Readiness(TypedDict):
    status: Literal["ready", "not ready"]
    schema: NotRequired[Annotated[str, Field(description="the migration revision")]]
    reason: NotRequired[str]


class ErrorDetail(TypedDict):
    code: str
    message: str
    field: NotRequired[Annotated[str, Field(description="the parameter at fault")]]
    job: NotRequired[Annotated[Job, Field(description="the job ICE refused (kept, rejected)")]]
    ice_code: NotRequired[str]
    ice_message: NotRequired[str]
    ice_request_id: NotRequired[str]


class Error(TypedDict):
    """Every error: a code to branch on and a message for people."""

    error: ErrorDetail
