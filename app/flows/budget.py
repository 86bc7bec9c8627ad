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

    Uses: the engine and ``fallback``, this process's own pace, for when the database does
    not answer: ICE then throttles what is too much, and a throttled call is tried again
    (``IceClient``), so a call is never refused for it.

    The budget is one row that every process updates, so its updates queue behind each
    other's row lock. One statement per call capped every process together at about 150
    ICE calls a second on the test machine, whatever the number of workers
    (``python -m bench.scale``). So the callers of one process that wait at the same time
    reserve their slots together, in one statement for all of them, as a group commit
    does: while one reservation is under way the next callers gather, and the next
    reservation takes them all. No slot is reserved for a caller that is not waiting.
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
        # reservation (but behind a transaction pooler).
        self.engine = autocommitting(engine)
        self.name = name
        self.interval = 1.0 / rate
        self.fallback = fallback
        self.sleep = sleep
        # Each waiting caller's future: the seconds until its slot, or None to pace alone.
        self._waiting: list[asyncio.Future[float | None]] = []
        self._reserving: asyncio.Task[None] | None = None

    async def wait(self) -> None:
        """Until this process's next call named ``name`` may go."""
        slot: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        self._waiting.append(slot)
        if self._reserving is None or self._reserving.done():
            self._reserving = asyncio.create_task(self._reserve())
        wait = await slot
        if wait is None:
            await self.fallback.wait()
        elif wait > 0:
            await self.sleep(wait)

    async def _reserve(self) -> None:
        """Reserve slots for every waiting caller, round after round, until none waits."""
        taken: list[asyncio.Future[float | None]] = []
        try:
            while self._waiting:
                taken, self._waiting = self._waiting, []
                first: float | None
                try:
                    async with self.engine.connect() as connection:
                        first = await budgets.take(
                            connection, self.name, self.interval, count=len(taken)
                        )
                except (SQLAlchemyError, OSError, TimeoutError) as exc:
                    logger.warning(
                        "the shared %s budget is unavailable, pacing alone: %s", self.name, exc
                    )
                    first = None
                for n, slot in enumerate(taken):
                    if not slot.done():
                        slot.set_result(None if first is None else first + n * self.interval)
                taken = []
        finally:  # cancelled (the process is stopping): no caller may wait forever
            for slot in [*taken, *self._waiting]:
                if not slot.done():
                    slot.set_result(None)
