"""Retention against PostgreSQL: what a purge removes, what it must keep, what it reports."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.retention import Purgeable, purged_for_job
from app.core.statuses import CallbackOutcome, DeliveryStatus, EventSource, JobKind, JobStatus
from app.flows.housekeeping import Housekeeper
from app.flows.retention import Purger
from app.store import audit, tables

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
RETENTION, HISTORY = 30 * 86400.0, 90 * 86400.0


class Seed:
    """Rows written straight into the tables, at the times a test gives."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.subscription = uuid.uuid4()

    async def subscription_row(self) -> None:
        await self.session.execute(
            sa.insert(tables.subscriptions).values(
                id=self.subscription, url="https://example.com/hook", event_types=["*"], secret="s"
            )
        )

    async def job(
        self,
        age: timedelta,
        *,
        finished_age: timedelta | None,
        kind: JobKind = JobKind.JOB,
        batch_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        job_id = uuid.uuid4()
        status = JobStatus.PROCESSING if finished_age is None else JobStatus.SUCCEEDED
        if kind is JobKind.BATCH and finished_age is not None:
            status = JobStatus.FINISHED
        await self.session.execute(
            sa.insert(tables.jobs).values(
                id=job_id,
                kind=kind,
                status=status,
                batch_id=batch_id,
                created_at=NOW - age,
                completed_at=None if finished_age is None else NOW - finished_age,
            )
        )
        await self.session.execute(
            sa.insert(tables.job_events).values(
                job_id=job_id,
                to_status=JobStatus.SUBMITTED,
                source=EventSource.SUBMIT,
                created_at=NOW - age,
            )
        )
        return job_id

    async def callback(
        self,
        job_id: uuid.UUID | None,
        age: timedelta,
        outcome: CallbackOutcome = CallbackOutcome.APPLIED,
    ) -> int:
        return int(
            await self.session.scalar(
                sa.insert(tables.callbacks)
                .values(job_id=job_id, received_at=NOW - age, body=b"{}", outcome=outcome)
                .returning(tables.callbacks.c.id)
            )
            or 0
        )

    async def webhook(
        self, job_id: uuid.UUID, age: timedelta, status: DeliveryStatus = DeliveryStatus.DELIVERED
    ) -> int:
        message_id = await self.session.scalar(
            sa.insert(tables.outbox)
            .values(
                event_id=f"evt_{uuid.uuid4().hex}",
                job_id=job_id,
                event_type="job.succeeded",
                payload={"big": "x" * 100},
                created_at=NOW - age,
            )
            .returning(tables.outbox.c.id)
        )
        delivery_id = await self.session.scalar(
            sa.insert(tables.deliveries)
            .values(
                message_id=message_id,
                subscription_id=self.subscription,
                job_id=job_id,
                event_type="job.succeeded",
                status=status,
                created_at=NOW - age,
            )
            .returning(tables.deliveries.c.id)
        )
        await self.session.execute(
            sa.insert(tables.delivery_attempts).values(
                delivery_id=delivery_id, attempted_at=NOW - age, status_code=200
            )
        )
        return int(message_id or 0)


async def ids(session: AsyncSession, table: sa.Table) -> set[Any]:
    return set((await session.execute(sa.select(table.c.id))).scalars())


def purger(sessionmaker: async_sessionmaker[AsyncSession], **kwargs: Any) -> Purger:
    return Purger(
        sessionmaker,
        retention_seconds=kwargs.pop("retention_seconds", RETENTION),
        history_seconds=kwargs.pop("history_seconds", HISTORY),
        clock=lambda: NOW,
        **kwargs,
    )


async def test_a_purge_removes_what_its_windows_let_go_and_keeps_what_is_in_flight(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        seed = Seed(session)
        await seed.subscription_row()
        # Past the history window: gone with everything of theirs.
        old_job = await seed.job(200 * DAY, finished_age=199 * DAY)
        await seed.callback(old_job, 199 * DAY)
        old_job_webhook = await seed.webhook(old_job, 199 * DAY)
        old_batch = await seed.job(150 * DAY, finished_age=149 * DAY, kind=JobKind.BATCH)
        old_subs = {
            await seed.job(150 * DAY, finished_age=149 * DAY, batch_id=old_batch) for _ in range(2)
        }
        # Past it too, but something of theirs is still in flight: kept whole.
        open_batch = await seed.job(150 * DAY, finished_age=149 * DAY, kind=JobKind.BATCH)
        open_sub = await seed.job(150 * DAY, finished_age=None, batch_id=open_batch)
        awaited = await seed.job(150 * DAY, finished_age=149 * DAY)
        pending_callback = await seed.callback(awaited, 149 * DAY, CallbackOutcome.PENDING)
        undelivered = await seed.job(150 * DAY, finished_age=149 * DAY)
        pending_webhook = await seed.webhook(undelivered, 149 * DAY, DeliveryStatus.PENDING)
        # Within the history window, past the retention: its callbacks and webhooks go.
        recent = await seed.job(40 * DAY, finished_age=39 * DAY)
        await seed.callback(recent, 39 * DAY)
        await seed.webhook(recent, 39 * DAY)
        stray = await seed.callback(None, 39 * DAY, CallbackOutcome.UNMATCHED)
        # Within both: untouched.
        new = await seed.job(1 * DAY, finished_age=None)
        new_callback = await seed.callback(new, 1 * DAY)
        new_webhook = await seed.webhook(new, 1 * DAY)

    expected = {Purgeable.JOBS: 2, Purgeable.CALLBACKS: 2, Purgeable.WEBHOOKS: 1}
    counted = await purger(sessionmaker).count()
    removed = await purger(sessionmaker, batch_rows=1).purge()
    # Counted before the jobs went (which took one callback and one webhook with them).
    assert counted == {Purgeable.JOBS: 2, Purgeable.CALLBACKS: 3, Purgeable.WEBHOOKS: 2}
    assert removed == expected

    async with sessionmaker() as session:
        kept_jobs = await ids(session, tables.jobs)
        assert old_job not in kept_jobs
        assert old_batch not in kept_jobs
        assert not old_subs & kept_jobs
        assert {open_batch, open_sub, awaited, undelivered, recent, new} == kept_jobs
        assert await ids(session, tables.callbacks) == {pending_callback, new_callback}
        assert await ids(session, tables.outbox) == {pending_webhook, new_webhook}
        assert old_job_webhook not in await ids(session, tables.outbox)
        assert stray not in await ids(session, tables.callbacks)
        events = await session.execute(sa.select(tables.job_events.c.job_id))
        assert set(events.scalars()) == kept_jobs, "events go with their job, and only then"
        orphans = await session.scalar(
            sa.select(sa.func.count())
            .select_from(tables.deliveries)
            .where(~tables.deliveries.c.message_id.in_(sa.select(tables.outbox.c.id)))
        )
        assert orphans == 0
        attempts = await session.scalar(
            sa.select(sa.func.count()).select_from(tables.delivery_attempts)
        )
        assert attempts == 2, "the attempts of the two webhooks kept"

        timeline = await audit.timeline(session, recent)
        purged = purged_for_job(NOW - 40 * DAY, timeline.horizons)
        assert purged == {
            "callbacks_before": NOW - 30 * DAY,
            "webhooks_before": NOW - 30 * DAY,
        }
        assert timeline.callbacks == []
        assert timeline.deliveries == []
        fresh = await audit.timeline(session, new)
        assert purged_for_job(NOW - DAY, fresh.horizons) == {
            "callbacks_before": None,
            "webhooks_before": None,
        }
        assert len(fresh.callbacks) == 1
        assert len(fresh.deliveries) == 1

    assert await purger(sessionmaker).purge() == dict.fromkeys(expected, 0), "nothing twice"


async def test_forever_purges_nothing_and_marks_nothing(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        seed = Seed(session)
        job = await seed.job(4000 * DAY, finished_age=3999 * DAY)
        await seed.callback(job, 3999 * DAY)
    everything = float("inf")
    keeper = purger(sessionmaker, retention_seconds=everything, history_seconds=everything)
    assert await keeper.count() == {}
    assert await keeper.purge() == {}
    async with sessionmaker() as session:
        assert await ids(session, tables.jobs) == {job}
        assert (await audit.timeline(session, job)).horizons == {}


async def test_purgers_in_several_workers_share_the_work_without_waiting(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        seed = Seed(session)
        for _ in range(60):
            await seed.callback(None, 40 * DAY, CallbackOutcome.REJECTED)
    purgers = [purger(sessionmaker, batch_rows=4) for _ in range(3)]
    results = await asyncio.gather(*(p.purge() for p in purgers))
    assert sum(r[Purgeable.CALLBACKS] for r in results) == 60
    async with sessionmaker() as session:
        assert await ids(session, tables.callbacks) == set()


async def test_housekeeping_purges_and_stops_when_told(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        await Seed(session).callback(None, 40 * DAY, CallbackOutcome.MALFORMED)
    stopped = asyncio.Event()
    housekeeper = Housekeeper(sessionmaker, purger(sessionmaker))
    loop = asyncio.create_task(housekeeper.run(stopped, interval=3600))
    async with asyncio.timeout(20):
        while True:
            async with sessionmaker() as session:
                if not await ids(session, tables.callbacks):
                    break
            await asyncio.sleep(0.05)
        stopped.set()
        await loop  # within the timeout, not after its hour's pause
