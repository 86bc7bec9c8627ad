"""Confirming jobs with ICE, the source of truth: one job at a time, and the sweeper.

``confirm_all`` asks ICE about leased jobs (outside any transaction), then applies the
answers in one short transaction through the state machine; ``confirm`` is the same for
one job. Callbacks, the API's ``/reconcile`` and the sweeper all end here.

The sweeper claims jobs that are not terminal and have not been heard from for
``ICEHOOK_SWEEP_AFTER_SECONDS``. When many are due it pages through ``List*`` (100 jobs a
call) instead of one ``Get`` per job, within the sweep's QPS budget. A job whose check
fails (ICE errors, or does not know the job) is checked again with exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import db, submission
from app.errors import IceError, database_unreachable, log_failure
from app.ice import BatchJob, MediaProducingJob, RateLimiter
from app.jobs import Move, record_statuses, status_from_ice
from app.lifecycle import Watch
from app.models import TERMINAL_STATUSES, EventSource, JobKind, JobStatus, jobs
from app.queue import claim_jobs

if TYPE_CHECKING:
    from app.main import Runtime

logger = logging.getLogger(__name__)

Answer = MediaProducingJob | BatchJob
# Called in confirm_all's transaction, after the answers were applied, with each job's row
# before and after.
AfterApply = Callable[[AsyncSession, Sequence[tuple[RowMapping, RowMapping]]], Awaitable[None]]

BULK_THRESHOLD = 10  # due jobs (of one kind) from which the sweeper lists instead of getting each
MAX_BACKOFF = timedelta(hours=1)
LIST_SPAN = timedelta(days=29)  # ICE refuses List windows longer than 30 days


def lease_seconds(rt: Runtime) -> float:
    """Longer than the slowest confirmation (``answer_seconds``)."""
    return answer_seconds(rt) + 10


def answer_seconds(rt: Runtime) -> float:
    """How long getting ICE's word on one job may take: every ICE attempt running to its
    deadline, plus backoff. A job still waiting then is given up (and checked again later),
    so no confirmation outlives its lease."""
    settings = rt.settings
    return settings.ice_timeout_seconds * settings.ice_max_attempts + 20


# -- applying ICE's answer ----------------------------------------------------------------


async def plan_moves(
    session: AsyncSession, job: RowMapping, answer: Answer, source: EventSource
) -> list[Move]:
    """What ICE's answer about ``job`` (locked) means: the moves of a batch's sub-jobs
    (created, locked, the first time they are seen), then the job's own."""
    moves = []
    if isinstance(answer, BatchJob):
        for sub in answer.sub_jobs:
            moves += _move(await _lock_sub_job(session, job["id"], sub), JobKind.JOB, sub, source)
        return moves + _move(job, JobKind.BATCH, answer, source)
    return _move(job, JobKind.JOB, answer, source)


def _move(job: RowMapping, kind: JobKind, answer: Answer, source: EventSource) -> list[Move]:
    """The move ICE's answer makes of ``job`` (none: a status icehook does not know)."""
    to_status = status_from_ice(kind, answer.status)
    if to_status is None:
        logger.warning("ICE status %r of job %s is not one icehook knows", answer.status, job["id"])
        return []
    changes: dict[str, Any] = {
        "ice_status": answer.status,
        "ice_job_id": answer.job_id or job["ice_job_id"],
        "error_code": answer.code,
        "error_message": answer.message,
    }
    if job["status"] == JobStatus.SUBMITTING and "UserData" in job["parameters"]:
        changes["parameters"] = submission.redacted(job["parameters"])
    if isinstance(answer, MediaProducingJob):
        changes |= {
            "project_id": answer.project_id or job["project_id"],
            "media_id": answer.media_id,
            "media_url": answer.media_url,
        }
    # ICE's answer repeats UserData, whose NotifyAddress holds the callback token.
    payload = submission.redacted(answer.raw) if "UserData" in answer.raw else answer.raw
    return [Move(job, to_status, source, payload, changes)]


async def _lock_sub_job(
    session: AsyncSession, batch_id: uuid.UUID, sub: MediaProducingJob
) -> RowMapping:
    """The sub-job's row, locked; created the first time it is seen."""
    await session.execute(
        pg_insert(jobs)
        .values(
            id=uuid.uuid4(),
            kind=JobKind.JOB,
            status=JobStatus.SUBMITTING,
            ice_job_id=sub.job_id,
            project_id=sub.project_id,
            batch_id=batch_id,
        )
        .on_conflict_do_nothing(index_elements=[jobs.c.ice_job_id])
    )
    return (
        (
            await session.execute(
                sa.select(jobs)
                .where(jobs.c.ice_job_id == sub.job_id)
                .with_for_update(key_share=True)
            )
        )
        .mappings()
        .one()
    )


# -- one job --------------------------------------------------------------------------------


