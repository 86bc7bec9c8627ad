"""The events subscribers receive: their types, the patterns that select them, and their body.

Every transition of a job is one event, ``{kind}.{status}`` (``job.succeeded``,
``batch.failed``...), whose body is ``{"type", "timestamp", "data": <the job resource>}``.
Operational events tell of a subscription: ``subscription.disabled`` (by icehook, after a
410 or failing too long, or through the API) and ``subscription.enabled``, with the
subscription (without its secrets or headers) as ``data``.
A subscription's ``event_types`` hold event types or patterns: ``job.*``, ``batch.*``,
``subscription.*``, and ``*``, every job and batch event (operational events go only to
subscriptions that name them: a receiver written for jobs never meets them by surprise).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from app.core.statuses import JobKind, JobStatus

JOB_EVENT_TYPES = (
    "job.submitted",
    "job.queuing",
    "job.processing",
    "job.succeeded",
    "job.failed",
    "job.rejected",
    "batch.submitted",
    "batch.processing",
    "batch.finished",
    "batch.failed",
    "batch.rejected",
    "batch.abandoned",
)
SUBSCRIPTION_DISABLED = "subscription.disabled"
SUBSCRIPTION_ENABLED = "subscription.enabled"
OPERATIONAL_EVENT_TYPES = (SUBSCRIPTION_DISABLED, SUBSCRIPTION_ENABLED)
EVENT_TYPES = (*JOB_EVENT_TYPES, *OPERATIONAL_EVENT_TYPES)


# What a subscription's ``event_types`` may hold: a type, every type of a kind, or all.
PATTERNS = frozenset(
    {*EVENT_TYPES, *(f"{kind.value}.*" for kind in JobKind), "subscription.*", "*"}
)

# What an operational event tells of its subscription (of its URL only the host: a path or
# query may carry the receiver's token, and these events go to other receivers).
SUBSCRIPTION_FIELDS = (
    "id",
    "description",
    "event_types",
    "enabled",
    "disabled_reason",
    "disabled_at",
    "queue_until",
)


# The job resource: the fields of a job the API shows and every webhook carries.
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
    "fate_unknown_since",
    "sub_jobs_succeeded",
    "sub_jobs_failed",
)


def event_type(kind: JobKind, status: JobStatus) -> str:
    return f"{kind.value}.{status.value}"


def plain(value: Any) -> Any:
    """``value`` in its JSON form: a time in ISO 8601, an id as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def job_resource(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The job resource of a ``jobs`` row."""
    return {name: plain(row[name]) for name in JOB_FIELDS}


def webhook_body(event: str, row: Mapping[Any, Any]) -> dict[str, Any]:
    """What subscribers receive for ``event`` of the job ``row`` (as it is after the
    transition): its time is the job's ``updated_at``, the transition's own."""
    return {"type": event, "timestamp": row["updated_at"].isoformat(), "data": job_resource(row)}


def new_event_id() -> str:
    """A new event's id: its webhooks' ``webhook-id``, the same on every retry."""
    return f"msg_{uuid.uuid4().hex}"


def subscription_event_body(event: str, row: Mapping[Any, Any]) -> dict[str, Any]:
    """What subscribers receive for the operational ``event`` about the subscription ``row``
    (as it is after the change): its time is the subscription's ``updated_at``."""
    data = {name: plain(row[name]) for name in SUBSCRIPTION_FIELDS}
    data["host"] = urlsplit(row["url"]).hostname
    data["event_types"] = list(row["event_types"])
    return {"type": event, "timestamp": row["updated_at"].isoformat(), "data": data}
