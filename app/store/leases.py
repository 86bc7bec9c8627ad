"""Claiming jobs to work on, with a lease, and scheduling their next look.

A unit of work is a job: confirming it with ICE because callbacks arrived for it, or
because the sweeper found it stale. ``claim`` leases jobs in a short transaction
(``FOR UPDATE SKIP LOCKED``) for their ``owner`` (a process), so several workers never
confirm one job at the same time, and several callbacks of one job cost one ICE call. The
holder ``renew``s its leases while it works (``flows.leasing``); a worker that dies stops,
its leases expire, and another worker claims the job again.

A lease runs from the moment it is written (``clock_timestamp()``), not from the start of
the transaction that wrote it (``now()``): a short lease would otherwise be partly spent
before its transaction commits.
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


def _until(seconds: float) -> sa.ColumnElement[Any]:
    return sa.func.clock_timestamp() + sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)


async def claim(
    session: AsyncSession,
    due: sa.ColumnElement[bool],
    *,
    limit: int,
    owner: uuid.UUID,
    lease_seconds: float,
) -> list[uuid.UUID]:
    """Lease up to ``limit`` jobs matching ``due`` that no one else holds, for ``owner``;
    return their ids."""
    free = sa.or_(JOB.c.lease_until.is_(None), JOB.c.lease_until < sa.func.clock_timestamp())
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
        .values(lease_until=_until(lease_seconds), lease_owner=owner)
        .returning(JOB.c.id)
    )
    return list(result.scalars())


async def claim_one(
    session: AsyncSession, job_id: uuid.UUID, *, owner: uuid.UUID, lease_seconds: float
) -> bool:
    """Lease the job ``job_id`` for ``owner`` unless someone holds it; whether it is now."""
    claimed = await claim(
        session, JOB.c.id == job_id, limit=1, owner=owner, lease_seconds=lease_seconds
    )
    return bool(claimed)


async def renew(
    session: AsyncSession, owner: uuid.UUID, job_ids: Sequence[uuid.UUID], lease_seconds: float
) -> set[uuid.UUID]:
    """Extend the leases ``owner`` still holds on ``job_ids`` (not those released, nor those
    another process took after they expired); returns the ids it still holds."""
    renewed = await session.execute(
        sa.update(JOB)
        .where(JOB.c.id.in_(job_ids), JOB.c.lease_owner == owner, JOB.c.lease_until.is_not(None))
        .values(lease_until=_until(lease_seconds))
        .returning(JOB.c.id)
    )
    return set(renewed.scalars())


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
