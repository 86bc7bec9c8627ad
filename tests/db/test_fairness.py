"""The delivery claim shares out the work fairly (``store.deliveries.claim``): each
subscription within its own limits (in flight across all workers, a second) and within a
worker's share, and every subscription's first due delivery before anyone's second."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.statuses import JobStatus
from app.store import deliveries as store_deliveries
from app.store import subscriptions as store_subscriptions
from app.store.tables import deliveries, jobs, outbox, subscriptions
from tests.db.test_deliveries import SECRET, move


async def backlog(
    sessionmaker: async_sessionmaker[AsyncSession], jobs_count: int, **limits: Any
) -> list[uuid.UUID]:
    """Two subscriptions (with ``limits``) and ``jobs_count`` jobs, each with one event
    both want; returns the subscriptions' ids."""
    ids = [uuid.uuid4(), uuid.uuid4()]
    async with sessionmaker.begin() as session:
        for subscription_id in ids:
            await session.execute(
                sa.insert(subscriptions).values(
                    id=subscription_id,
                    url="http://localhost/hook",
                    event_types=["job.processing"],
                    secret=SECRET,
                    **limits,
                )
            )
        job_ids = [uuid.uuid4() for _ in range(jobs_count)]
        await session.execute(
            sa.insert(jobs),
            [
                {"id": job_id, "kind": "job", "status": "submitted", "ice_job_id": f"j-{n}"}
                for n, job_id in enumerate(job_ids)
            ],
        )
    for job_id in job_ids:
        await move(sessionmaker, job_id, JobStatus.PROCESSING)
    return ids


async def claim(sessionmaker: async_sessionmaker[AsyncSession], **options: Any) -> Counter[Any]:
    async with sessionmaker.begin() as session:
        claimed = await store_deliveries.claim(session, lease_seconds=60, **options)
    return Counter(row["subscription_id"] for row in claimed)


async def test_no_subscription_gets_more_in_flight_than_its_limit_across_claims(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first, second = await backlog(sessionmaker, 10, max_in_flight=3)
    assert await claim(sessionmaker, limit=100) == {first: 3, second: 3}
    # Another worker's claim sees the leases: nothing more until one is settled.
    assert await claim(sessionmaker, limit=100) == {}


async def test_a_workers_share_bounds_each_subscription_and_turns_come_round(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first, second = await backlog(sessionmaker, 10)
    # Three free slots: each gets its first before anyone gets a second.
    taken = await claim(sessionmaker, limit=3)
    assert sorted(taken.values()) == [1, 2]
    # This worker holds 4 for the first already: its share of 4 leaves it none.
    assert await claim(sessionmaker, limit=10, share=4, held={first: 4, second: 1}) == {second: 3}


async def test_a_rate_limited_subscription_gets_its_second_worth_then_waits(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first, second = await backlog(sessionmaker, 10, max_per_second=2.0)
    assert await claim(sessionmaker, limit=100) == {first: 2, second: 2}
    assert await claim(sessionmaker, limit=100) == {}
    async with sessionmaker() as session:
        paced = await session.scalar(
            sa.select(sa.func.min(subscriptions.c.paced_until - sa.func.now()))
        )
    assert paced is not None
    assert 0.5 < paced.total_seconds() <= 1.0  # two requests at two a second: a second ahead


async def test_a_slow_rate_still_sends_one_at_a_time(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first, second = await backlog(sessionmaker, 3, max_per_second=0.1)
    assert await claim(sessionmaker, limit=100) == {first: 1, second: 1}
    assert await claim(sessionmaker, limit=100) == {}


async def test_a_new_rate_starts_a_new_pace(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first, _ = await backlog(sessionmaker, 3, max_per_second=0.01)
    assert (await claim(sessionmaker, limit=100))[first] == 1  # the next one in 100 s
    async with sessionmaker.begin() as session:
        await store_subscriptions.change(session, first, {"max_per_second": 10.0}, 60)
    # The other two at once; the other subscription keeps its slow pace.
    assert (await claim(sessionmaker, limit=100)) == {first: 2}


async def test_enabling_makes_what_waited_due_at_once_and_own_notices_are_never_replayed(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first, second = await backlog(sessionmaker, 2)
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.update(subscriptions)
            .where(subscriptions.c.id == first)
            .values(event_types=["job.processing", "subscription.*"])
        )
        await session.execute(
            sa.update(deliveries)
            .where(deliveries.c.subscription_id == first)
            .values(attempts=5, next_attempt_at=sa.func.now() + timedelta(days=1))
        )
        assert await store_subscriptions.disable(session, first, "testing", 3600) is not None
    async with sessionmaker.begin() as session:
        assert await store_subscriptions.enable(session, first) is not None
    async with sessionmaker() as session:
        waiting = await session.execute(
            sa.select(deliveries.c.attempts, deliveries.c.next_attempt_at <= sa.func.now())
            .join(outbox, outbox.c.id == deliveries.c.message_id)
            .where(deliveries.c.subscription_id == first, outbox.c.job_id.is_not(None))
        )
        assert {tuple(row) for row in waiting} == {(0, True)}
    # Its own notices went to nobody (no other subscription asks), and replaying or
    # recovering never sends them to it.
    async with sessionmaker.begin() as session:
        since = datetime.now(UTC) - timedelta(hours=1)
        assert await store_deliveries.replay(session, first, since, None) == 2
        assert await store_deliveries.replay(session, second, since, None) == 2
    async with sessionmaker() as session:
        notices = await session.scalar(
            sa.select(sa.func.count()).select_from(deliveries).where(deliveries.c.job_id.is_(None))
        )
    assert notices == 0
