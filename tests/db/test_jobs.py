"""The state machine: forward only, terminal is final, one event and one message per move."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.moves import Move
from app.core.statuses import (
    EventSource,
    JobKind,
    JobStatus,
)
from app.store.jobs import lock, record_status, record_statuses
from app.store.tables import deliveries, job_events, jobs, outbox, subscriptions


async def new_job(session: AsyncSession, kind: JobKind = JobKind.JOB) -> uuid.UUID:
    job_id = uuid.uuid4()
    await session.execute(sa.insert(jobs).values(id=job_id, kind=kind, status=JobStatus.SUBMITTING))
    return job_id


async def move(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID, to: JobStatus
) -> bool:
    async with sessionmaker.begin() as session:
        job = await lock(session, job_id)
        assert job is not None
        row = await record_status(session, Move(job, to, EventSource.RECONCILE, {"s": to}))
        return row is not None


async def test_a_move_writes_the_job_its_event_and_its_message_together(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        job_id = await new_job(session)
    assert await move(sessionmaker, job_id, JobStatus.PROCESSING)
    async with sessionmaker() as session:
        job = (await session.execute(sa.select(jobs).where(jobs.c.id == job_id))).mappings().one()
        events = (await session.execute(sa.select(job_events))).mappings().all()
        messages = (await session.execute(sa.select(outbox))).mappings().all()
    assert job["status"] == JobStatus.PROCESSING
    assert [(e["from_status"], e["to_status"]) for e in events] == [("submitting", "processing")]
    assert [m["event_type"] for m in messages] == ["job.processing"]
    assert messages[0]["job_event_id"] == events[0]["id"]
    assert messages[0]["payload"]["data"]["status"] == "processing"
    assert messages[0]["event_id"].startswith("msg_")


async def test_backwards_and_repeated_moves_change_nothing(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        job_id = await new_job(session)
    assert await move(sessionmaker, job_id, JobStatus.SUCCEEDED)
    for late in (JobStatus.PROCESSING, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.SUBMITTED):
        assert not await move(sessionmaker, job_id, late)
    async with sessionmaker() as session:
        status = (await session.execute(sa.select(jobs.c.status))).scalar_one()
        count = (await session.execute(sa.select(sa.func.count()).select_from(job_events))).scalar()
        completed = (await session.execute(sa.select(jobs.c.completed_at))).scalar_one()
    assert status == JobStatus.SUCCEEDED
    assert count == 1
    assert completed is not None


async def test_the_database_refuses_a_second_event_for_one_status(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        job_id = await new_job(session)
    assert await move(sessionmaker, job_id, JobStatus.SUBMITTED)
    with pytest.raises(IntegrityError):
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.insert(job_events).values(
                    job_id=job_id,
                    from_status=JobStatus.SUBMITTING,
                    to_status=JobStatus.SUBMITTED,
                    source=EventSource.MANUAL,
                )
            )


async def test_a_batch_emits_batch_events(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker.begin() as session:
        batch_id = await new_job(session, JobKind.BATCH)
    assert await move(sessionmaker, batch_id, JobStatus.FINISHED)
    async with sessionmaker() as session:
        types = (await session.execute(sa.select(outbox.c.event_type))).scalars().all()
    assert types == ["batch.finished"]


async def test_many_moves_are_recorded_together_each_with_its_own_event_and_message(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        ids = [await new_job(session) for _ in range(3)]
        await session.execute(
            sa.insert(subscriptions).values(
                id=uuid.uuid4(), url="http://hooks.example/", event_types=["job.*"], secret="x"
            )
        )
    async with sessionmaker.begin() as session:
        locked = [job for job_id in ids if (job := await lock(session, job_id))]
        rows = await record_statuses(
            session,
            [
                Move(locked[0], JobStatus.PROCESSING, EventSource.CALLBACK, {"n": 0}),
                Move(
                    locked[1],
                    JobStatus.SUCCEEDED,
                    EventSource.CALLBACK,
                    {"n": 1},
                    {"media_url": "https://oss.example/1.mp4", "parameters": {"a": "b"}},
                ),
                Move(locked[2], JobStatus.SUBMITTING, EventSource.CALLBACK, {"n": 2}),  # no move
                Move(locked[1], JobStatus.QUEUING, EventSource.CALLBACK, {"n": 3}),  # not as far
            ],
        )
    assert [row["status"] if row else None for row in rows] == [
        JobStatus.PROCESSING,
        JobStatus.SUCCEEDED,
        None,
        JobStatus.SUCCEEDED,
    ]
    async with sessionmaker() as session:
        job_rows = {row["id"]: row for row in (await session.execute(sa.select(jobs))).mappings()}
        events = (await session.execute(sa.select(job_events))).mappings().all()
        messages = {m["job_id"]: m for m in (await session.execute(sa.select(outbox))).mappings()}
        sent = (await session.execute(sa.select(deliveries.c.message_id))).scalars().all()
    assert job_rows[ids[1]]["media_url"] == "https://oss.example/1.mp4"
    assert job_rows[ids[1]]["parameters"] == {"a": "b"}
    assert job_rows[ids[1]]["completed_at"] is not None
    assert job_rows[ids[0]]["parameters"] == {}, "parameters kept when not changed"
    assert job_rows[ids[2]]["status"] == JobStatus.SUBMITTING
    assert sorted((e["job_id"], e["payload"]["n"]) for e in events) == sorted(
        [(ids[0], 0), (ids[1], 1)]
    )
    for event in events:  # each message belongs to its own job's event
        message = messages[event["job_id"]]
        assert message["job_event_id"] == event["id"]
        assert message["payload"]["data"]["id"] == str(event["job_id"])
    assert sorted(sent) == sorted(m["id"] for m in messages.values()), "one delivery each"


async def test_a_move_refuses_changes_to_columns_it_does_not_own(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        job_id = await new_job(session)
        job = await lock(session, job_id)
        assert job is not None
        with pytest.raises(ValueError, match="callback_token_hash"):
            await record_statuses(
                session,
                [
                    Move(
                        job,
                        JobStatus.QUEUING,
                        EventSource.CALLBACK,
                        None,
                        {"callback_token_hash": b""},
                    )
                ],
            )
