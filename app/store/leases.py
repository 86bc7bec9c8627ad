"""Claiming jobs to work on, with a lease, and scheduling their next look.

A unit of work is a job: confirming it with ICE because callbacks arrived for it, or
because the sweeper found it stale. ``claim`` leases jobs in a short transaction
(``FOR UPDATE SKIP LOCKED``), so several workers never confirm one job at the same time,
and several callbacks of one job cost one ICE call. A worker that dies holds its lease
until it expires; then another worker claims the job again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.store import tables
from app.store.batching import columns

JOB = tables.jobs


async def claim(
    session: AsyncSession,
    due: sa.ColumnElement[bool],
    *,
    limit: int,
    lease_seconds: float,
) -> list[uuid.UUID]:
    """Lease up to ``limit`` jobs matching ``due`` that no one else holds; return their ids."""
    free = sa.or_(JOB.c.lease_until.is_(None), JOB.c.lease_until < sa.func.now())
    picked = (
        sa.select(JOB.c.id)
        .where(due, free)
        .limit(limit)
        .with_for_update(skip_locked=True, key_share=True)
        .cte("picked")
    )
    result = await session.execute(
        sa.update(JOB)
        .where(JOB.c.id.in_(sa.select(picked.c.id)))
        .values(lease_until=sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds))
        .returning(JOB.c.id)
    )
    return list(result.scalars())


async def claim_one(session: AsyncSession, job_id: uuid.UUID, *, lease_seconds: float) -> bool:
    """Lease the job ``job_id`` unless someone holds it; whether it is now leased."""
    return bool(await claim(session, JOB.c.id == job_id, limit=1, lease_seconds=lease_seconds))


async def release(session: AsyncSession, job_ids: Sequence[uuid.UUID]) -> None:
    await session.execute(sa.update(JOB).where(JOB.c.id.in_(job_ids)).values(lease_until=None))


# When each job is looked at again (core.policies.next_check), leases released.
SCHEDULE = sa.text(
    """
    UPDATE jobs SET
        lease_until = NULL,
        check_at = next.check_at,
        check_count = next.check_count,
        heard_at = coalesce(next.heard_at, jobs.heard_at)
    FROM unnest(
        CAST(:id AS uuid[]), CAST(:check_at AS timestamptz[]), CAST(:check_count AS int[]),
        CAST(:heard_at AS timestamptz[])
    ) AS next(id, check_at, check_count, heard_at)
    WHERE jobs.id = next.id
    """
)


async def schedule(session: AsyncSession, checks: Sequence[Mapping[str, Any]]) -> None:
    """Release the jobs of ``checks`` (``id``, ``check_at``, ``check_count``, ``heard_at``)
    and set when each is looked at again."""
    if checks:
        await session.execute(SCHEDULE, columns(checks))