async def fetch_answer(rt: Runtime, job: RowMapping) -> Answer:
    """ICE's current word on ``job``; settles a submission whose outcome was unknown."""
    if job["status"] == JobStatus.SUBMITTING:
        return await submission.settle(rt, job)
    if job["kind"] == JobKind.BATCH:
        return await rt.ice.get_batch_media_producing_job(job["ice_job_id"])
    return await rt.ice.get_media_producing_job(job["ice_job_id"])


async def confirm(
    rt: Runtime,
    job_id: uuid.UUID,
    source: EventSource,
    *,
    answer: Answer | None = None,
    after_apply: AfterApply | None = None,
) -> RowMapping | None:
    """Confirm one job that the caller has leased, and release the lease.

    ``answer`` is ICE's word when the caller already has it (the sweeper's List pages).
    Returns the job as it is now, or None if it no longer exists.
    """
    async with rt.sessionmaker() as session:
        job = (await session.execute(sa.select(jobs).where(jobs.c.id == job_id))).mappings().one()
    answers = {job["ice_job_id"]: answer} if answer is not None else {}
    (after,) = await confirm_all(rt, [job], source, answers=answers, after_apply=after_apply)
    return after


async def confirm_all(
    rt: Runtime,
    leased: Sequence[RowMapping],
    source: EventSource,
    *,
    answers: Mapping[str, Answer] | None = None,
    before_asking: Callable[[], Awaitable[None]] | None = None,
    after_apply: AfterApply | None = None,
) -> list[RowMapping | None]:
    """Confirm jobs that the caller has leased (their rows), and release the leases.

    ICE is asked about every job at once, outside any transaction (``answers``: ICE's word
    already known, by ICE JobId; ``before_asking`` is awaited before each question, e.g. a
    rate limit). Then every answer is applied in one transaction. If that fails, each job is
    tried again in a transaction of its own, so one bad job holds up no other. Returns the
    jobs as they are now, in order (None: a job that no longer exists, or failed again).
    """
    known = answers or {}

    async def ask(job: RowMapping) -> tuple[Answer | None, bool]:
        logger.info("confirm start job=%s source=%s", job["id"], source.value)
        if job["ice_job_id"] in known and job["status"] != JobStatus.SUBMITTING:
            return known[job["ice_job_id"]], True
        if before_asking is not None:
            await before_asking()
        try:
            async with asyncio.timeout(answer_seconds(rt)):
                return await fetch_answer(rt, job), True
        except IceError as exc:
            logger.warning("could not confirm job %s with ICE: %s", job["id"], exc)
        except TimeoutError:
            logger.warning("could not confirm job %s with ICE: no answer in time", job["id"])
        except Exception:  # one job's surprise must not fail the others asked with it
            logger.exception("could not confirm job %s with ICE", job["id"])
        return None, False

    heard = await asyncio.gather(*(ask(job) for job in leased))
    try:
        async with rt.sessionmaker.begin() as session:
            return await _apply_all(session, rt, leased, heard, source, after_apply)
    except Exception as exc:
        if len(leased) == 1 or database_unreachable(exc):
            raise  # alone, each would fail the same way: their leases expire
        logger.exception("confirming %d jobs together failed; trying each alone", len(leased))
    results: list[RowMapping | None] = []
    for job, one in zip(leased, heard, strict=True):
        try:
            async with rt.sessionmaker.begin() as session:
                results += await _apply_all(session, rt, [job], [one], source, after_apply)
        except Exception:  # its lease expires and it is confirmed again later
            log_failure(logger, "confirming job %s failed", job["id"])
            results.append(None)
    return results


async def _apply_all(
    session: AsyncSession,
    rt: Runtime,
    leased: Sequence[RowMapping],
    heard: Sequence[tuple[Answer | None, bool]],
    source: EventSource,
    after_apply: AfterApply | None,
) -> list[RowMapping | None]:
    ids = [job["id"] for job in leased]
    locked = {
        row["id"]: row
        for row in (
            await session.execute(
                sa.select(jobs)
                .where(jobs.c.id.in_(ids))
                .order_by(jobs.c.id)
                # FOR NO KEY UPDATE (key_share=True): callbacks being stored for these jobs
                # (their foreign keys take KEY SHARE locks, several jobs in one statement)
                # never wait on it, so holding many job locks cannot deadlock with the intake.
                .with_for_update(key_share=True)
            )
        ).mappings()
    }
    moves: list[Move] = []
    for job_id, (answer, _) in zip(ids, heard, strict=True):
        if job_id in locked and answer is not None:
            moves += await plan_moves(session, locked[job_id], answer, source)
    moved = {row["id"]: row for row in await record_statuses(session, moves) if row is not None}
    results: list[RowMapping | None] = []
    applied = []
    schedules = []
    for job_id, (_, answered) in zip(ids, heard, strict=True):
        before = locked.get(job_id)
        if before is None:
            logger.info("confirm end job=%s status=gone", job_id)
            results.append(None)
            continue
        after = moved.get(job_id, before)
        applied.append((before, after))
        schedules.append({"id": job_id, **_schedule(rt, after, heard=answered)})
        results.append(after)
    if after_apply is not None and applied:
        await after_apply(session, applied)
    if schedules:
        await session.execute(SCHEDULE, SCHEDULES.bind(schedules))
    for job_id, now in zip(ids, results, strict=True):
        if now is not None:
            # Logged before the commit releases the lease, so the logs never show two overlap.
            logger.info("confirm end job=%s status=%s", job_id, now["status"])
    return results


