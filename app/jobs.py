"""The job state machine.

``record_status`` is the only writer of a job's status. It moves a job forward only, writes
the job row, its event, its outbox message and that message's deliveries (one per
subscription that wants it, ``outbox.fan_out``) together, and never commits: the caller's
transaction (opened at an edge: an HTTP handler or one worker step) commits all of them or
none. The caller holds the job's row lock (``lock_job``), so two observations of one job
never interleave.

::

    submitting -> submitted -> queuing -> processing -> succeeded | failed
    submitting -> rejected
    batch: submitting -> submitted -> processing -> finished | failed | rejected
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import TERMINAL_STATUSES, EventSource, JobKind, JobStatus, job_events, jobs, outbox
from app.outbox import fan_out
from app.schemas import job_resource

RANK = {
    JobStatus.SUBMITTING: 0,
    JobStatus.SUBMITTED: 1,
    JobStatus.QUEUING: 2,
    JobStatus.PROCESSING: 3,
    **dict.fromkeys(TERMINAL_STATUSES, 4),
}

# ICE's words, lower-cased. ICE's callbacks may say "Fail" where Get says "Failed".
_JOB_STATUSES = {
    "init": JobStatus.SUBMITTED,
    "queuing": JobStatus.QUEUING,
    "processing": JobStatus.PROCESSING,
    "success": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "fail": JobStatus.FAILED,
}
_BATCH_STATUSES = {
    "init": JobStatus.SUBMITTED,
    "processing": JobStatus.PROCESSING,
    "finished": JobStatus.FINISHED,
    "failed": JobStatus.FAILED,
    "fail": JobStatus.FAILED,
}


def status_from_ice(kind: JobKind, ice_status: str | None) -> JobStatus | None:
    """icehook's status for ICE's word, or None for a word icehook does not know."""
    table = _BATCH_STATUSES if kind == JobKind.BATCH else _JOB_STATUSES
    return table.get((ice_status or "").strip().lower())


def moves_forward(current: JobStatus, new: JobStatus) -> bool:
    """Forward only; terminal statuses are final (so nothing follows them)."""
    return RANK[new] > RANK[current]


def event_type(kind: JobKind, status: JobStatus) -> str:
    return f"{kind.value}.{status.value}"


async def lock_job(session: AsyncSession, job_id: uuid.UUID) -> RowMapping | None:
    """The job row, locked until the caller's transaction ends."""
    result = await session.execute(
        sa.select(jobs).where(jobs.c.id == job_id).with_for_update(key_share=True)
    )
    return result.mappings().one_or_none()


async def record_status(
    session: AsyncSession,
    job: RowMapping,
    to_status: JobStatus,
    *,
    source: EventSource,
    payload: Mapping[str, Any] | None,
    changes: Mapping[str, Any] | None = None,
) -> RowMapping | None:
    """Move ``job`` (locked by the caller) to ``to_status`` with ``changes`` to its columns.

    Returns the updated row, or None when the move would not go forward: then nothing is
    written at all (the raw observation is kept by whoever made it).
    """
    current = JobStatus(job["status"])
    if not moves_forward(current, to_status):
        return None
    values: dict[str, Any] = {**(changes or {}), "status": to_status, "updated_at": sa.func.now()}
    if to_status in TERMINAL_STATUSES:
        values |= {"completed_at": sa.func.now(), "check_at": None}
    row = (
        (
            await session.execute(
                sa.update(jobs).where(jobs.c.id == job["id"]).values(values).returning(*jobs.c)
            )
        )
        .mappings()
        .one()
    )
    # The event, its outbox message and the message's deliveries in one statement. The
    # message's timestamp is the event's created_at: both are now(), this transaction's time.
    kind = JobKind(row["kind"])
    event_type_ = event_type(kind, to_status)
    event = (
        sa.insert(job_events)
        .values(
            job_id=job["id"],
            from_status=current,
            to_status=to_status,
            source=source,
            payload=dict(payload) if payload is not None else None,
        )
        .returning(job_events.c.id)
        .cte("event")
    )
    message = (
        sa.insert(outbox)
        .from_select(
            ["event_id", "job_id", "job_event_id", "event_type", "payload"],
            sa.select(
                sa.literal(f"msg_{uuid.uuid4().hex}", sa.Text),
                sa.literal(job["id"], outbox.c.job_id.type),
                event.c.id,
                sa.literal(event_type_, sa.Text),
                sa.literal(
                    {
                        "type": event_type_,
                        "timestamp": row["updated_at"].isoformat(),
                        "data": job_resource(row),
                    },
                    outbox.c.payload.type,
                ),
            ),
        )
        .returning(outbox.c.id)
        .cte("message")
    )
    await session.execute(fan_out(message, job_id=job["id"], event_type=event_type_))
    return row
