"""Judging the callbacks that arrived: a worker step.

``CallbackJudge.run_once`` leases the jobs that have pending callbacks, asks ICE once per
job for all of that job's callbacks, applies ICE's answer, and judges each callback
(``core.judging``). Callbacks that need no ICE call (the job is already at or past what
they report) are judged at once, in the transaction that leased their jobs; the jobs that
need ICE are then confirmed all at once (``Confirmer.confirm_all``), so each is worked on
as soon as it is leased, each in a span that continues the trace of its oldest pending
callback's request.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.judging import Work, verdicts
from app.core.statuses import CallbackOutcome, EventSource, JobKind, JobStatus
from app.flows.confirm import Confirmer
from app.flows.leasing import LeaseKeeper
from app.flows.reporting import log_failure
from app.store import callbacks, jobs
from app.telemetry import metrics

logger = logging.getLogger(__name__)

BATCH = 32  # jobs leased at once


class CallbackJudge:
    """Uses: the database, the process's leases, and the ``Confirmer`` (ICE's word on each
    job)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        leases: LeaseKeeper,
        confirmer: Confirmer,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.leases = leases
        self.confirmer = confirmer

    async def run_once(self, limit: int = BATCH) -> int:
        """Judge the callbacks of up to ``limit`` jobs; returns how many jobs were handled."""
        async with self.sessionmaker.begin() as session:
            ids = await self.leases.claim(session, jobs.with_pending_callbacks(), limit=limit)
            if not ids:
                return 0
            leased = await jobs.work(session, ids)
            settled = [work for work in leased if not work.needs_ice()]
            to_confirm = [work for work in leased if work.needs_ice()]
            if settled:
                await _judge(session, [(work, work.statuses) for work in settled])
                await self.leases.release(session, [work.job["id"] for work in settled])

        by_id = {work.job["id"]: work for work in to_confirm}

        async def judge(
            session: AsyncSession, applied: Sequence[tuple[RowMapping, RowMapping]]
        ) -> None:
            """Judge each job's callbacks by its statuses after ICE was asked."""
            statuses: dict[uuid.UUID, Mapping[str | None, JobStatus]] = {
                after["id"]: {after["ice_job_id"]: JobStatus(after["status"])}
                for _, after in applied
                if after["kind"] == JobKind.JOB
            }
            batches = [after["id"] for _, after in applied if after["kind"] == JobKind.BATCH]
            if batches:  # a batch's sub-jobs may have moved too
                for work in await jobs.work(session, batches, pending=False):
                    statuses[work.job["id"]] = work.statuses
            await _judge(
                session, [(by_id[after["id"]], statuses[after["id"]]) for _, after in applied]
            )

        if to_confirm:
            try:
                await self.confirmer.confirm_all(
                    [work.job for work in to_confirm],
                    EventSource.CALLBACK,
                    after_apply=judge,
                    reported={work.job["id"]: work.reported_ice_job_ids() for work in to_confirm},
                    causes={
                        work.job["id"]: [callback["traceparent"] for callback in work.pending]
                        for work in to_confirm
                    },
                )
            except Exception:  # the leases expire and another pass tries again
                log_failure(logger, "processing callbacks of %d jobs failed", len(to_confirm))
        return len(ids)


async def _judge(
    session: AsyncSession, judged: Iterable[tuple[Work, Mapping[str | None, JobStatus]]]
) -> None:
    """Judge the pending callbacks of each work, given its statuses after ICE was asked."""
    found = []
    for work, after in judged:
        for callback_id, outcome, detail in verdicts(work, after):
            if outcome == CallbackOutcome.UNRECOGNIZED:
                logger.warning("callback %s of job %s %s", callback_id, work.job["id"], detail)
            metrics.CALLBACKS_JUDGED.labels(outcome.value).inc()
            found.append((callback_id, outcome, detail))
    await callbacks.record_verdicts(session, found)
