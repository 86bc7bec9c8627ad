"""Leases and wake-ups: a job is held by one claimer at a time; NOTIFY wakes other processes."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.statuses import JobKind, JobStatus
from app.store import leases
from app.store.notify import WORK, Waker, notify
from app.store.tables import jobs


async def make_jobs(sessionmaker: async_sessionmaker[AsyncSession], n: int) -> set[uuid.UUID]:
    ids = {uuid.uuid4() for _ in range(n)}
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.insert(jobs),
            [{"id": i, "kind": JobKind.JOB, "status": JobStatus.SUBMITTED} for i in ids],
        )
    return ids


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession], limit: int, lease: float = 60
) -> list[uuid.UUID]:
    async with sessionmaker.begin() as session:
        return await leases.claim(session, sa.true(), limit=limit, lease_seconds=lease)


async def test_concurrent_claims_never_share_a_job(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ids = await make_jobs(sessionmaker, 50)
    claims = await asyncio.gather(*(claim(sessionmaker, 7) for _ in range(10)))
    taken = [job_id for batch in claims for job_id in batch]
    assert len(taken) == len(set(taken)) == 50
    assert set(taken) == ids
    assert await claim(sessionmaker, 10) == [], "all are leased"


async def test_a_released_or_expired_lease_is_claimed_again(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    (job_id,) = await make_jobs(sessionmaker, 1)
    assert await claim(sessionmaker, 1, lease=0.2) == [job_id]
    assert await claim(sessionmaker, 1) == []
    await asyncio.sleep(0.3)  # the holder died: its lease runs out
    assert await claim(sessionmaker, 1) == [job_id]
    async with sessionmaker.begin() as session:
        await leases.release(session, [job_id])
    assert await claim(sessionmaker, 1) == [job_id]


async def test_notify_wakes_a_listener_on_another_connection(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    listener = Waker(WORK)
    stopping = False
    task = asyncio.create_task(listener.listen(database_url, lambda: stopping, 5.0))
    try:
        async with asyncio.timeout(30):
            while not listener.event.is_set():
                async with sessionmaker.begin() as session:  # until the LISTEN is in place
                    await session.execute(sa.select(notify(WORK)))
                await asyncio.sleep(0.1)
    finally:
        stopping = True
        await task
    assert listener.event.is_set()
