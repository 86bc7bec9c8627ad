"""What the audit lists can be asked for: filters, a page size and a position (the cursor).

Lists are newest first. A position is the sort key of the last item of the previous page
(a job's creation time and id; a callback's or a delivery's id), so pages stay correct while
new rows arrive: they sort before it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from app.core.statuses import CallbackOutcome, DeliveryStatus, JobStatus

PAGE_DEFAULT = 50
PAGE_MAX = 200


@dataclass(frozen=True)
class JobQuery:
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
