"""The sweeper: ICE drops a callback after three failed tries, so icehook never relies on one.

It claims jobs that are not terminal and have not been heard from for
``ICEHOOK_SWEEP_AFTER_SECONDS`` (``store.jobs.sweep_due``). When many are due it pages
through ``List*`` (100 jobs a call) instead of one ``Get`` per job, within the sweep's QPS
budget. A job whose check fails (ICE errors, or does not know the job) is checked again
with exponential backoff (``core.policies.next_check``).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.answers import Answer
from app.core.errors import IceError
from app.core.health import Watch
from app.core.statuses import TERMINAL_STATUSES, EventSource, JobKind, JobStatus, status_from_ice
from app.flows.confirm import Confirmer
from app.flows.leasing import LeaseKeeper
from app.flows.reporting import log_failure
from app.ice.client import IceClient, RateLimiter
from app.store import jobs

logger = logging.getLogger(__name__)

BULK_THRESHOLD = 10  # due jobs (of one kind) from which the sweeper lists instead of getting each


@dataclass
class Sweeper:
    """Finds stale jobs and confirms them, within ``budget`` ICE calls per second.

    One pass lists ICE's jobs once for everything due (when enough is due), then claims
    the due jobs ``chunk`` at a time and confirms each chunk at once: a job is leased only
    when it is worked on, so its lease cannot run out while it waits for its turn.
    """

    sessionmaker: async_sessionmaker[AsyncSession]
    ice: IceClient
    leases: LeaseKeeper
    confirmer: Confirmer
    budget: RateLimiter
    chunk: int = 16
    most_per_pass: int = 20_000
    # Told of every chunk and List page, so that a long sweep is not taken for a wedged one.
    progress: Watch = field(default_factory=lambda: Watch("sweep", math.inf))

    async def run_once(self) -> int:
        """One pass over the jobs now due; returns how many were checked."""
        async with self.sessionmaker() as session:
            due = await jobs.due_for_sweep(session, self.most_per_pass)
        if not due:
            return 0
        listed = await self._list_answers(due)
        checked = 0

        while checked < len(due):
            self.progress.progress()
            async with self.sessionmaker.begin() as session:
                ids = await self.leases.claim(session, jobs.sweep_due(), limit=self.chunk)
                if not ids:
                    break
                rows = await jobs.get_all(session, ids)
            try:
                await self.confirmer.confirm_all(
                    rows,
                    EventSource.SWEEP,
                    answers=listed,
                    before_asking=self.budget.wait,
                )
            except Exception:  # their leases expire; a later pass tries again
                log_failure(logger, "sweeping %d jobs failed", len(rows))
            checked += len(rows)
        return checked

    async def _before_list(self) -> None:
        await self.budget.wait()
        self.progress.progress()

    async def _list_answers(self, rows: Sequence[RowMapping]) -> dict[str, Answer]:
        """ICE's word on many due jobs at once, by paging through List (100 per call)."""
        answers: dict[str, Answer] = {}
        for kind in (JobKind.JOB, JobKind.BATCH):
            wanted = {
                r["ice_job_id"]: r["created_at"]
                for r in rows
                if r["kind"] == kind and r["ice_job_id"] and r["status"] != JobStatus.SUBMITTING
            }
            if len(wanted) < BULK_THRESHOLD:
                continue
            try:
                answers |= await self._page_through(kind, wanted)
            except IceError as exc:
                logger.warning("listing %s jobs failed, getting them one by one: %s", kind, exc)
        return answers

    async def _page_through(
        self, kind: JobKind, wanted: Mapping[str, datetime]
    ) -> dict[str, Answer]:
        found: dict[str, Answer] = {}
        start = min(wanted.values()) - timedelta(minutes=1)
        end = datetime.now(UTC) + timedelta(minutes=1)
        listed = self.ice.listed(kind, start, end, before_each=self._before_list)
        async with contextlib.aclosing(listed) as items:
            async for item in items:
                if item.job_id in wanted:
                    found[item.job_id] = item
                    if len(found) == len(wanted):
                        break
        if kind == JobKind.BATCH:
            # List answers carry no SubJobList: a finished batch is fetched whole by confirm.
            found = {
                job_id: answer
                for job_id, answer in found.items()
                if status_from_ice(JobKind.BATCH, answer.status) not in TERMINAL_STATUSES
            }
        return found
