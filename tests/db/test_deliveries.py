"""Deliveries in the store: claims in order per job, attempts recorded, subscriptions disabled."""

from __future__ import annotations

import asyncio
import base64
import random
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.delivery import Attempt, verdict
from app.core.moves import Move
from app.core.policies import LEASE_SECONDS
from app.core.statuses import EventSource, JobStatus
from app.flows.deliver import disabling_rule
from app.flows.leasing import LeaseKeeper
from app.settings import Settings
from app.store import deliveries as store_deliveries
from app.store import jobs as store_jobs
from app.store.tables import deliveries, delivery_attempts, jobs, subscriptions

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


async def record(
    session: AsyncSession,
    delivery: Mapping[Any, Any],
    attempt: Attempt,
    settings: Settings,
    rng: random.Random,
) -> str:
    """Record one delivery's ``attempt`` (``store.deliveries.record``); its new status."""
    judged = verdict(attempt, delivery["attempts"], settings.delivery_retry_schedule, rng)
    await store_deliveries.record(session, [(delivery, attempt, judged)], disabling_rule(settings))
    return judged.status.value


async def two_events(sessionmaker: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    """A subscription, and one job with two events for it; returns the subscription id."""
    subscription_id, job_id = uuid.uuid4(), uuid.uuid4()
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.insert(subscriptions).values(
                id=subscription_id, url="http://localhost/hook", event_types=["*"], secret=SECRET
            )
        )
        await session.execute(
            sa.insert(jobs).values(id=job_id, kind="job", status="submitted", ice_job_id="j")
        )
    for status in (JobStatus.PROCESSING, JobStatus.SUCCEEDED):
        await move(sessionmaker, job_id, status)
    return subscription_id


async def move(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID, status: JobStatus
) -> None:
    """Record ``status`` of ``job_id``: its event, message and deliveries."""
    async with sessionmaker.begin() as session:
        job = await store_jobs.lock(session, job_id)
        assert job is not None
        await store_jobs.record_status(session, Move(job, status, EventSource.CALLBACK, None))


