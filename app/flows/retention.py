"""Purging what retention lets go (``core.retention``): in every worker once a minute
(``flows.housekeeping``), and on demand with ``icehook purge``.

A purge takes each kind in turn: it records the kind's new horizon (so an audit view says
what may be gone from then on), then deletes ``BATCH_ROWS`` records at a time, each batch
in its own short transaction (``store.retention``). After each batch it rests twice as
long as the batch took, so a large first purge (a window just shortened, a database that
ran without one) uses at most a third of one database connection's time, and the intake
keeps its latency (``python -m bench.retention``: p99 1.27x with a purge against without;
with batches of 500 and equal rests it was 2.05x).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.retention import Cutoffs, Purgeable, cutoffs
from app.store import retention

logger = logging.getLogger(__name__)

BATCH_ROWS = 100
# After each batch a purge rests this many times as long as the batch took.
REST_FACTOR = 2.0


class Purger:
    """Uses: the database, and the two retention windows in seconds (``math.inf``:
    forever)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        retention_seconds: float,
        history_seconds: float,
        batch_rows: int = BATCH_ROWS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.retention_seconds = retention_seconds
        self.history_seconds = history_seconds
        self.batch_rows = batch_rows
        self.clock = clock

    def cutoffs(self) -> Cutoffs:
        return cutoffs(self.clock(), self.retention_seconds, self.history_seconds)

    async def count(self) -> dict[Purgeable, int]:
        """What a purge would remove now, by kind (``icehook purge --dry-run``)."""
        async with self.sessionmaker() as session:
            return {
                kind: await retention.count(session, kind, before)
                for kind, before in self.cutoffs().items()
            }

    async def purge(self, stopping: Callable[[], bool] = lambda: False) -> dict[Purgeable, int]:
        """Remove what the windows let go, by kind, until there is no more or ``stopping``
        says so; how many of each were removed."""
        loop = asyncio.get_running_loop()
        removed: dict[Purgeable, int] = {}
        for kind, before in self.cutoffs().items():
            async with self.sessionmaker.begin() as session:
                await retention.mark(session, kind, before)
            removed[kind] = 0
            while not stopping():
                started = loop.time()
                async with self.sessionmaker.begin() as session:
                    taken = await retention.purge_some(session, kind, before, self.batch_rows)
                removed[kind] += taken
                if taken < self.batch_rows:
                    break
                await asyncio.sleep(REST_FACTOR * (loop.time() - started))
            if removed[kind]:
                logger.info("purged %d %s from before %s", removed[kind], kind, before.isoformat())
        return removed
