"""The intake's writer on a real database: group commits, a poisoned batch, a lost
connection, and judging late copies of final jobs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.health import Watch
from app.core.judging import Reply
from app.core.statuses import CallbackOutcome, JobKind, JobStatus
from app.core.tokens import token_hash
from app.flows import intake as intakes
from app.flows.intake import Intake, Received
from app.store.notify import WORK, Waker
from app.store.tables import callbacks as callbacks_table
from app.store.tables import jobs
from tests.helpers.stack import envelope


@pytest.fixture
async def intake(engine: AsyncEngine) -> AsyncIterator[Intake]:
    intake = Intake(engine, Waker(WORK), 5.0, Watch("intake", 11.0))
    try:
        yield intake
    finally:
        await intake.close()


def received(token: str, n: int) -> Received:
    return Received(
        token_hash=token_hash(token),
        body=json.dumps(envelope("job", "Success", Seq=n)).encode(),
        size=0,
        headers={"content-type": "application/json"},
        peer="127.0.0.1",
        request_id=f"request-{n}",
        event_type="ProduceMediaComplete",
        ice_job_id="job",
        ice_status="Success",
        reply=Reply(200, CallbackOutcome.PENDING, ""),
        keep_if_refused=True,
    )


async def test_callbacks_that_arrive_together_are_committed_together(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], intake: Intake
) -> None:
    job_id = await job_with_token(sessionmaker, "tok")
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    owners = await asyncio.gather(
        *(intake.store(received("tok", n)) for n in range(50)),
        intake.store(received("unknown", 0)),
    )
    sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert owners == [job_id] * 50 + [None]
    assert len(statements) == 1, "one statement finds the jobs and stores all"
    async with sessionmaker() as session:
        outcomes = (await session.execute(sa.select(callbacks_table.c.outcome))).scalars()
        assert sorted(outcomes) == ["pending"] * 50 + ["rejected"]
    assert intake.waker.event.is_set(), "the worker in this process is woken"
    intake.waker.event.clear()
    assert await intake.store(received("tok", 7)) == job_id
    assert not intake.waker.event.is_set(), "a duplicate wakes no one"


async def test_a_callback_that_cannot_be_stored_fails_alone(
    sessionmaker: async_sessionmaker[AsyncSession], intake: Intake
) -> None:
    await job_with_token(sessionmaker, "tok")
    poison = dataclasses.replace(received("tok", 99), headers={"x-bad": "\x00"})  # jsonb: no NUL
    results = await asyncio.gather(
        *(intake.store(received("tok", n)) for n in range(5)),
        intake.store(poison),
        *(intake.store(received("tok", n)) for n in range(5, 10)),
        return_exceptions=True,
    )
    assert [isinstance(r, DBAPIError) for r in results] == [False] * 5 + [True] + [False] * 5
    async with sessionmaker() as session:
        stored = await session.execute(sa.select(sa.func.count()).select_from(callbacks_table))
        assert stored.scalar_one() == 10


async def job_with_token(
    sessionmaker: async_sessionmaker[AsyncSession],
    token: str,
    status: JobStatus = JobStatus.SUBMITTED,
    kind: JobKind = JobKind.JOB,
    ice_job_id: str = "job",
) -> uuid.UUID:
    job_id = uuid.uuid4()
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.insert(jobs).values(
                id=job_id,
                kind=kind,
                status=status,
                ice_job_id=ice_job_id,
                callback_token_hash=token_hash(token),
            )
        )
    return job_id


async def test_the_writer_replaces_a_lost_connection(
    sessionmaker: async_sessionmaker[AsyncSession], intake: Intake
) -> None:
    job_id = await job_with_token(sessionmaker, "tok")
    assert await intake.store(received("tok", 1)) == job_id
    async with sessionmaker.begin() as session:  # e.g. PostgreSQL restarted, or a proxy
        await session.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    assert await intake.store(received("tok", 2)) == job_id


def fields(status: str, job: str = "job", event: str = "ProduceMediaComplete") -> dict[str, str]:
    return {"event_type": event, "ice_job_id": job, "ice_status": status}


async def test_late_callbacks_of_a_job_seen_final_are_judged_as_they_arrive(
    sessionmaker: async_sessionmaker[AsyncSession], intake: Intake
) -> None:
    await job_with_token(sessionmaker, "tok", JobStatus.SUCCEEDED)
    hashed = token_hash("tok")
    assert intake.judge_late(hashed, fields("Success")) is None, "not seen yet"
    await intake.store(received("tok", 1))  # the intake learns the job is final
    judged = {
        status: intake.judge_late(hashed, fields(status))
        for status in ("Success", "Processing", "Failed")
    }
    assert judged == {
        "Success": Reply(200, CallbackOutcome.DUPLICATE, "already succeeded"),
        "Processing": Reply(
            200, CallbackOutcome.STALE, "reports processing, job is already succeeded"
        ),
        "Failed": Reply(200, CallbackOutcome.REJECTED, "reports failed, but ICE says succeeded"),
    }
    other = intake.judge_late(hashed, fields("Success", job="another"))
    assert other is not None
    assert other.outcome == CallbackOutcome.UNMATCHED


async def test_jobs_that_can_still_change_are_never_judged_at_intake(
    sessionmaker: async_sessionmaker[AsyncSession], intake: Intake
) -> None:
    await job_with_token(sessionmaker, "running", JobStatus.PROCESSING, ice_job_id="running")
    await job_with_token(
        sessionmaker, "batch", JobStatus.FINISHED, kind=JobKind.BATCH, ice_job_id="batch"
    )
    for token in ("running", "batch"):
        await intake.store(received(token, 1))
        assert intake.judge_late(token_hash(token), fields("Success")) is None


async def test_the_intake_remembers_a_bounded_number_of_final_jobs(
    sessionmaker: async_sessionmaker[AsyncSession],
    intake: Intake,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(intakes, "FINAL_JOBS_KEPT", 2)
    for token in ("a", "b", "c"):
        await job_with_token(sessionmaker, token, JobStatus.FAILED, ice_job_id=token)
        await intake.store(received(token, 1))
    remembered = [intake.judge_late(token_hash(t), fields("Failed")) for t in ("a", "b", "c")]
    assert [reply is not None for reply in remembered] == [False, True, True]
