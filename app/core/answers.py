"""ICE's word on a job, as the rules read it: the answers of Submit*, Get* and List*.

``parse`` takes ICE's own JSON object (as the ICE client received it, or a callback
carried it) and keeps it whole in ``raw``; every field icehook reads is named here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class SubmittedJob:
    job_id: str
    request_id: str
    project_id: str | None = None
    media_id: str | None = None


@dataclass(frozen=True)
class MediaProducingJob:
    """One ``MediaProducingJob`` as ``Get``/``List`` describe it, or one entry of a batch's
    ``SubJobList`` (a sub-job is a media-producing job too); ``raw`` is ICE's own object."""

    job_id: str
    status: str
    project_id: str | None
    media_id: str | None
    media_url: str | None
    code: str | None
    message: str | None
    user_data: str | None
    raw: Mapping[str, Any]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> MediaProducingJob:
        return cls(
            job_id=str(raw.get("JobId", "")),
            status=str(raw.get("Status", "")),
            project_id=text_field(raw, "ProjectId"),
            media_id=text_field(raw, "MediaId"),
            media_url=text_field(raw, "MediaURL"),
            # Get/List say Code/Message; a SubJobList entry says ErrorCode/ErrorMessage.
            code=text_field(raw, "Code") or text_field(raw, "ErrorCode"),
            message=text_field(raw, "Message") or text_field(raw, "ErrorMessage"),
            user_data=text_field(raw, "UserData"),
            raw=raw,
        )


@dataclass(frozen=True)
class BatchJob:
    """One ``EditingBatchJob``; ``sub_jobs`` is empty in ``List`` answers (ICE omits it)."""

    job_id: str
    status: str
    job_type: str | None
    user_data: str | None
    code: str | None
    message: str | None
    sub_jobs: tuple[MediaProducingJob, ...]
    raw: Mapping[str, Any]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> BatchJob:
        # ICE puts the batch's own error in a JSON string, `Extend`.
        extend = _json_object(raw.get("Extend"))
        return cls(
            job_id=str(raw.get("JobId", "")),
            status=str(raw.get("Status", "")),
            job_type=text_field(raw, "JobType"),
            user_data=text_field(raw, "UserData"),
            code=text_field(extend, "ErrorCode"),
            message=text_field(extend, "ErrorMessage"),
            sub_jobs=tuple(MediaProducingJob.parse(sub) for sub in raw.get("SubJobList") or ()),
            raw=raw,
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_token: str | None


Answer = MediaProducingJob | BatchJob


def text_field(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return None if value is None or value == "" else str(value)


def _json_object(value: object) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}
