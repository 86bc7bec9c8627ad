"""Holding leases: short, and renewed while the work they protect goes on.

A job is leased while a worker confirms it, a delivery while a worker sends it. Leases last
``LEASE_SECONDS`` (``core.policies``) and ``LeaseKeeper`` renews those its process holds
every ``HEARTBEAT_SECONDS``, in one transaction for all of them. A process that dies (or
cannot reach the database) stops renewing, so what it held is free for another worker
within ``LEASE_SECONDS`` of its death, not after the longest confirmation or request.

Renewing is not enough to keep two workers from confirming one job at once: a holder that
could not renew in time may find its job taken. So each process has an ``owner`` id that
its job leases carry, and only the holder records ICE's answer (``flows.confirm`` checks
the owner under the job's row lock). A delivery whose lease was taken over is sent again
by the new holder: webhooks are delivered at least once, and twice at a time only when a
sender could not renew for ``LEASE_SECONDS``. docs/architecture.md, Leases, says why
leases and not session locks (a pooler in transaction mode would keep those for ever).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.policies import HEARTBEAT_SECONDS, LEASE_SECONDS
from app.store import deliveries, leases

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews this process's leases while they are held. Uses: the database, and the
    process's ``owner`` id (new for each process unless given)."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], owner: uuid.UUID | None = None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.owner = owner or uuid.uuid4()
        self.seconds = LEASE_SECONDS
        self._jobs: collections.Counter[uuid.UUID] = collections.Counter()
        self._deliveries: collections.Counter[int] = collections.Counter()
        self._beating: asyncio.Task[None] | None = None
        self._failing = False

    async def claim(
        self, session: AsyncSession, due: sa.ColumnElement[bool], *, limit: int
    ) -> list[uuid.UUID]:
        """Lease up to ``limit`` jobs matching ``due`` for this process (``store.leases``)."""
        return await leases.claim(
            session, due, limit=limit, owner=self.owner, lease_seconds=self.seconds
        )

    async def claim_one(self, session: AsyncSession, job_id: uuid.UUID) -> bool:
        """Lease ``job_id`` for this process unless another holds it; whether it is now."""
        return await leases.claim_one(session, job_id, owner=self.owner, lease_seconds=self.seconds)

    async def release(self, session: AsyncSession, job_ids: Sequence[uuid.UUID]) -> None:
        """Give up the leases of ``job_ids`` (in the caller's transaction)."""
        await leases.release(session, job_ids)

    @contextlib.contextmanager
    def holding(
        self, jobs: Iterable[uuid.UUID] = (), deliveries: Iterable[int] = ()
    ) -> Iterator[None]:
        """Keep the leases of ``jobs`` and ``deliveries`` (claimed by this process) alive
        until the block ends."""
        jobs, deliveries = list(jobs), list(deliveries)
        self._jobs.update(jobs)
        self._deliveries.update(deliveries)
        if self._beating is None or self._beating.done():
            # A context of its own: the heartbeat serves every holder, not the first one.
            self._beating = asyncio.create_task(self._beat(), context=contextvars.Context())
        try:
            yield
        finally:
            self._jobs.subtract(jobs)
            self._deliveries.subtract(deliveries)
            self._jobs += collections.Counter()  # drops what is no longer held
            self._deliveries += collections.Counter()

    async def _beat(self) -> None:
        """Renew every ``HEARTBEAT_SECONDS`` while anything is held, then stop."""
        while self._jobs or self._deliveries:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if self._jobs or self._deliveries:
                await self.renew_once()

    async def renew_once(self) -> None:
        """Renew what is held now. A failure is logged once (until a renewal succeeds):
        the leases then expire, and whoever takes the work over does it."""
        job_ids, delivery_ids = list(self._jobs), list(self._deliveries)
        try:
            async with self.sessionmaker.begin() as session:
                if job_ids:
                    await leases.renew(session, self.owner, job_ids, self.seconds)
                if delivery_ids:
                    await deliveries.renew(session, delivery_ids, self.seconds)
        except Exception as exc:
            if not self._failing:
                logger.warning("could not renew the leases this process holds: %s", exc)
            self._failing = True
            return
        self._failing = False

    async def close(self) -> None:
        """Stop renewing (what is still held expires)."""
        beating, self._beating = self._beating, None
        if beating is not None:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
