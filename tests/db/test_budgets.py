"""ICE call budgets shared through PostgreSQL: every taker, whatever its process, gets a
slot of its own, one interval after the last."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.flows.budget import SharedBudget
from app.ice.client import RateLimiter
from app.store import budgets
from app.store.engine import create_engine
from app.store.tables import ice_budgets

INTERVAL = 1 / 30


async def _take(engine: AsyncEngine) -> float:
    async with engine.connect() as connection:
        return await budgets.take(connection, "ice-submit", INTERVAL)


async def test_takers_on_two_engines_share_one_budget(
    engine: AsyncEngine, database_url: str
) -> None:
    other = create_engine(database_url)  # as if another process
    try:
        async with engine.connect() as connection:
            started = (await connection.execute(sa.select(sa.func.clock_timestamp()))).scalar_one()
        waits = await asyncio.gather(*(_take(e) for _ in range(30) for e in (engine, other)))
        async with engine.connect() as connection:
            next_at = (await connection.execute(sa.select(ice_budgets.c.next_at))).scalar_one()
    finally:
        await other.dispose()
    # 60 slots one interval apart, from no earlier than the first take: two seconds' worth.
    assert next_at - started >= timedelta(seconds=60 * INTERVAL)
    assert sum(wait > 10 * INTERVAL for wait in waits) > 30  # most wait for their turn
    assert min(waits) <= INTERVAL  # the first goes at once


async def test_a_budget_whose_database_is_gone_paces_alone() -> None:
    unreachable = create_engine("postgresql://nobody@127.0.0.1:9/none", timeout=1)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    fallback = RateLimiter(10, clock=lambda: 0.0, sleep=sleep)
    budget = SharedBudget(unreachable, "ice-read", 10, fallback=fallback, sleep=sleep)
    try:
        for _ in range(3):
            await budget.wait()
    finally:
        await unreachable.dispose()
    assert slept == [0.1, 0.2]  # the fallback's spacing: a call is never refused for it


async def test_a_shared_budget_commits_each_slot_it_takes(engine: AsyncEngine) -> None:
    """On its autocommit connection each slot is committed at once: another connection sees
    the budget moved on by one interval per call."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    fallback = RateLimiter(1, sleep=sleep)
    budget = SharedBudget(engine, "ice-read", 1, fallback=fallback, sleep=sleep)
    await budget.wait()
    await budget.wait()
    async with engine.connect() as connection:
        next_at, now = (
            await connection.execute(sa.select(ice_budgets.c.next_at, sa.func.clock_timestamp()))
        ).one()
    assert next_at - now > timedelta(seconds=1.5)  # two slots of one second, the second ahead
    assert len(slept) == 1  # the first went at once
    assert slept[0] > 0.5  # the second waited for its slot


async def test_callers_waiting_together_reserve_their_slots_in_one_statement(
    engine: AsyncEngine,
) -> None:
    """A hundred calls of one process at once: each gets a slot of its own, one interval
    after another, and they take only a few statements (one row that every process updates
    must not be updated once per call)."""
    statements: list[str] = []
    sa.event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: statements.append(statement),
    )
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    fallback = RateLimiter(1000, sleep=sleep)
    budget = SharedBudget(engine, "ice-read", 1 / INTERVAL, fallback=fallback, sleep=sleep)
    await asyncio.gather(*(budget.wait() for _ in range(100)))
    takes = [s for s in statements if "ice_budgets" in s]
    assert 1 <= len(takes) <= 3
    # A hundred slots, one interval apart: 99 callers sleep, each a different time.
    assert len(slept) == 99
    spacing = [b - a for a, b in zip(sorted(slept), sorted(slept)[1:], strict=False)]
    assert all(abs(gap - INTERVAL) < 0.05 * INTERVAL for gap in spacing)
    async with engine.connect() as connection:
        reserved = (await connection.execute(sa.select(ice_budgets.c.next_at))).scalar_one()
        now = (await connection.execute(sa.select(sa.func.clock_timestamp()))).scalar_one()
    assert reserved - now > timedelta(seconds=90 * INTERVAL)
