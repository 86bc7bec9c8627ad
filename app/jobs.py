"""The job state machine.

``record_statuses`` (``record_status`` for one job) is the only writer of a job's status.
It moves jobs forward only, writes each job's row, its event, its outbox message and that
message's deliveries (one per subscription that wants it, ``outbox.fan_out``) together,
with two statements for any number of jobs, and never commits: the caller's transaction
(opened at an edge: an HTTP handler or one worker step) commits all of them or none. The
caller holds the jobs' row locks (``lock_job``), so two observations of one job never
interleave.

::

    submitting -> submitted -> queuing -> processing -> succeeded | failed
    submitting -> rejected
    batch: submitting -> submitted -> processing -> finished | failed | rejected
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from app import db
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


@dataclass(frozen=True)
class Move:
    """An observation to record: ``job`` (its row, locked by the caller) to ``status``, with
    ``changes`` to its columns (``CHANGEABLE``) and ``payload``, what was observed."""

    job: RowMapping
    status: JobStatus
    source: EventSource
    payload: Mapping[str, Any] | None
    changes: Mapping[str, Any] = field(default_factory=dict)


CHANGEABLE = frozenset(
    {
        "ice_status",
        "ice_job_id",
        "project_id",
        "media_id",
        "media_url",
        "error_code",
        "error_message",
        "parameters",
    }
)

# Each moved job's columns as they become (``parameters``: JSON text, or NULL to keep them).
MOVED = db.RowsParameter(
    "moved",
    {
        "id": UUID(as_uuid=True),
        "status": sa.Text(),
        "final": sa.Boolean(),
        **{name: sa.Text() for name in sorted(CHANGEABLE)},
    },
)
MOVE_JOBS = (
    sa.update(jobs)
    .where(jobs.c.id == MOVED.table.c.id)
    .values(
        {name: MOVED.table.c[name] for name in sorted(CHANGEABLE - {"parameters"})}
        | {
            "status": MOVED.table.c.status,
            "parameters": sa.func.coalesce(
                sa.cast(MOVED.table.c.parameters, JSONB), jobs.c.parameters
            ),
            "updated_at": sa.func.now(),
            "completed_at": sa.case(
                (MOVED.table.c.final, sa.func.now()), else_=jobs.c.completed_at
            ),
            "check_at": sa.case((MOVED.table.c.final, sa.null()), else_=jobs.c.check_at),
        }
    )
    .returning(*jobs.c)
)

# Each transition's event and its outbox message (JSON as text).
EVENTS = db.RowsParameter(
    "events",
    {
        "job_id": UUID(as_uuid=True),
        "from_status": sa.Text(),
        "to_status": sa.Text(),
        "source": sa.Text(),
        "payload": sa.Text(),
        "event_id": sa.Text(),
        "event_type": sa.Text(),
        "message": sa.Text(),
    },
)


def _record_events_statement() -> sa.Select[Any]:
    """The events, their outbox messages and the messages' deliveries, in one statement."""
    moved = sa.select(EVENTS.table).cte("moved")
    event = (
        sa.insert(job_events)
        .from_select(
            ["job_id", "from_status", "to_status", "source", "payload"],
            sa.select(
                moved.c.job_id,
                moved.c.from_status,
                moved.c.to_status,
                moved.c.source,
                sa.cast(moved.c.payload, JSONB),
            ),
        )
        .returning(job_events.c.id, job_events.c.job_id)
        .cte("event")
    )
    message = (
        sa.insert(outbox)
        .from_select(
            ["event_id", "job_id", "job_event_id", "event_type", "payload"],
            sa.select(
                moved.c.event_id,
                moved.c.job_id,
                event.c.id,
                moved.c.event_type,
                sa.cast(moved.c.message, JSONB),
            ).join(event, event.c.job_id == moved.c.job_id),
        )
        .returning(outbox.c.id, outbox.c.job_id, outbox.c.event_type)
        .cte("message")
    )
    return fan_out(message)


RECORD_EVENTS = _record_events_statement()


async def record_statuses(session: AsyncSession, moves: Sequence[Move]) -> list[RowMapping | None]:
    """Record the ``moves`` that go forward; returns the updated row of each one's job, or
    None where it would not go forward: then nothing is written for it at all (the raw
    observation is kept by whoever made it). Of two moves of one job, the one to the
    further status is recorded.

    Two statements whatever the number of moves: the jobs' rows, then their events,
    outbox messages and deliveries.
    """
    furthest: dict[uuid.UUID, Move] = {}
    for m in moves:  # two observations of one job at once: the one that went further counts
        seen = furthest.get(m.job["id"])
        if seen is None or RANK[m.status] > RANK[seen.status]:
            furthest[m.job["id"]] = m
    forward = [m for m in furthest.values() if moves_forward(JobStatus(m.job["status"]), m.status)]
    if not forward:
        return [None] * len(moves)
    unknown = set().union(*(m.changes for m in forward)) - CHANGEABLE
    if unknown:
        raise ValueError(f"not changeable by a move: {sorted(unknown)}")
    moved = await session.execute(MOVE_JOBS, MOVED.bind([_moved(m) for m in forward]))
    rows = {row["id"]: row for row in moved.mappings()}
    await session.execute(
        RECORD_EVENTS, EVENTS.bind([_event(m, rows[m.job["id"]]) for m in forward])
    )
    return [rows.get(m.job["id"]) for m in moves]


async def record_status(
    session: AsyncSession,
    job: RowMapping,
    to_status: JobStatus,
    *,
    source: EventSource,
    payload: Mapping[str, Any] | None,
    changes: Mapping[str, Any] | None = None,
) -> RowMapping | None:
    """``record_statuses`` for one job."""
    (row,) = await record_statuses(session, [Move(job, to_status, source, payload, changes or {})])
    return row


def _moved(move: Move) -> dict[str, Any]:
    parameters = move.changes.get("parameters")
    return {
        "id": move.job["id"],
        "status": move.status.value,
        "final": move.status in TERMINAL_STATUSES,
        **{name: move.changes.get(name, move.job[name]) for name in CHANGEABLE - {"parameters"}},
        "parameters": json.dumps(parameters) if parameters is not None else None,  # None: kept
    }


def _event(move: Move, row: RowMapping) -> dict[str, Any]:
    kind = JobKind(row["kind"])
    type_ = event_type(kind, move.status)
    return {
        "job_id": row["id"],
        "from_status": JobStatus(move.job["status"]).value,
        "to_status": move.status.value,
        "source": move.source.value,
        "payload": json.dumps(dict(move.payload)) if move.payload is not None else None,
        "event_id": f"msg_{uuid.uuid4().hex}",
        "event_type": type_,
        # The message's timestamp is the job's updated_at: now(), this transaction's time.
        "message": json.dumps(
            {"type": type_, "timestamp": row["updated_at"].isoformat(), "data": job_resource(row)}
        ),
    }
