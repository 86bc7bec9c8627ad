"""Jobs and their history: the only writer of a job's status, and the reads of jobs that the
flows make.

``record_statuses`` writes, for the moves that go forward (``core.moves.furthest``), each
job's row, its event, its outbox message and that message's deliveries (one per
subscription that wants it), with two statements for any number of moves, and never
commits: the caller's transaction (opened at an edge: an HTTP handler or one worker step)
commits all of them or none. The caller holds the jobs' row locks (``lock``), so two
observations of one job never interleave; the database refuses a second event for one
status.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.events import event_type, new_event_id, webhook_body
from app.core.judging import Work
from app.core.moves import CHANGEABLE, Move, furthest
from app.core.statuses import TERMINAL_STATUSES, CallbackOutcome, JobKind, JobStatus
from app.store import tables
from app.store.batching import columns
from app.store.fanout import receives
from app.store.notify import DELIVERIES

JOB = tables.jobs
COUNTS = ("sub_jobs_failed", "sub_jobs_succeeded")  # a move's changes, as integer columns
SETTABLE = sorted(CHANGEABLE - {"parameters", *COUNTS})  # a move's changes, as text columns

# Each moved job's row, as it becomes. ``parameters`` is JSON text, or NULL to keep them.
MOVE_JOBS = sa.text(
    f"""
    UPDATE jobs SET
        status = moved.status,
        {", ".join(f"{name} = moved.{name}" for name in (*SETTABLE, *COUNTS))},
        parameters = coalesce(CAST(moved.parameters AS jsonb), jobs.parameters),
        updated_at = now(),
        completed_at = CASE WHEN moved.final THEN now() ELSE jobs.completed_at END,
        check_at = CASE WHEN moved.final THEN NULL ELSE jobs.check_at END,
        fate_unknown_since = NULL
    FROM unnest(
        CAST(:id AS uuid[]), CAST(:status AS text[]), CAST(:final AS boolean[]),
        {", ".join(f"CAST(:{name} AS text[])" for name in SETTABLE)},
        {", ".join(f"CAST(:{name} AS integer[])" for name in COUNTS)},
        CAST(:parameters AS text[])
    ) AS moved(id, status, final, {", ".join((*SETTABLE, *COUNTS))}, parameters)
    WHERE jobs.id = moved.id
    RETURNING jobs.*
    """
)

# Each transition's event, its outbox message, and the message's deliveries to the
# subscriptions that receive it (store.fanout); the delivery workers are woken at commit if
# there is any.
RECORD_EVENTS = sa.text(
    f"""
    WITH moved AS (
        SELECT * FROM unnest(
            CAST(:job_id AS uuid[]), CAST(:from_status AS text[]), CAST(:to_status AS text[]),
            CAST(:source AS text[]), CAST(:payload AS text[]), CAST(:event_id AS text[]),
            CAST(:event_type AS text[]), CAST(:message AS text[]), CAST(:traceparent AS text[])
        ) AS m(job_id, from_status, to_status, source, payload, event_id, event_type, message,
               traceparent)
    ), event AS (
        INSERT INTO job_events (job_id, from_status, to_status, source, payload)
        SELECT job_id, from_status, to_status, source, CAST(payload AS jsonb) FROM moved
        RETURNING id, job_id
    ), message AS (
        INSERT INTO outbox (event_id, job_id, job_event_id, event_type, payload, traceparent)
        SELECT moved.event_id, moved.job_id, event.id, moved.event_type,
               CAST(moved.message AS jsonb), moved.traceparent
        FROM moved JOIN event ON event.job_id = moved.job_id
        RETURNING id, job_id, event_type
    ), fanned AS (
        INSERT INTO deliveries (message_id, subscription_id, job_id, event_type, status)
        SELECT message.id, subscriptions.id, message.job_id, message.event_type, 'pending'
        FROM message JOIN jobs ON jobs.id = message.job_id JOIN subscriptions
          ON {receives(subscription="subscriptions", job="jobs", event="message.event_type")}
        RETURNING id
    )
    SELECT pg_notify('{DELIVERIES}', '') WHERE EXISTS (SELECT FROM fanned)
    """
)


async def record_statuses(session: AsyncSession, moves: Sequence[Move]) -> list[RowMapping | None]:
    """Record the ``moves`` that go forward; returns the updated row of each one's job, or
    None where it would not go forward: then nothing is written for it at all (the raw
    observation is kept by whoever made it). Two statements whatever the number of moves."""
    forward = furthest(moves)
    if not forward:
        return [None] * len(moves)
    moved = await session.execute(MOVE_JOBS, columns([_moved(m) for m in forward]))
    rows = {row["id"]: row for row in moved.mappings()}
    events = [_event(m, rows[m.job["id"]]) for m in forward]
    await session.execute(RECORD_EVENTS, columns(events))
    return [rows.get(m.job["id"]) for m in moves]


async def record_status(session: AsyncSession, move: Move) -> RowMapping | None:
    """``record_statuses`` for one move."""
    (row,) = await record_statuses(session, [move])
    return row


def _moved(move: Move) -> dict[str, Any]:
    parameters = move.changes.get("parameters")
    return {
        "id": move.job["id"],
        "status": move.status.value,
        "final": move.status in TERMINAL_STATUSES,
        **{name: move.changes.get(name, move.job[name]) for name in (*SETTABLE, *COUNTS)},
        "parameters": json.dumps(parameters) if parameters is not None else None,  # None: kept
    }


def _event(move: Move, row: RowMapping) -> dict[str, Any]:
    type_ = event_type(JobKind(row["kind"]), move.status)
    return {
        "job_id": row["id"],
        "from_status": JobStatus(move.job["status"]).value,
        "to_status": move.status.value,
        "source": move.source.value,
        "payload": json.dumps(dict(move.payload)) if move.payload is not None else None,
        "event_id": new_event_id(),
        "event_type": type_,
        "message": json.dumps(webhook_body(type_, row)),
        "traceparent": move.traceparent,
    }


# -- reading and locking ------------------------------------------------------------------------


async def lock(session: AsyncSession, job_id: uuid.UUID) -> RowMapping | None:
    """The job row, locked until the caller's transaction ends."""
    result = await session.execute(
        sa.select(JOB).where(JOB.c.id == job_id).with_for_update(key_share=True)
    )
    return result.mappings().one_or_none()


