"""Claiming work with a lease, and waking workers early.

A unit of work is a job: confirming it with ICE because callbacks arrived for it, or
because the sweeper found it stale. ``claim_jobs`` leases jobs in a short transaction
(``FOR UPDATE SKIP LOCKED``), so several workers never confirm one job at the same time,
and several callbacks of one job cost one ICE call. A worker that dies holds its lease
until it expires; then another worker claims the job again.

NOTIFY only wakes workers early; they also poll, which keeps them correct if a
notification is lost. Jobs to confirm (``WORK``) and webhooks to send (``DELIVERIES``)
have a channel each, so that neither loop is woken for the other's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import jobs

WORK = "icehook_work"
DELIVERIES = "icehook_deliveries"
PING_SECONDS = 5.0  # a listening connection is checked this often


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
        .with_for_update(skip_locked=True, key_share=True)
        .cte("picked")
    )
    result = await session.execute(
        sa.update(jobs)
        .where(jobs.c.id.in_(sa.select(picked.c.id)))
        .values(lease_until=sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds))
        .returning(jobs.c.id)
    )
    return list(result.scalars())


def release(*job_ids: uuid.UUID) -> sa.Update:
    return sa.update(jobs).where(jobs.c.id.in_(job_ids)).values(lease_until=None)


def notify(channel: str) -> sa.FunctionElement[Any]:
    """The SQL that wakes every process listening on ``channel`` when its transaction
    commits.

    PostgreSQL sends a transaction's notifications at its commit, and folds identical ones
    into one: a transaction that stores many callbacks wakes each worker once.
    """
    return sa.func.pg_notify(channel, "")


class Waker:
    """What a loop sleeps on: set by NOTIFY on ``channel`` (``listen``), or by ``wake`` in
    this process."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.event = asyncio.Event()

    def wake(self) -> None:
        self.event.set()

    async def listen(
        self, database_url: str, stop: Callable[[], bool], statement_seconds: float
    ) -> None:
        """Set ``event`` on every NOTIFY until ``stop()``; reconnects after errors.

        The connection is idle between notifications, so nothing would notice if its peer
        vanished: it is asked ``SELECT 1`` every ``PING_SECONDS`` and replaced when it does
        not answer (each wait within ``statement_seconds``). Meanwhile the loops still poll.
        """
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
        while not stop():
            try:
                conn = await asyncpg.connect(
                    dsn, timeout=statement_seconds, command_timeout=statement_seconds
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(1)
                continue
            try:
                await conn.add_listener(self.channel, lambda *_: self.event.set())
                self.event.set()  # what was notified while it was not listening
                next_ping = asyncio.get_running_loop().time() + PING_SECONDS
                while not stop() and not conn.is_closed():
                    await asyncio.sleep(0.5)
                    if asyncio.get_running_loop().time() >= next_ping:
                        await conn.fetchval("SELECT 1")
                        next_ping = asyncio.get_running_loop().time() + PING_SECONDS
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass  # TimeoutError is an OSError: a new connection, after a pause
            finally:
                with contextlib.suppress(Exception):  # on failure, asyncpg aborts it
                    await conn.close(timeout=1)
            if not stop():
                await asyncio.sleep(1)

    async def wait(self, seconds: float) -> None:
        """Until woken or ``seconds`` pass."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.event.wait()
        self.event.clear()
