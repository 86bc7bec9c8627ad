"""What the audit lists can be asked for: filters, a page size and a position (the cursor).

Lists are newest first. A position is the sort key of the last item of the previous page
(a job's creation time and id; a callback's or a delivery's id), so pages stay correct while
new rows arrive: they sort before it. The events (``EventQuery``) are oldest first instead,
so that a consumer reads on from its position as new ones arrive after it.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.core.statuses import CallbackOutcome, DeliveryStatus, JobStatus

PAGE_DEFAULT = 50
PAGE_MAX = 200


@dataclass(frozen=True)
class JobQuery:
    # ``q``: an icehook id, an ICE JobId or a project id (``search_terms`` turns a
    # ``key=value`` into a ``user_data`` filter).
    text: str | None = None
    # Each (key, value) must match: UserData's ``key`` is the string ``value``, or a number
    # equal to it (``user_data_values``).
    user_data: tuple[tuple[str, str], ...] = ()
    status: JobStatus | None = None
    ice_job_id: str | None = None
    project_id: str | None = None
    batch_id: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = PAGE_DEFAULT
    cursor: tuple[datetime, uuid.UUID] | None = None  # after this job's created_at and id


@dataclass(frozen=True)
class CallbackQuery:
    outcome: CallbackOutcome | None = None
    job_id: uuid.UUID | None = None
    received_after: datetime | None = None
    received_before: datetime | None = None
    limit: int = PAGE_DEFAULT
    before_id: int | None = None  # the cursor: callbacks older than this one


@dataclass(frozen=True)
class DeliveryQuery:
    status: DeliveryStatus | None = None
    subscription_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = None
    event_type: str | None = None
    limit: int = PAGE_DEFAULT
    before_id: int | None = None  # the cursor: deliveries older than this one


@dataclass(frozen=True)
class EventQuery:
    # Event types or patterns (``core.events.PATTERNS``); an event matching any is listed.
    types: tuple[str, ...] = ()
    job_id: uuid.UUID | None = None
    limit: int = PAGE_DEFAULT
    after_id: int = 0  # the cursor: events recorded after this one


def search_terms(q: str) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """The search box's text as (text, user_data filters): ``key=value`` is a UserData
    filter; anything else is text naming a job or a project."""
    key, equals, value = q.partition("=")
    if equals and key.strip() and value.strip():
        return None, ((key.strip(), value.strip()),)
    return q.strip(), ()


def user_data_values(raw: str) -> list[Any]:
    """What a UserData filter's value matches: the string itself, and the number it spells
    (``42`` matches ``"42"`` and ``42``; ``4.50`` matches ``4.5``)."""
    matches: list[Any] = [raw]
    try:
        number = json.loads(raw)
    except ValueError:
        return matches
    if type(number) is int or (type(number) is float and math.isfinite(number)):
        matches.append(number)
    return matches