async def test_a_jobs_next_event_waits_until_the_earlier_one_is_delivered_or_dead(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await two_events(sessionmaker)
    settings = Settings(delivery_retry_schedule=(0.001,))
    rng = random.Random(1)
    async with sessionmaker.begin() as session:
        (first,) = await store_deliveries.claim(session, limit=10, lease_seconds=60)
    assert first["payload"]["type"] == "job.processing"
    async with sessionmaker.begin() as session:
        assert await store_deliveries.claim(session, limit=10, lease_seconds=60) == [], (
            "leased, or next"
        )
        failed = Attempt(status_code=500)
        assert await record(session, first, failed, settings, rng) == "pending"
    await asyncio.sleep(0.01)
    async with sessionmaker.begin() as session:
        (again,) = await store_deliveries.claim(session, limit=10, lease_seconds=60)
        assert again["event_id"] == first["event_id"], "the same event again, not the next one"
        assert await record(session, again, failed, settings, rng) == "dead"
    async with sessionmaker.begin() as session:
        (second,) = await store_deliveries.claim(session, limit=10, lease_seconds=60)
    assert second["payload"]["type"] == "job.succeeded"


async def test_410_gone_disables_the_subscription(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    subscription_id = await two_events(sessionmaker)
    async with sessionmaker.begin() as session:
        (first,) = await store_deliveries.claim(session, limit=10, lease_seconds=60)
        gone = Attempt(status_code=410)
        assert await record(session, first, gone, Settings(), random.Random()) == "dead"
    async with sessionmaker.begin() as session:
        row = (await session.execute(sa.select(subscriptions))).mappings().one()
        assert (row["id"], row["enabled"]) == (subscription_id, False)
        assert "410" in row["disabled_reason"]
        assert await store_deliveries.claim(session, limit=10, lease_seconds=60) == [], (
            "held while off"
        )


async def test_a_subscription_failing_for_too_long_is_disabled_and_a_success_clears_it(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await two_events(sessionmaker)
    settings = Settings(delivery_retry_schedule=(0.001,) * 5, webhook_disable_after_seconds=3600)
    rng = random.Random(1)
    async with sessionmaker.begin() as session:
        (first,) = await store_deliveries.claim(session, limit=1, lease_seconds=60)
        await record(session, first, Attempt(status_code=200), settings, rng)
        (second,) = await store_deliveries.claim(session, limit=1, lease_seconds=60)
        await record(session, second, Attempt(error="refused"), settings, rng)
        row = (await session.execute(sa.select(subscriptions))).mappings().one()
        assert row["enabled"], "failing, not yet for long"
        assert row["failing_since"] is not None
        await session.execute(
            sa.update(subscriptions).values(failing_since=sa.func.now() - timedelta(hours=2))
        )
    await asyncio.sleep(0.01)
    async with sessionmaker.begin() as session:
        (second,) = await store_deliveries.claim(session, limit=1, lease_seconds=60)
        await record(session, second, Attempt(status_code=503), settings, rng)
        row = (await session.execute(sa.select(subscriptions))).mappings().one()
        assert not row["enabled"]
        assert "every delivery has failed since" in row["disabled_reason"]


async def test_deliveries_finished_together_are_recorded_together(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Successes of one lot are one statement; a failure in the same lot is scheduled again
    and leaves the subscription failing, while the successes clear nothing they should not."""
    subscription_id = uuid.uuid4()
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.insert(subscriptions).values(
                id=subscription_id, url="http://localhost/hook", event_types=["*"], secret=SECRET
            )
        )
        job_ids = [uuid.uuid4() for _ in range(3)]
        for n, job_id in enumerate(job_ids):
            await session.execute(
                sa.insert(jobs).values(
                    id=job_id, kind="job", status="processing", ice_job_id=f"j{n}"
                )
            )
    for job_id in job_ids:
        await move(sessionmaker, job_id, JobStatus.SUCCEEDED)
    settings = Settings(delivery_retry_schedule=(60.0,))
    async with sessionmaker.begin() as session:
        claimed = await store_deliveries.claim(session, limit=10, lease_seconds=60)
        attempts = [
            Attempt(status_code=200, latency_ms=1.0, excerpt="ok"),
            Attempt(status_code=500, latency_ms=2.0, excerpt="no"),
            Attempt(status_code=204, latency_ms=3.0, excerpt=""),
        ]
        rng = random.Random(1)
        judged = [
            (delivery, attempt, verdict(attempt, 0, settings.delivery_retry_schedule, rng))
            for delivery, attempt in zip(claimed, attempts, strict=True)
        ]
        await store_deliveries.record(session, judged, disabling_rule(settings))
    assert [v.status for _, _, v in judged] == ["delivered", "pending", "delivered"]
    async with sessionmaker() as session:
        rows = {row["id"]: row for row in (await session.execute(sa.select(deliveries))).mappings()}
        logged = (
            await session.execute(
                sa.select(delivery_attempts.c.delivery_id, delivery_attempts.c.status_code)
            )
        ).all()
        failing = (await session.execute(sa.select(subscriptions.c.failing_since))).scalar_one()
    for delivery, attempt in zip(claimed, attempts, strict=True):
        row = rows[delivery["id"]]
        assert row["attempts"] == 1
        assert row["last_status_code"] == attempt.status_code
        assert row["lease_until"] is None
        assert (row["delivered_at"] is not None) == attempt.delivered
    assert sorted(logged) == sorted(
        (d["id"], a.status_code) for d, a in zip(claimed, attempts, strict=True)
    )
    assert failing is not None, "the failure in the lot is noted"


async def test_a_delivery_being_sent_keeps_its_lease_and_a_dead_senders_runs_out(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await two_events(sessionmaker)
    keeper = LeaseKeeper(sessionmaker)

    async def claim() -> list[Any]:
        async with sessionmaker.begin() as session:
            return await store_deliveries.claim(session, limit=10, lease_seconds=keeper.seconds)

    (first,) = await claim()
    with keeper.holding(deliveries=[first["id"]]):
        await asyncio.sleep(3 * LEASE_SECONDS)  # a slow subscriber: many heartbeats
        assert await claim() == [], "still being sent"
    await keeper.close()  # its sender died
    await asyncio.sleep(LEASE_SECONDS + 0.2)
    (again,) = await claim()
    assert again["id"] == first["id"]
