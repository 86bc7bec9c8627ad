"""Confirming jobs with ICE, the source of truth.

``confirm_all`` asks ICE about leased jobs (outside any transaction), then applies the
answers in one short transaction through the state machine (``store.jobs``); ``confirm``
is the same for one job. Callbacks (``flows.judge``), the API's ``/reconcile`` and the
sweeper all end here. Each job is then scheduled for its next look (``core.policies.
next_check``): after the sweep interval when ICE answered, with backoff when not.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from opentelemetry.trace import Tracer
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.answers import Answer, BatchJob
from app.core.errors import IceError
from app.core.moves import Move, Row, move_for
from app.core.policies import answer_seconds, longest_confirmation_seconds, next_check
from app.core.statuses import EventSource, JobKind, JobStatus
from app.flows.leasing import LeaseKeeper
from app.flows.reporting import log_failure
from app.flows.submit import Submitter
from app.ice.client import IceClient
from app.settings import Settings
from app.store import jobs, leases
from app.store.engine import unavailable
from app.telemetry import tracing

logger = logging.getLogger(__name__)

# Called in confirm_all's transaction, after the answers were applied, with each job's row
# before and after.
AfterApply = Callable[[AsyncSession, Sequence[tuple[RowMapping, RowMapping]]], Awaitable[None]]
Heard = tuple[Answer | None, bool]  # ICE's answer (None: none), and whether ICE was heard


class Asked(NamedTuple):
    """What asking ICE about one job gave: its answer (None: none), whether ICE was heard,
    and the traceparent of the confirmation's span (which its events' webhooks continue)."""

    answer: Answer | None
    heard: bool
    span: str | None


class Confirmer:
    """Asks ICE about jobs and applies what it says. Uses: the database, ICE, the
    ``Submitter`` (a job left ``submitting`` is settled by it), the process's
    ``LeaseKeeper`` (the leases of the jobs it confirms are kept alive meanwhile, and only
    its own are recorded), from the settings ICE's timeout and attempts (how long a
    confirmation may take) and the sweep interval, and a tracer (a span for each job's
    confirmation, and one for recording the answers)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ice: IceClient,
        submitter: Submitter,
        leases: LeaseKeeper,
        settings: Settings,
        rng: random.Random | None = None,
        tracer: Tracer = tracing.NO_TRACER,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.ice = ice
        self.submitter = submitter
        self.leases = leases
        self.tracer = tracer
        self.answer_seconds = answer_seconds(
            settings.ice_timeout_seconds, settings.ice_max_attempts
        )
        self.longest_seconds = longest_confirmation_seconds(
            settings.ice_timeout_seconds, settings.ice_max_attempts
        )
        self.sweep_after = timedelta(seconds=settings.sweep_after_seconds)
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)

    async def fetch_answer(self, job: Row, reported: Sequence[str] = ()) -> Answer:
        """ICE's current word on ``job``; settles a submission whose outcome was unknown
        (``reported``: ICE JobIds its callbacks named)."""
        if job["status"] == JobStatus.SUBMITTING:
            return await self.submitter.settle(job, reported)
        if job["kind"] == JobKind.BATCH:
            return await self.ice.get_batch_media_producing_job(job["ice_job_id"])
        return await self.ice.get_media_producing_job(job["ice_job_id"])

    async def confirm(
        self,
        job_id: uuid.UUID,
        source: EventSource,
        *,
        answer: Answer | None = None,
        after_apply: AfterApply | None = None,
    ) -> RowMapping | None:
        """Confirm one job that the caller has leased, and release the lease.

        ``answer`` is ICE's word when the caller already has it. Returns the job as it is
        now, or None if it no longer exists.
        """
        async with self.sessionmaker() as session:
            job = await jobs.get(session, job_id)
        answers = {job["ice_job_id"]: answer} if answer is not None else {}
        (after,) = await self.confirm_all([job], source, answers=answers, after_apply=after_apply)
        return after

    async def confirm_all(
        self,
        leased: Sequence[Row],
        source: EventSource,
        *,
        answers: Mapping[str, Answer] | None = None,
        before_asking: Callable[[], Awaitable[None]] | None = None,
        after_apply: AfterApply | None = None,
        reported: Mapping[uuid.UUID, Sequence[str]] | None = None,
        causes: Mapping[uuid.UUID, Sequence[str | None]] | None = None,
    ) -> list[RowMapping | None]:
        """Confirm jobs that the caller has leased (their rows), and release the leases.

        ICE is asked about every job at once, outside any transaction (``answers``: ICE's
        word already known, by ICE JobId; ``before_asking`` is awaited before each question,
        e.g. a rate limit); a job's question is given up after ``answer_seconds``, and its
        lease is renewed meanwhile (``flows.leasing``). Then every answer is applied in one
        transaction, for the jobs this process still holds. If that fails
        because of what it holds, each job is tried again in a transaction of its own, so
        one bad job holds up no other. Returns the jobs as they are now, in order (None: a
        job that no longer exists, or failed again). ``reported``: by job id, the ICE JobIds
        its callbacks named (for a job still ``submitting``). ``causes``: by job id, the
        traceparents of what asked for its confirmation (its callbacks' requests), whose
        trace the confirmation's span continues (``telemetry.tracing.continuing``).
        """
        known = answers or {}
        named = reported or {}
        caused = causes or {}

        async def ask(job: Row) -> Asked:
            attributes = {"icehook.job_id": str(job["id"]), "icehook.source": source.value}
            with tracing.continuing(
                self.tracer, "confirm job", caused.get(job["id"], ()), attributes=attributes
            ) as span:
                answer, answered = await ask_ice(job)
                span.set_attribute("icehook.ice_answered", answered)
                return Asked(answer, answered, tracing.traceparent())

        async def ask_ice(job: Row) -> Heard:
            logger.info("confirm start job=%s source=%s", job["id"], source.value)
            if job["ice_job_id"] in known and job["status"] != JobStatus.SUBMITTING:
                return known[job["ice_job_id"]], True
            if before_asking is not None:
                await before_asking()
            try:
                async with asyncio.timeout(self.answer_seconds):
                    return await self.fetch_answer(job, named.get(job["id"], ())), True
            except IceError as exc:
                logger.warning("could not confirm job %s with ICE: %s", job["id"], exc)
            except TimeoutError:
                logger.warning("could not confirm job %s with ICE: no answer in time", job["id"])
            except Exception:  # one job's surprise must not fail the others asked with it
                logger.exception("could not confirm job %s with ICE", job["id"])
            return None, False

        with self.leases.holding(jobs=[job["id"] for job in leased]):
            asked = await asyncio.gather(*(ask(job) for job in leased))
            spans = [one.span for one in asked]
            with tracing.continuing(self.tracer, "record ICE's answers", spans):
                return await self._apply(leased, asked, source, after_apply)

    async def _apply(
        self,
        leased: Sequence[Row],
        asked: Sequence[Asked],
        source: EventSource,
        after_apply: AfterApply | None,
    ) -> list[RowMapping | None]:
        """Apply every answer in one transaction, or each alone if that fails because of
        what it holds (see ``confirm_all``)."""
        try:
            async with self.sessionmaker.begin() as session:
                return await self._apply_all(session, leased, asked, source, after_apply)
        except Exception as exc:
            if len(leased) == 1 or unavailable(exc):
                raise  # alone, each would fail the same way: their leases expire
            logger.exception("confirming %d jobs together failed; trying each alone", len(leased))
        results: list[RowMapping | None] = []
        for job, one in zip(leased, asked, strict=True):
            try:
                async with self.sessionmaker.begin() as session:
                    results += await self._apply_all(session, [job], [one], source, after_apply)
            except Exception:  # its lease expires and it is confirmed again later
                log_failure(logger, "confirming job %s failed", job["id"])
                results.append(None)
        return results

    async def _apply_all(
        self,
        session: AsyncSession,
        leased: Sequence[Row],
        asked: Sequence[Asked],
        source: EventSource,
        after_apply: AfterApply | None,
    ) -> list[RowMapping | None]:
        ids = [job["id"] for job in leased]
        locked, lost = await self._still_held(session, ids)
        moves: list[Move] = []
        for job_id, (answer, _, span) in zip(ids, asked, strict=True):
            if job_id in locked and answer is not None:
                moves += await self._moves(session, locked[job_id], answer, source, span)
        moved = {row["id"]: row for row in await jobs.record_statuses(session, moves) if row}
        results: list[RowMapping | None] = []
        applied = []
        checks = []
        now = datetime.now(UTC)
        for job_id, (_, answered, _) in zip(ids, asked, strict=True):
            before = locked.get(job_id)
            if before is None:
                logger.info(
                    "confirm end job=%s status=%s", job_id, "lost" if job_id in lost else "gone"
                )
                results.append(None)
                continue
            after = moved.get(job_id, before)
            applied.append((before, after))
            check = next_check(
                JobStatus(after["status"]),
                after["check_count"],
                heard=answered,
                sweep_after=self.sweep_after,
                now=now,
                rng=self.rng,
            )
            checks.append({"id": job_id, **check})
            results.append(after)
        if after_apply is not None and applied:
            await after_apply(session, applied)
        await leases.schedule(session, checks)
        for job_id, job in zip(ids, results, strict=True):
            if job is not None:
                # Logged before the commit releases the lease, so the logs never show two overlap.
                logger.info("confirm end job=%s status=%s", job_id, job["status"])
        return results

    async def _still_held(
        self, session: AsyncSession, ids: Sequence[uuid.UUID]
    ) -> tuple[dict[uuid.UUID, RowMapping], set[uuid.UUID]]:
        """The rows of the jobs ``ids`` that still exist and are still leased by this process,
        locked; and the ids of those whose lease another process took (this one could not
        renew it in time): they are that process's now, and the answer this one got is not
        recorded."""
        locked = await jobs.lock_all(session, ids)
        lost = {job_id for job_id, row in locked.items() if row["lease_owner"] != self.leases.owner}
        for job_id in lost:
            logger.warning("the lease of job %s was taken over: its answer is not recorded", job_id)
            del locked[job_id]
        return locked, lost

    async def _moves(
        self,
        session: AsyncSession,
        job: RowMapping,
        answer: Answer,
        source: EventSource,
        span: str | None,
    ) -> list[Move]:
        """What ICE's answer about ``job`` (locked) means: the moves of a batch's sub-jobs
        (created and locked the first time they are seen), then the job's own; each
        observed by the confirmation ``span``."""
        planned: list[Move | None] = []
        if isinstance(answer, BatchJob):
            for sub in answer.sub_jobs:
                row = await jobs.lock_sub_job(session, job["id"], sub.job_id, sub.project_id)
                planned.append(move_for(row, JobKind.JOB, sub, source, span))
            planned.append(move_for(job, JobKind.BATCH, answer, source, span))
        else:
            planned.append(move_for(job, JobKind.JOB, answer, source, span))
        if planned[-1] is None:
            logger.warning(
                "ICE status %r of job %s is not one icehook knows", answer.status, job["id"]
            )
        return [move for move in planned if move is not None]
