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
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from app.errors import ValidationError
from app.models import CallbackOutcome, DeliveryStatus, JobKind, JobStatus
from app.outbox import EVENT_TYPES, PATTERNS

# SubmitMediaProducingJob's parameters whose values are JSON documents.
JOB_JSON_PARAMETERS = frozenset(
    {
        "Timeline",
        "ClipsParam",
        "OutputMediaConfig",
        "ProjectMetadata",
        "EditingProduceConfig",
        "MediaMetadata",
    }
)
JOB_TEXT_PARAMETERS = frozenset({"ProjectId", "TemplateId", "OutputMediaTarget", "Source"})
OUTPUT_MEDIA_TARGETS = frozenset({"oss-object", "vod-media", "S3"})
USER_DATA_MAX_BYTES = 512  # ICE's limit on UserData


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
        body = json.loads(raw)
    except ValueError:
        raise ValidationError("body", "is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    return body


def parse_job(body: Mapping[str, Any]) -> Submission:
    """A ``SubmitMediaProducingJob`` body (ICE's parameter names)."""
    _refuse_unknown(body, JOB_JSON_PARAMETERS | JOB_TEXT_PARAMETERS | {"UserData"})
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
    _refuse_unknown(body, {"ProjectIds", "OutputConfig", "UserData"})
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


def _refuse_unknown(body: Mapping[str, Any], known: frozenset[str] | set[str]) -> None:
    for name in body:
        if name == "ClientToken":
            raise ValidationError("ClientToken", "is set by icehook (from the job's id)")
        if name not in known:
            raise ValidationError(
                name, f"is not a parameter here; known: {', '.join(sorted(known))}"
            )


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, "must be a non-empty string")
    return value


def _json_text(body: Mapping[str, Any], name: str) -> str:
    """A JSON-valued parameter, given as an object/array or as a JSON string; ICE wants text."""
    value = body[name]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValidationError(name, "is a string but not valid JSON") from None
    if not isinstance(value, dict | list):
        raise ValidationError(name, "must be a JSON object (or its JSON text)")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _user_data(body: Mapping[str, Any]) -> dict[str, Any]:
    if "UserData" not in body or body["UserData"] is None:
        return {}
    value = body["UserData"]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValidationError("UserData", "is a string but not valid JSON") from None
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

JOB_FIELDS = (
    "id",
    "ice_job_id",
    "kind",
    "status",
    "ice_status",
    "project_id",
    "media_id",
    "media_url",
    "error_code",
    "error_message",
    "user_data",
    "batch_id",
    "created_at",
    "updated_at",
    "completed_at",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def job_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {name: _plain(row[name]) for name in JOB_FIELDS}


def event_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        name: _plain(row[name])
        for name in ("id", "from_status", "to_status", "source", "payload", "created_at")
    }


# -- list queries ---------------------------------------------------------------------------


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
    _refuse_unknown_filters(
        params,
        {"status", "ice_job_id", "project_id", "batch_id", "created_after", "created_before"},
        "/v1/jobs",
    )
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


def _refuse_unknown_filters(params: Mapping[str, str], known: set[str], path: str) -> None:
    for name in params:
        if name not in known | {"limit", "cursor"}:
            raise ValidationError(name, f"is not a filter of {path}")


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
    return moment


def _limit(raw: str | None) -> int:
    if raw is None:
        return 50
    if not raw.isdigit() or not 1 <= int(raw) <= 200:
        raise ValidationError("limit", "must be a whole number from 1 to 200")
    return int(raw)


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{job_id}".encode()).decode()


def decode_cursor(raw: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, job_id = base64.urlsafe_b64decode(raw.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(job_id)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "is not a cursor this API gave out") from None


# -- subscriptions and deliveries -----------------------------------------------------------

URL_MAX = 2048
DESCRIPTION_MAX = 1000
SUBSCRIPTION_FIELDS = (
    "id",
    "url",
    "event_types",
    "description",
    "enabled",
    "disabled_reason",
    "failing_since",
    "created_at",
    "updated_at",
)
DELIVERY_FIELDS = (
    "id",
    "event_id",
    "subscription_id",
    "job_id",
    "event_type",
    "status",
    "attempts",
    "next_attempt_at",
    "last_status_code",
    "last_error",
    "created_at",
    "delivered_at",
)
ATTEMPT_FIELDS = ("attempted_at", "status_code", "latency_ms", "error", "response_excerpt")


def parse_subscription(body: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """A subscription's columns from a POST (``url`` and ``event_types`` required) or a PATCH
    (``partial``: only what is given)."""
    known = {"url", "event_types", "description", "enabled"}
    for name in body:
        if name not in known:
            raise ValidationError(name, f"is not a field; known: {', '.join(sorted(known))}")
    if not partial:
        for name in ("url", "event_types"):
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


def _webhook_url(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= URL_MAX:
        raise ValidationError("url", f"must be a URL of at most {URL_MAX} characters")
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


def parse_replay(body: Mapping[str, Any]) -> tuple[datetime, datetime | None]:
    """``since`` (required) and ``until`` of a replay."""
    for name in body:
        if name not in ("since", "until"):
            raise ValidationError(name, "is not a field; known: since, until")
    since = _time(body, "since")
    if since is None:
        raise ValidationError("since", "is required (an ISO 8601 time)")
    until = _time(body, "until")
    if until is not None and until <= since:
        raise ValidationError("until", "must be after since")
    return since, until


def subscription_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    resource = {name: _plain(row[name]) for name in SUBSCRIPTION_FIELDS}
    resource["event_types"] = list(row["event_types"])
    return resource


def delivery_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {name: _plain(row[name]) for name in DELIVERY_FIELDS}


def attempt_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {name: _plain(row[name]) for name in ATTEMPT_FIELDS}


@dataclass(frozen=True)
class DeliveryQuery:
    status: DeliveryStatus | None = None
    subscription_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = None
    event_type: str | None = None
    limit: int = 50
    before_id: int | None = None  # the cursor: deliveries older than this one


def parse_delivery_query(params: Mapping[str, str]) -> DeliveryQuery:
    _refuse_unknown_filters(
        params, {"status", "subscription_id", "job_id", "event_type"}, "/v1/deliveries"
    )
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


# A received callback as the audit shows it: how it was judged, not its body (whose UserData
# holds the callback token).
CALLBACK_FIELDS = (
    "id",
    "job_id",
    "received_at",
    "processed_at",
    "event_type",
    "ice_job_id",
    "ice_status",
    "outcome",
    "detail",
    "peer",
)


def callback_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {name: _plain(row[name]) for name in CALLBACK_FIELDS}


@dataclass(frozen=True)
class CallbackQuery:
    outcome: CallbackOutcome | None = None
    job_id: uuid.UUID | None = None
    received_after: datetime | None = None
    received_before: datetime | None = None
    limit: int = 50
    before_id: int | None = None  # the cursor: callbacks older than this one


def parse_callback_query(params: Mapping[str, str]) -> CallbackQuery:
    _refuse_unknown_filters(
        params, {"outcome", "job_id", "received_after", "received_before"}, "/v1/callbacks"
    )
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
        if tag != "id" or not value.isdigit():
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "is not a cursor this API gave out") from None
