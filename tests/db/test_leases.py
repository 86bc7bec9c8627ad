"""Leases and wake-ups: a job is held by one claimer at a time; NOTIFY wakes other processes."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import outbound
from app.core.answers import MediaProducingJob
from app.core.policies import LEASE_SECONDS
from app.core.statuses import EventSource, JobKind, JobStatus
from app.flows.confirm import Confirmer
from app.flows.leasing import LeaseKeeper
from app.flows.submit import Submitter
from app.ice.client import IceClient
from app.settings import Settings
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
    sessionmaker: async_sessionmaker[AsyncSession],
    limit: int,
    lease: float = 60,
    owner: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    async with sessionmaker.begin() as session:
        return await leases.claim(
            session, sa.true(), limit=limit, owner=owner or uuid.uuid4(), lease_seconds=lease
        )


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


async def test_a_held_lease_is_renewed_and_a_dead_holders_runs_out_soon(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The keeper renews what its process holds; what a process held when it died (stopped
    renewing) is free again within LEASE_SECONDS."""
    held, abandoned = sorted(await make_jobs(sessionmaker, 2))
    keeper = LeaseKeeper(sessionmaker)
    async with sessionmaker.begin() as session:
        assert await keeper.claim_one(session, held)
        assert await keeper.claim_one(session, abandoned)  # its holder "dies" at once
    with keeper.holding(jobs=[held]):
        await asyncio.sleep(3 * LEASE_SECONDS)  # many heartbeats
        assert await claim(sessionmaker, 10) == [abandoned]
    await keeper.close()
    await asyncio.sleep(LEASE_SECONDS + 0.2)
    assert await claim(sessionmaker, 10) == [held], "once no longer renewed, it runs out"


async def test_a_lease_taken_over_is_not_renewed_for_its_former_holder(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    (job_id,) = await make_jobs(sessionmaker, 1)
    stalled, other = uuid.uuid4(), uuid.uuid4()
    assert await claim(sessionmaker, 1, lease=0.1, owner=stalled) == [job_id]
    await asyncio.sleep(0.2)  # the holder could not renew in time
    assert await claim(sessionmaker, 1, lease=60, owner=other) == [job_id]
    async with sessionmaker.begin() as session:
        assert await leases.renew(session, stalled, [job_id], 60) == set()
        assert await leases.renew(session, other, [job_id], 60) == {job_id}
        await leases.release(session, [job_id])
        assert await leases.renew(session, other, [job_id], 60) == set(), "released: not again"


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


async def test_a_holder_whose_lease_was_taken_over_records_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """Two processes never both record a confirmation of one job: one that could not renew
    in time asks ICE in vain, its answer is left to the lease's new holder."""
    (job_id,) = await make_jobs(sessionmaker, 1)
    async with sessionmaker.begin() as session:
        await session.execute(sa.update(jobs).values(ice_job_id="ICE-1"))
    stalled, taker = LeaseKeeper(sessionmaker), LeaseKeeper(sessionmaker)
    http = outbound.client(max_connections=1, trust_env=False)  # never used: answers given
    ice = IceClient(http, settings)

    def confirmer(leases: LeaseKeeper) -> Confirmer:
        return Confirmer(
            sessionmaker, ice, Submitter(sessionmaker, ice, settings), leases, settings
        )

    async with sessionmaker.begin() as session:
        (row,) = await session.execute(sa.select(jobs).where(jobs.c.id == job_id))
        assert await leases.claim_one(session, job_id, owner=stalled.owner, lease_seconds=0.1)
    await asyncio.sleep(0.2)
    async with sessionmaker.begin() as session:
        assert await taker.claim_one(session, job_id)
    answer = MediaProducingJob.parse({"JobId": "ICE-1", "Status": "Success"})
    job = row._mapping
    (late,) = await confirmer(stalled).confirm_all(
        [job], EventSource.SWEEP, answers={"ICE-1": answer}
    )
    assert late is None
    async with sessionmaker() as session:
        (now,) = await session.execute(sa.select(jobs).where(jobs.c.id == job_id))
        assert (now.status, now.lease_owner) == (JobStatus.SUBMITTED, taker.owner)
    (done,) = await confirmer(taker).confirm_all(
        [job], EventSource.SWEEP, answers={"ICE-1": answer}
    )
    assert done is not None
    assert done["status"] == JobStatus.SUCCEEDED
    await http.aclose()
