"""Finding jobs: the search box (``q``) and the UserData filters, against PostgreSQL, and
the plan PostgreSQL chooses for a UserData value among many jobs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.queries import JobQuery, search_terms
from app.core.statuses import JobKind, JobStatus
from app.store import audit, tables

NOW = datetime.now(UTC)


async def _job(session: AsyncSession, n: int, **columns: Any) -> uuid.UUID:
    job_id = uuid.uuid4()
    await session.execute(
        sa.insert(tables.jobs).values(
            id=job_id,
            kind=JobKind.JOB,
            status=JobStatus.SUCCEEDED,
            created_at=NOW - timedelta(minutes=100 - n),
            **columns,
        )
    )
    return job_id


async def _found(
    sessionmaker: async_sessionmaker[AsyncSession], q: str | None = None, **query: Any
) -> list[uuid.UUID]:
    if q is not None:
        text, user_data = search_terms(q)
        query |= {"text": text, "user_data": (*user_data, *query.get("user_data", ()))}
    async with sessionmaker() as session:
        page = await audit.jobs(session, JobQuery(**query))
    return [row["id"] for row in page.rows]


async def test_the_search_box_finds_a_job_by_either_id_a_project_or_a_user_data_value(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        first = await _job(
            session,
            1,
            ice_job_id="a" * 32,
            project_id="p-1",
            user_data={"tenant": "acme", "order": 42, "ratio": 4.5},
        )
        second = await _job(
            session,
            2,
            ice_job_id="b" * 32,
            project_id="p-1",
            user_data={"tenant": "acme", "order": "42"},
        )
        third = await _job(
            session, 3, project_id="p-2", user_data={"tenant": "umbrella", "nested": {"a": 1}}
        )
    assert await _found(sessionmaker, str(third)) == [third]
    assert await _found(sessionmaker, "a" * 32) == [first]
    assert await _found(sessionmaker, "p-1") == [second, first]  # newest first
    assert await _found(sessionmaker, "tenant=acme") == [second, first]
    # A number matches the string that spells it, and a number equal to it.
    assert await _found(sessionmaker, "order=42") == [second, first]
    assert await _found(sessionmaker, "ratio=4.50") == [first]
    assert await _found(sessionmaker, "order=042") == []  # not a JSON number: only the text
    # Every filter given must match.
    assert await _found(sessionmaker, "tenant=acme", user_data=(("order", "42"),)) == [
        second,
        first,
    ]
    assert await _found(sessionmaker, "p-1", user_data=(("tenant", "umbrella"),)) == []
    assert await _found(sessionmaker, user_data=(("tenant", "umbrella"),)) == [third]
    # Nothing matches by accident: a nested value, a missing key, a value of another type.
    for missing in ("nested=1", "a=1", "tenant=ACME", "p-3", str(uuid.uuid4()), "order=42.5"):
        assert await _found(sessionmaker, missing) == [], missing
    # A later page of a project's jobs.
    async with sessionmaker() as session:
        page = await audit.jobs(session, JobQuery(text="p-1", limit=1))
        assert page.more
        last = page.rows[-1]
        later = await audit.jobs(
            session, JobQuery(text="p-1", limit=1, cursor=(last["created_at"], last["id"]))
        )
    assert [row["id"] for row in later.rows] == [first]


async def test_a_common_value_and_a_rare_one_each_come_newest_first_among_many_jobs(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.text(
                "INSERT INTO jobs (id, kind, status, user_data, created_at) "
                "SELECT gen_random_uuid(), 'job', 'succeeded', "
                "jsonb_build_object('order_id', n, 'tenant', 'tenant-' || n % 97) "
                '|| CASE WHEN n > 19500 THEN \'{"legacy": true, "era": "old"}\' '
                "ELSE '{}' END::jsonb, "
                "now() - n * interval '1 second' FROM generate_series(1, 20000) AS n"
            )
        )
        await session.execute(sa.text("ANALYZE jobs"))

    async def expected(condition: str) -> list[uuid.UUID]:
        async with sessionmaker() as session:
            found = await session.execute(
                sa.text(
                    f"SELECT id FROM jobs WHERE {condition} "  # noqa: S608 (the test's own)
                    "ORDER BY created_at DESC, id DESC LIMIT 50"
                )
            )
            return list(found.scalars())

    # Common: 206 jobs, about 100 of them among the newest (found in order).
    assert await _found(sessionmaker, "tenant=tenant-5") == await expected(
        "user_data->>'tenant' = 'tenant-5'"
    )
    # Rare: one job (all of them found through the index on user_data, then sorted).
    assert len(await _found(sessionmaker, "order_id=1234")) == 1
    # Between: 500 jobs, all older than the newest 10,000 (every one found through the
    # index, then sorted): a full page, and more.
    assert await _found(sessionmaker, "era=old") == await expected("user_data ? 'era'")
    async with sessionmaker() as session:
        page = await audit.jobs(session, JobQuery(user_data=(("era", "old"),)))
    assert page.more
    # Where the index answers, it is the index on user_data that does.
    async with sessionmaker.begin() as session:
        await session.execute(sa.text("SET LOCAL enable_indexscan = off"))
        await session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        explain = (
            "EXPLAIN SELECT id FROM jobs WHERE user_data @> '{\"order_id\": 1234}' "
            "ORDER BY created_at DESC, id DESC LIMIT 51"
        )
        plan = (await session.execute(sa.text(explain))).scalars().all()
    assert any("ix_jobs_user_data" in line for line in plan), plan