# When each job is looked at again (``_schedule``), for many jobs in one statement.
SCHEDULES = db.RowsParameter(
    "schedules",
    {
        "id": UUID(as_uuid=True),
        "check_at": sa.DateTime(timezone=True),
        "check_count": sa.Integer(),
        "heard_at": sa.DateTime(timezone=True),
    },
)
SCHEDULE = (
    sa.update(jobs)
    .where(jobs.c.id == SCHEDULES.table.c.id)
    .values(
        lease_until=None,
        check_at=SCHEDULES.table.c.check_at,
        check_count=SCHEDULES.table.c.check_count,
        heard_at=sa.func.coalesce(SCHEDULES.table.c.heard_at, jobs.c.heard_at),
    )
)


def _schedule(rt: Runtime, job: RowMapping, *, heard: bool) -> dict[str, Any]:
    """When to look again (``SCHEDULES``): after the sweep interval, or with backoff after a
    failure; never, once final."""
    if job["status"] in TERMINAL_STATUSES:
        return {"check_at": None, "check_count": 0, "heard_at": None}
    base = timedelta(seconds=rt.settings.sweep_after_seconds)
    now = datetime.now(UTC)
    if heard:
        return {"check_at": now + base, "check_count": 0, "heard_at": now}
    count = job["check_count"] + 1
    delay = min(base * 2**count, MAX_BACKOFF) * random.uniform(0.8, 1.2)  # noqa: S311
    return {"check_at": now + delay, "check_count": count, "heard_at": None}


# -- the sweeper ------------------------------------------------------------------------------


@dataclass
class Sweeper:
    """Finds stale jobs and confirms them, within ``budget`` ICE calls per second.

    One pass lists ICE's jobs once for everything due (when enough is due), then claims
    the due jobs ``chunk`` at a time and confirms each chunk at once: a job is leased only
    when it is worked on, so its lease cannot run out while it waits for its turn.
    """

    rt: Runtime
    budget: RateLimiter
    chunk: int = 16
    most_per_pass: int = 20_000
    # Told of every chunk and List page, so that a long sweep is not taken for a wedged one.
    progress: Watch = field(default_factory=lambda: Watch("sweep", math.inf))

    def _due(self) -> sa.ColumnElement[bool]:
        return sa.and_(
            jobs.c.check_at <= sa.func.now(),
            jobs.c.status.not_in(list(TERMINAL_STATUSES)),
            jobs.c.batch_id.is_(None),  # a batch's sub-jobs are confirmed with the batch
        )

    async def run_once(self) -> int:
        """One pass over the jobs now due; returns how many were checked."""
        async with self.rt.sessionmaker() as session:
            due = (
                (
                    await session.execute(
                        sa.select(jobs.c.kind, jobs.c.ice_job_id, jobs.c.status, jobs.c.created_at)
                        .where(self._due())
                        .limit(self.most_per_pass)
                    )
                )
                .mappings()
                .all()
            )
        if not due:
            return 0
        listed = await self._list_answers(due)
        checked = 0

        while checked < len(due):
            self.progress.progress()
            async with self.rt.sessionmaker.begin() as session:
                ids = await claim_jobs(
                    session, self._due(), limit=self.chunk, lease_seconds=lease_seconds(self.rt)
                )
                if not ids:
                    break
                rows = (
                    (await session.execute(sa.select(jobs).where(jobs.c.id.in_(ids))))
                    .mappings()
                    .all()
                )
            try:
                await confirm_all(
                    self.rt,
                    rows,
                    EventSource.SWEEP,
                    answers=listed,
                    before_asking=self.budget.wait,
                )
            except Exception:  # their leases expire; a later pass tries again
                log_failure(logger, "sweeping %d jobs failed", len(rows))
            checked += len(rows)
        return checked

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
        while start < end and len(found) < len(wanted):
            window_end = min(end, start + LIST_SPAN)
            filters = {"StartTime": _ice_time(start), "EndTime": _ice_time(window_end)}
            token: str | None = None
            while True:
                await self.budget.wait()
                self.progress.progress()
                page: Any
                if kind == JobKind.BATCH:
                    page = await self.rt.ice.list_batch_media_producing_jobs(filters, token)
                else:
                    page = await self.rt.ice.list_media_producing_jobs(filters, token)
                found |= {item.job_id: item for item in page.items if item.job_id in wanted}
                token = page.next_token
                if not token or len(found) == len(wanted):
                    break
            start = window_end
        if kind == JobKind.BATCH:
            # List answers carry no SubJobList: a finished batch is fetched whole by confirm.
            found = {
                job_id: answer
                for job_id, answer in found.items()
                if status_from_ice(JobKind.BATCH, answer.status) not in TERMINAL_STATUSES
            }
        return found


def _ice_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