async def lock_all(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, RowMapping]:
    """The jobs ``ids`` (those that exist), locked, in id order.

    FOR NO KEY UPDATE (``key_share``): callbacks being stored for these jobs (their foreign
    keys take KEY SHARE locks, several jobs in one statement) never wait on it, so holding
    many job locks cannot deadlock with the intake."""
    rows = await session.execute(
        sa.select(JOB).where(JOB.c.id.in_(ids)).order_by(JOB.c.id).with_for_update(key_share=True)
    )
    return {row["id"]: row for row in rows.mappings()}


async def get(session: AsyncSession, job_id: uuid.UUID) -> RowMapping:
    return (await session.execute(sa.select(JOB).where(JOB.c.id == job_id))).mappings().one()


async def get_all(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[RowMapping]:
    return list((await session.execute(sa.select(JOB).where(JOB.c.id.in_(ids)))).mappings())


async def lock_sub_job(
    session: AsyncSession, batch_id: uuid.UUID, ice_job_id: str, project_id: str | None
) -> RowMapping:
    """A batch's sub-job's row, locked; created (``submitting``) the first time it is seen."""
    await session.execute(
        pg_insert(JOB)
        .values(
            id=uuid.uuid4(),
            kind=JobKind.JOB,
            status=JobStatus.SUBMITTING,
            ice_job_id=ice_job_id,
            project_id=project_id,
            batch_id=batch_id,
        )
        .on_conflict_do_nothing(index_elements=[JOB.c.ice_job_id])
    )
    locked = sa.select(JOB).where(JOB.c.ice_job_id == ice_job_id).with_for_update(key_share=True)
    return (await session.execute(locked)).mappings().one()


async def insert_submission(session: AsyncSession, values: Mapping[str, Any]) -> RowMapping | None:
    """A new ``submitting`` job; None if its ``idempotency_key`` is taken."""
    inserted = await session.execute(
        pg_insert(JOB)
        .values(status=JobStatus.SUBMITTING, **values)
        .on_conflict_do_nothing(index_elements=[JOB.c.idempotency_key])
        .returning(*JOB.c)
    )
    return inserted.mappings().one_or_none()


async def by_idempotency_key(session: AsyncSession, key: str | None) -> RowMapping:
    return (
        (await session.execute(sa.select(JOB).where(JOB.c.idempotency_key == key))).mappings().one()
    )


async def work(
    session: AsyncSession, ids: Sequence[uuid.UUID], *, pending: bool = True
) -> list[Work]:
    """The jobs ``ids`` with their statuses by ICE JobId (a batch's with its sub-jobs') and
    (if ``pending``) their pending callbacks, oldest first: what judging reads."""
    rows = await session.execute(
        sa.select(JOB).where(sa.or_(JOB.c.id.in_(ids), JOB.c.batch_id.in_(ids)))
    )
    by_id = {}
    statuses: dict[uuid.UUID, dict[str | None, JobStatus]] = {job_id: {} for job_id in ids}
    for row in rows.mappings():
        owner = row["id"] if row["id"] in statuses else row["batch_id"]
        statuses[owner][row["ice_job_id"]] = JobStatus(row["status"])
        if owner == row["id"]:
            by_id[owner] = row
    callbacks: dict[uuid.UUID, list[RowMapping]] = {job_id: [] for job_id in ids}
    if pending:
        judged = tables.callbacks
        found = await session.execute(
            sa.select(
                judged.c.id,
                judged.c.job_id,
                judged.c.event_type,
                judged.c.ice_job_id,
                judged.c.ice_status,
                judged.c.traceparent,
            )
            .where(
                judged.c.job_id.in_(ids),
                tables.is_literally(judged.c.outcome, CallbackOutcome.PENDING),
            )
            .order_by(judged.c.id)
        )
        for callback in found.mappings():
            callbacks[callback["job_id"]].append(callback)
    return [Work(by_id[job_id], callbacks[job_id], statuses[job_id]) for job_id in ids]


async def mark_fate_unknown(session: AsyncSession, job_id: uuid.UUID) -> None:
    """``job_id``, still ``submitting``, has a fate ICE cannot show (since now, unless
    already)."""
    await session.execute(
        sa.update(JOB)
        .where(
            JOB.c.id == job_id,
            JOB.c.status == JobStatus.SUBMITTING,
            JOB.c.fate_unknown_since.is_(None),
        )
        .values(fate_unknown_since=sa.func.now())
    )


async def mark_sent(session: AsyncSession, job_id: uuid.UUID) -> None:
    """``job_id`` is being sent to ICE again (its answer may be lost as well)."""
    await session.execute(
        sa.update(JOB).where(JOB.c.id == job_id).values(last_sent_at=sa.func.now())
    )


async def due_for_sweep(session: AsyncSession, most: int) -> list[RowMapping]:
    """Up to ``most`` jobs the sweeper should ask ICE about now (kind, ICE JobId, status,
    created_at)."""
    rows = await session.execute(
        sa.select(JOB.c.kind, JOB.c.ice_job_id, JOB.c.status, JOB.c.created_at)
        .where(sweep_due())
        .limit(most)
    )
    return list(rows.mappings())


def sweep_due() -> sa.ColumnElement[bool]:
    """Jobs whose time to be looked at has come: not final, not a batch's sub-job (those are
    confirmed with their batch)."""
    return sa.and_(
        JOB.c.check_at <= sa.func.now(),
        JOB.c.status.not_in(list(TERMINAL_STATUSES)),
        JOB.c.batch_id.is_(None),
    )


def with_pending_callbacks() -> sa.ColumnElement[bool]:
    """Jobs that have callbacks not yet judged."""
    judged = tables.callbacks
    return JOB.c.id.in_(
        sa.select(judged.c.job_id).where(
            tables.is_literally(judged.c.outcome, CallbackOutcome.PENDING)
        )
    )
