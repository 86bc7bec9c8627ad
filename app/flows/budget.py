"""``SharedBudget``: a pace for ICE calls that all icehook processes on one database keep
together (``store.budgets``)."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.ice.client import RateLimiter, Sleep
from app.store import budgets
from app.store.engine import autocommitting

logger = logging.getLogger(__name__)


class SharedBudget:
    """At most ``rate`` calls per second named ``name``, counted across every process.

    Uses: the engine (one short statement per call) and ``fallback``, this process's own
    pace, for when the database does not answer: ICE then throttles what is too much, and
    a throttled call is tried again (``IceClient``), so a call is never refused for it.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        name: str,
        rate: float,
        *,
        fallback: RateLimiter,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        # The one statement commits itself, with no BEGIN and COMMIT round trips on every
        # ICE call (but behind a transaction pooler).
        self.engine = autocommitting(engine)
        self.name = name
        self.interval = 1.0 / rate
        self.fallback = fallback
        self.sleep = sleep

    async def wait(self) -> None:
        """Until this process's next call named ``name`` may go."""
        try:
            async with self.engine.connect() as connection:
                wait = await budgets.take(connection, self.name, self.interval)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            logger.warning("the shared %s budget is unavailable, pacing alone: %s", self.name, exc)
            await self.fallback.wait()
            return
        if wait > 0:
            await self.sleep(wait)
