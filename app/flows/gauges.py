"""``DatabaseGauges``: the gauges ``/metrics`` reads from the database, kept current in the
background so that a scrape never waits for the database.

Once a ``REFRESH_SECONDS`` it folds the recorded changes of status into their totals and
reads them (``store.counts``), with the oldest pending delivery and the submissions of
unknown fate (``store.audit.counts``): a few statements on small tables and index ends,
whatever the size of the database. A scrape then only publishes the last reading, at
most that old; the age of the oldest pending delivery is computed at the scrape itself.
When the database cannot be read, the last reading stays, and the failure is logged once
(not once a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.statuses import JobStatus
from app.flows.reporting import log_failure
from app.store import audit, counts
from app.telemetry import metrics

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0


class DatabaseGauges:
    """Uses: the database."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], interval: float = REFRESH_SECONDS
    ) -> None:
        self.sessionmaker = sessionmaker
        self.interval = interval
        self.reading: audit.Counts | None = None
        self.failing = False  # logged once when reading starts failing, once when it recovers

    async def refresh(self) -> None:
        async with self.sessionmaker.begin() as session:
            await counts.fold(session)
            self.reading = await audit.counts(session)

    def publish(self) -> None:
        """Set the gauges from the last reading (none yet: left as they are)."""
        reading = self.reading
        if reading is None:
            return
        for status in JobStatus:
            metrics.JOBS.labels(status.value).set(reading.jobs.get(status, 0))
        metrics.FATE_UNKNOWN.set(reading.fate_unknown)
        metrics.PENDING_DELIVERIES.set(reading.pending_deliveries)
        for state in metrics.SUBSCRIPTION_STATES:
            metrics.SUBSCRIPTIONS.labels(state).set(reading.subscriptions.get(state, 0))
        oldest = reading.oldest_pending
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        metrics.OLDEST_PENDING.set(age)

    async def run(self, stopped: asyncio.Event) -> None:
        """Refresh once an ``interval`` until ``stopped`` is set."""
        while not stopped.is_set():
            try:
                await self.refresh()
            except Exception:
                if not self.failing:
                    log_failure(logger, "cannot read the metrics' gauges from the database")
                self.failing = True
            else:
                if self.failing:
                    logger.info("reading the metrics' gauges from the database again")
                self.failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), self.interval)
