"""The database after a run: its rows, whether everything settled, and the invariants of the
job history."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.statuses import RANK, JobStatus
from app.store import counts
from app.store.engine import create_engine
from app.store.tables import callbacks as callbacks_table
from app.store.tables import deliveries, job_events, jobs, outbox
from tests.helpers.pooler import POOLED
from tests.helpers.waiting import FINAL


async def rows(database_url: str, statement: sa.Executable) -> list[Any]:
    """``statement``'s rows as mappings, on a connection of its own."""
    engine = create_engine(database_url, pooled=POOLED)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(statement)).mappings())
    finally:
        await engine.dispose()


async def unsettled(database_url: str, sim: httpx.AsyncClient, *, expected: int = 0) -> str:
    """What is not settled yet ("" when nothing): fewer than ``expected`` jobs (not counting
    a batch's sub-jobs), jobs not final, callbacks pending, or callbacks the simulator is
    still sending (each is delivered twice, up to three attempts each: a delivery is done
    when it has a last attempt in the simulator's log)."""
    found = await rows(database_url, sa.select(jobs.c.status, jobs.c.ice_job_id, jobs.c.batch_id))
    if sum(1 for j in found if j["batch_id"] is None) < expected:
        return f"only {len(found)} jobs"
    if busy := Counter(j["status"] for j in found if j["status"] not in FINAL):
        return f"jobs not final: {dict(busy)}"
    status = callbacks_table.c.outcome
    if pending := await rows(database_url, sa.select(status).where(status == "pending")):
        return f"{len(pending)} callbacks pending"
    ended = {
        (c["job_id"], c["delivery"])
        for c in (await sim.get("/_sim/callbacks")).json()["callbacks"]
        if c["response_status"] == 200 or c["attempt"] in (0, 3)
    }
    if sending := [
        j["ice_job_id"] for j in found for d in (1, 2) if (j["ice_job_id"], d) not in ended
    ]:
        return f"the simulator is still sending callbacks of {len(sending)} jobs"
    return ""


async def wait_until_settled(
    database_url: str, sim: httpx.AsyncClient, *, expected: int = 0, seconds: float = 120
) -> None:
    """Until ``unsettled`` finds nothing; an AssertionError saying what is left after
    ``seconds``."""
    left = "not looked yet"
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while left:
                await asyncio.sleep(0.5)
                left = await unsettled(database_url, sim, expected=expected)
            return
    raise AssertionError(f"not settled after {seconds} s: {left}")


async def check_history(
    database_url: str, all_jobs: Sequence[Mapping[str, Any]]
) -> dict[uuid.UUID, list[Any]]:
    """The invariants of the job history: one event per transition, in a forward chain that
    starts at ``submitting`` and ends at the job's status, exactly one outbox message per
    event, and status totals (``store.counts``) equal to counting the tables. Returns each
    job's chain of events."""
    events = await rows(database_url, sa.select(job_events).order_by(job_events.c.id))
    twice = [k for k, n in Counter((e["job_id"], e["to_status"]) for e in events).items() if n > 1]
    assert not twice, f"a transition recorded twice: {twice}"
    chains: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for event in events:
        chains[event["job_id"]].append(event)
    for job in all_jobs:
        chain = chains[job["id"]]
        assert chain, f"job {job['id']} has no events"
        previous = JobStatus.SUBMITTING  # every job starts there, without an event
        for event in chain:
            assert event["from_status"] == previous, f"job {job['id']}: {chain}"
            assert RANK[JobStatus(event["to_status"])] > RANK[previous], chain
            previous = JobStatus(event["to_status"])
        assert previous == job["status"], chain
    messages = await rows(database_url, sa.select(outbox))
    per_event = Counter(m["job_event_id"] for m in messages)
    assert per_event == Counter(e["id"] for e in events), "exactly one outbox message per event"
    per_type = Counter((m["job_id"], m["event_type"]) for m in messages)
    assert not [k for k, n in per_type.items() if n > 1]
    await check_status_counts(database_url)
    return chains


async def check_status_counts(database_url: str) -> None:
    """The totals the metrics read equal the tables counted, in one snapshot."""
    engine = create_engine(database_url, pooled=POOLED)
    try:
        async with engine.connect() as connection:
            conn = await connection.execution_options(isolation_level="REPEATABLE READ")
            session = AsyncSession(bind=conn)
            kept = await counts.by_status(session)
            for name, table in (("jobs", jobs), ("deliveries", deliveries)):
                statuses = sa.select(table.c.status, sa.func.count()).group_by(table.c.status)
                counted = {status: n for status, n in await conn.execute(statuses)}
                assert {s: n for s, n in kept[name].items() if n} == counted, name
    finally:
        await engine.dispose()
