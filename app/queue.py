"""Claiming work with a lease, and waking workers early.

A unit of work is a job: confirming it with ICE because callbacks arrived for it, or
because the sweeper found it stale. ``claim_jobs`` leases jobs in a short transaction
(``FOR UPDATE SKIP LOCKED``), so several workers never confirm one job at the same time,
and several callbacks of one job cost one ICE call. A worker that dies holds its lease
until it expires; then another worker claims the job again.

NOTIFY only wakes workers early; they also poll, which keeps them correct if a
notification is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.models import jobs

logger = logging.getLogger(__name__)

CHANNEL = "icehook_work"


async def claim_jobs(
    session: AsyncSession,
    due: sa.ColumnElement[bool],
    *,
    limit: int,
    lease_seconds: float,
) -> list[uuid.UUID]:
    """Lease up to ``limit`` jobs matching ``due`` that no one else holds; return their ids."""
    free = sa.or_(jobs.c.lease_until.is_(None), jobs.c.lease_until < sa.func.now())
    picked = (
        sa.select(jobs.c.id)
        .where(due, free)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    result = await session.execute(
        sa.update(jobs)
        .where(jobs.c.id.in_(sa.select(picked.c.id)))
        .values(lease_until=sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds))
        .returning(jobs.c.id)
    )
    return list(result.scalars())


def release(job_id: uuid.UUID) -> sa.Update:
    return sa.update(jobs).where(jobs.c.id == job_id).values(lease_until=None)


class Waker:
    """Wakes workers: at once in this process, and other processes through NOTIFY.

    ``poke`` never blocks and never fails the caller; notifications to other processes are
    coalesced (at most one in flight), since one wake-up is enough to make a worker look.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.event = asyncio.Event()
        self._engine = engine
        self._notifying: asyncio.Task[None] | None = None

    def poke(self) -> None:
        self.event.set()
        if self._notifying is None or self._notifying.done():
            self._notifying = asyncio.create_task(self._notify())

    async def _notify(self) -> None:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(sa.text(f"NOTIFY {CHANNEL}"))
                await conn.commit()
        except Exception:  # a lost wake-up only delays work until the next poll
            logger.warning("could not NOTIFY %s", CHANNEL, exc_info=True)

    async def listen(self, database_url: str, stop: Callable[[], bool]) -> None:
        """Set ``event`` on every NOTIFY until ``stop()``; reconnects after errors."""
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
        while not stop():
            try:
                conn = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError):
                await asyncio.sleep(1)
                continue
            try:
                await conn.add_listener(CHANNEL, lambda *_: self.event.set())
                while not stop() and not conn.is_closed():
                    await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def wait(self, seconds: float) -> None:
        """Until poked or ``seconds`` pass."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.event.wait()
        self.event.clear()
