"""``Housekeeper``: what each worker does once a minute besides its real work.

It purges what retention lets go (``flows.retention``), folds the recorded changes of
status into the totals the metrics read (``store.counts``) and removes the console's
expired sessions, so that none of them piles up when nobody runs ``icehook purge`` or
scrapes ``/metrics``. Several workers doing it at once
share the work (``SKIP LOCKED``) or find it done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.retention import Purgeable
from app.flows.reporting import log_failure
from app.flows.retention import Purger
from app.store import counts, sessions

logger = logging.getLogger(__name__)

INTERVAL_SECONDS = 60.0
ERROR_PAUSE_SECONDS = 10.0


class Housekeeper:
    """Uses: the database and the ``Purger``."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], purger: Purger) -> None:
        self.sessionmaker = sessionmaker
        self.purger = purger

    async def run_once(self, stopping: asyncio.Event) -> dict[Purgeable, int]:
        """One round; what the purge removed, by kind."""
        async with self.sessionmaker.begin() as session:
            await counts.fold(session)
            await sessions.remove_expired(session)
        return await self.purger.purge(stopping.is_set)

    async def run(self, stopped: asyncio.Event, interval: float = INTERVAL_SECONDS) -> None:
        """Once an ``interval`` until ``stopped`` is set (at once, then); a failure is
        logged and the round tried again after a pause."""
        while not stopped.is_set():
            try:
                await self.run_once(stopped)
                pause = interval
            except Exception:
                log_failure(logger, "housekeeping failed; trying again shortly")
                pause = ERROR_PAUSE_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), pause)
