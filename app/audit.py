"""The audit queries: jobs and their timelines, callbacks, and deliveries, as the HTTP API
and the operator commands (``icehook jobs ...``) both show them.

Lists are newest first, a page at a time: ``limit`` items and the cursor to the next page
(None on the last), which stays correct while new rows arrive (they sort before it).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app import db, schemas
from app.models import JobKind, callbacks, deliveries, delivery_attempts, job_events, jobs
from app.models import outbox as messages

CALLBACK_COLUMNS = tuple(callbacks.c[name] for name in schemas.Callback.__annotations__)
DELIVERY_COLUMNS = (*deliveries.c, messages.c.event_id)
Page = dict[str, Any]  # {"items": [...], "next_cursor": str | None}


async def find_job(
    session: AsyncSession, raw: str, kind: JobKind | None = None
) -> RowMapping | None:
    """The job ``raw`` names: icehook's id or ICE's JobId."""
    if not db.storable(raw):
        return None  # no id holds what PostgreSQL text cannot
    condition = jobs.c.ice_job_id == raw
    with contextlib.suppress(ValueError):
        # ICE's JobIds are 32 hex digits, which also parse as a UUID: look for both.
        condition = sa.or_(condition, jobs.c.id == uuid.UUID(raw))
    if kind is not None:
        condition = sa.and_(condition, jobs.c.kind == kind)
    return (await session.execute(sa.select(jobs).where(condition))).mappings().one_or_none()


async def timeline(session: AsyncSession, job: RowMapping) -> dict[str, Any]:
    """``job`` with its events, the callbacks received for it (each with how it was judged)
    and its deliveries, each oldest first."""
    events = await session.execute(
        sa.select(job_events).where(job_events.c.job_id == job["id"]).order_by(job_events.c.id)
    )
    received = await session.execute(
        sa.select(*CALLBACK_COLUMNS).where(callbacks.c.job_id == job["id"]).order_by(callbacks.c.id)
    )
    sent = await session.execute(
        _deliveries().where(deliveries.c.job_id == job["id"]).order_by(deliveries.c.id)
    )
    return schemas.job_resource(job) | {
        "events": [schemas.event_resource(e) for e in events.mappings()],
        "callbacks": [schemas.callback_resource(c) for c in received.mappings()],
        "deliveries": [schemas.delivery_resource(d) for d in sent.mappings()],
    }


async def list_jobs(session: AsyncSession, query: schemas.JobQuery) -> Page:
    conditions = _equal(
        (jobs.c.status, query.status),
        (jobs.c.ice_job_id, query.ice_job_id),
        (jobs.c.project_id, query.project_id),
        (jobs.c.batch_id, query.batch_id),
    )
    if query.created_after is not None:
        conditions.append(jobs.c.created_at >= query.created_after)
    if query.created_before is not None:
        conditions.append(jobs.c.created_at < query.created_before)
    if query.cursor is not None:
        conditions.append(sa.tuple_(jobs.c.created_at, jobs.c.id) < sa.tuple_(*query.cursor))
    statement = (
        sa.select(jobs).where(*conditions).order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
    )
    return await _page(
        session,
        statement,
        query.limit,
        schemas.job_resource,
        lambda last: schemas.encode_cursor(last["created_at"], last["id"]),
    )


async def list_callbacks(session: AsyncSession, query: schemas.CallbackQuery) -> Page:
    conditions = _equal((callbacks.c.outcome, query.outcome), (callbacks.c.job_id, query.job_id))
    if query.received_after is not None:
        conditions.append(callbacks.c.received_at >= query.received_after)
    if query.received_before is not None:
        conditions.append(callbacks.c.received_at < query.received_before)
    if query.before_id is not None:
        conditions.append(callbacks.c.id < query.before_id)
    statement = sa.select(*CALLBACK_COLUMNS).where(*conditions).order_by(callbacks.c.id.desc())
    return await _page(
        session,
        statement,
        query.limit,
        schemas.callback_resource,
        lambda last: schemas.encode_id_cursor(last["id"]),
    )


async def list_deliveries(session: AsyncSession, query: schemas.DeliveryQuery) -> Page:
    conditions = _equal(
        (deliveries.c.status, query.status),
        (deliveries.c.subscription_id, query.subscription_id),
        (deliveries.c.job_id, query.job_id),
        (deliveries.c.event_type, query.event_type),
    )
    if query.before_id is not None:
        conditions.append(deliveries.c.id < query.before_id)
    return await _page(
        session,
        _deliveries().where(*conditions).order_by(deliveries.c.id.desc()),
        query.limit,
        schemas.delivery_resource,
        lambda last: schemas.encode_id_cursor(last["id"]),
    )


async def delivery(session: AsyncSession, delivery_id: int) -> dict[str, Any] | None:
    """One delivery with every attempt (``attempt_log``), or None."""
    row = (
        (await session.execute(_deliveries().where(deliveries.c.id == delivery_id)))
        .mappings()
        .one_or_none()
    )
    if row is None:
        return None
    attempts = await session.execute(
        sa.select(delivery_attempts)
        .where(delivery_attempts.c.delivery_id == delivery_id)
        .order_by(delivery_attempts.c.id)
    )
    return schemas.delivery_resource(row) | {
        "attempt_log": [schemas.attempt_resource(a) for a in attempts.mappings()]
    }


def _deliveries() -> sa.Select[Any]:
    return sa.select(*DELIVERY_COLUMNS).join(messages, messages.c.id == deliveries.c.message_id)


def _equal(*pairs: tuple[sa.ColumnElement[Any], object]) -> list[sa.ColumnElement[bool]]:
    """A list query's equality filters: one condition per value that was given."""
    return [column == value for column, value in pairs if value is not None]


async def _page(
    session: AsyncSession,
    statement: sa.Select[Any],
    limit: int,
    resource: Callable[[RowMapping], dict[str, Any]],
    cursor_of: Callable[[RowMapping], str],
) -> Page:
    """``limit`` rows of ``statement`` (ordered newest first) and the cursor to the next."""
    rows = (await session.execute(statement.limit(limit + 1))).mappings().all()
    page = rows[:limit]
    return {
        "items": [resource(row) for row in page],
        "next_cursor": cursor_of(page[-1]) if len(rows) > limit else None,
    }
