"""The events as recorded, in the store: a page never passes an event that may still be being
written, so a consumer reading on from its last id misses none (``store.events``)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.queries import EventQuery
from app.store import events
from app.store.tables import jobs, outbox


async def a_job(sessionmaker: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    job_id = uuid.uuid4()
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.insert(jobs).values(id=job_id, kind="job", status="submitted", ice_job_id=job_id.hex)
        )
    return job_id


async def record(session: AsyncSession, job_id: uuid.UUID, event_type: str) -> str:
    """An outbox message, as ``store.jobs`` writes one (uncommitted); its event id."""
    event_id = f"msg_{uuid.uuid4().hex}"
    body = {"type": event_type, "timestamp": "2026-12-01T00:00:00+00:00", "data": {}}
    await session.execute(
        sa.insert(outbox).values(
            event_id=event_id, job_id=job_id, event_type=event_type, payload=body
        )
    )
    return event_id


async def listed(
    sessionmaker: async_sessionmaker[AsyncSession],
    query: EventQuery = EventQuery(),  # noqa: B008 (frozen)
    settle: timedelta = events.SETTLE,
) -> list[str]:
    async with sessionmaker() as session:
        return [row["event_id"] for row in await events.page(session, query, settle)]


async def test_an_event_committed_first_waits_for_the_earlier_one_still_being_written(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    job_id = await a_job(sessionmaker)
    async with sessionmaker() as slow:
        earlier = await record(slow, job_id, "job.processing")  # its id taken, not committed
        async with sessionmaker.begin() as fast:
            later = await record(fast, job_id, "job.succeeded")
        # Listing the later one now would move a consumer's cursor past the earlier one.
        assert await listed(sessionmaker) == []
        await slow.commit()
    assert await listed(sessionmaker) == [earlier, later]


async def test_an_id_rolled_back_holds_the_next_event_only_until_it_settles(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    job_id = await a_job(sessionmaker)
    async with sessionmaker() as failing:
        await record(failing, job_id, "job.processing")
        await failing.rollback()
    async with sessionmaker.begin() as session:
        kept = await record(session, job_id, "job.succeeded")
    assert await listed(sessionmaker) == []  # the missing one may be still being written
    assert await listed(sessionmaker, settle=timedelta(0)) == [kept]  # older: gone for good
    async with sessionmaker() as session:
        (kept_id,) = (await session.execute(sa.select(outbox.c.id))).scalars()
    # From a cursor past it, the gap behind holds nothing back.
    async with sessionmaker.begin() as session:
        newer = await record(session, job_id, "job.succeeded")
    assert await listed(sessionmaker, EventQuery(after_id=kept_id)) == [newer]


async def test_a_page_is_oldest_first_after_the_cursor_with_the_types_and_job_asked_for(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    one, other = await a_job(sessionmaker), await a_job(sessionmaker)
    made = []
    for job_id, event_type in (
        (one, "job.submitted"),
        (other, "batch.submitted"),
        (one, "job.succeeded"),
        (other, "batch.finished"),
    ):
        async with sessionmaker.begin() as session:
            made.append(await record(session, job_id, event_type))
    async with sessionmaker() as session:
        ids = list((await session.execute(sa.select(outbox.c.id).order_by(outbox.c.id))).scalars())
    assert await listed(sessionmaker) == made
    assert await listed(sessionmaker, EventQuery(limit=3, after_id=ids[0])) == made[1:]
    assert await listed(sessionmaker, EventQuery(types=("job.*",))) == [made[0], made[2]]
    assert await listed(sessionmaker, EventQuery(types=("batch.finished", "job.submitted"))) == [
        made[0],
        made[3],
    ]
    assert await listed(sessionmaker, EventQuery(types=("*",), job_id=other)) == [
        made[1],
        made[3],
    ]
    assert await listed(sessionmaker, EventQuery(after_id=ids[-1])) == []
