"""Status counts kept by triggers: they always equal counting the tables, whatever writes,
rolls back, deletes or folds, and whenever the schema was migrated."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.statuses import DeliveryStatus, JobKind, JobStatus
from app.flows.gauges import DatabaseGauges
from app.store import counts, schema
from app.store.engine import create_engine, create_sessionmaker
from app.store.tables import deliveries, jobs, outbox, subscriptions
from app.telemetry import metrics


async def counted(session: AsyncSession) -> dict[str, dict[str, int]]:
    """The tables counted the slow way."""
    found: dict[str, dict[str, int]] = {}
    for name, table in (("jobs", jobs), ("deliveries", deliveries)):
        rows = await session.execute(
            sa.select(table.c.status, sa.func.count()).group_by(table.c.status)
        )
        found[name] = {status: n for status, n in rows if n}
    return found


async def kept(session: AsyncSession) -> dict[str, dict[str, int]]:
    found = await counts.by_status(session)
    return {kind: {s: n for s, n in by.items() if n} for kind, by in found.items()}


async def add_jobs(
    sessionmaker: async_sessionmaker[AsyncSession], n: int, status: JobStatus
) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.insert(jobs), [{"id": i, "kind": JobKind.JOB, "status": status} for i in ids]
        )
    return ids


async def test_counts_follow_inserts_moves_deletes_and_rollbacks(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ids = await add_jobs(sessionmaker, 10, JobStatus.SUBMITTED)
    subscription = uuid.uuid4()
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.insert(subscriptions).values(
                id=subscription, url="https://example.com/", event_types=["*"], secret="s"
            )
        )
        message = await session.scalar(
            sa.insert(outbox)
            .values(event_id="evt_1", job_id=ids[0], event_type="job.submitted", payload={})
            .returning(outbox.c.id)
        )
        await session.execute(
            sa.insert(deliveries).values(
                message_id=message,
                subscription_id=subscription,
                job_id=ids[0],
                event_type="job.submitted",
                status=DeliveryStatus.PENDING,
            )
        )
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.update(jobs).where(jobs.c.id.in_(ids[:6])).values(status=JobStatus.PROCESSING)
        )
        await session.execute(
            sa.update(jobs).where(jobs.c.id.in_(ids[:3])).values(status=JobStatus.SUCCEEDED)
        )
        # Not a move: no change counted, and the counts stay right.
        await session.execute(sa.update(jobs).where(jobs.c.id.in_(ids)).values(check_count=1))
        await session.execute(sa.update(deliveries).values(status=DeliveryStatus.DELIVERED))
    async with sessionmaker.begin() as session:
        await session.execute(sa.delete(jobs).where(jobs.c.id == ids[9]))
        # A cascade counts too: the job's messages and their deliveries go with it.
        await session.execute(sa.delete(jobs).where(jobs.c.id == ids[0]))
    async with sessionmaker() as session:
        await session.execute(sa.update(jobs).values(status=JobStatus.FAILED))
        await session.rollback()

    async with sessionmaker() as session:
        assert await kept(session) == await counted(session)
        assert (await kept(session))["jobs"] == {"succeeded": 2, "processing": 3, "submitted": 3}
    async with sessionmaker.begin() as session:
        await counts.fold(session)
    async with sessionmaker() as session:
        assert await kept(session) == await counted(session)
        left = await session.scalar(sa.text("SELECT count(*) FROM status_count_changes"))
        assert left == 0, "folded"


async def test_concurrent_writers_and_folds_never_miscount(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ids = await add_jobs(sessionmaker, 200, JobStatus.SUBMITTED)
    rng = random.Random(7)
    order = [JobStatus.QUEUING, JobStatus.PROCESSING, JobStatus.SUCCEEDED]

    async def writer(mine: list[uuid.UUID]) -> None:
        for status in order:
            for job_id in mine:
                async with sessionmaker.begin() as session:
                    await session.execute(
                        sa.update(jobs).where(jobs.c.id == job_id).values(status=status)
                    )

    async def folder() -> None:
        for _ in range(30):
            async with sessionmaker.begin() as session:
                await counts.fold(session)
            await asyncio.sleep(rng.uniform(0, 0.01))

    rng.shuffle(ids)
    await asyncio.gather(*(writer(ids[n::8]) for n in range(8)), folder(), folder())
    async with sessionmaker() as session:
        assert (
            await kept(session)
            == await counted(session)
            == {"jobs": {"succeeded": 200}, "deliveries": {}}
        )


async def test_migrating_a_database_with_rows_starts_the_counts_right(
    empty_database_url: str,
) -> None:
    await asyncio.to_thread(schema.upgrade, empty_database_url, "20261203_0008")
    engine = create_engine(empty_database_url)
    try:
        sessionmaker = create_sessionmaker(engine)
        await add_jobs(sessionmaker, 4, JobStatus.FAILED)
        await add_jobs(sessionmaker, 2, JobStatus.QUEUING)
        await schema.upgrade_async(empty_database_url)
        await add_jobs(sessionmaker, 1, JobStatus.QUEUING)
        async with sessionmaker() as session:
            assert await kept(session) == await counted(session)
            assert (await kept(session))["jobs"] == {"failed": 4, "queuing": 3}
    finally:
        await engine.dispose()


async def test_the_gauges_publish_the_last_reading_and_log_a_failing_database_once(
    sessionmaker: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    await add_jobs(sessionmaker, 3, JobStatus.QUEUING)
    gauges = DatabaseGauges(sessionmaker)
    await gauges.refresh()
    gauges.publish()
    assert metrics.REGISTRY.get_sample_value("icehook_jobs", {"status": "queuing"}) == 3

    gone = create_engine("postgresql://nobody@127.0.0.1:9/none", timeout=1)
    try:
        failing = DatabaseGauges(create_sessionmaker(gone), interval=0.01)
        failing.reading = gauges.reading
        stopped = asyncio.Event()
        running = asyncio.create_task(failing.run(stopped))
        await asyncio.sleep(0.3)
        stopped.set()
        await running
    finally:
        await gone.dispose()
    failing.publish()  # the last reading stays
    assert metrics.REGISTRY.get_sample_value("icehook_jobs", {"status": "queuing"}) == 3
    logged = [r for r in caplog.records if "cannot read the metrics' gauges" in r.getMessage()]
    assert len(logged) == 1
