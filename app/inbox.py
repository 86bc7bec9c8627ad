"""ICE's callbacks: kept at once, confirmed against ICE later.

``accept_callback`` (the HTTP edge) stores the raw body and headers, whatever they say, and
answers only after the commit; it never calls ICE. A callback is a hint: ``process`` (a
worker step) leases the job it names, asks ICE once for all of that job's pending
callbacks, applies ICE's answer, and judges each callback:

- ``applied``: confirming it moved the job forward;
- ``duplicate``: the job already had the status it reports;
- ``stale``: the job is already past the status it reports;
- ``rejected``: ICE contradicts it, or its token or signature is wrong (never applied);
- ``unmatched``: a valid token, but a JobId that is not that token's job;
- ``ignored`` / ``malformed``: an EventType icehook does not act on / not ICE's envelope.

When the job is already at or past what every pending callback reports, no ICE call is
made at all: this is what makes duplicates cheap.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import reconcile
from app.errors import SignatureError
from app.jobs import RANK, status_from_ice
from app.models import TERMINAL_STATUSES, CallbackOutcome, EventSource, JobKind, JobStatus, jobs
from app.models import callbacks as callbacks_table
from app.queue import claim_jobs, release
from app.signing import verify_callback
from app.submission import callback_url, token_hash

if TYPE_CHECKING:
    from app.main import Runtime

logger = logging.getLogger(__name__)

KNOWN_EVENTS = frozenset({"ProduceMediaComplete", "BatchProduceMediaComplete"})
KEPT_OF_REJECTED = 4096  # bytes of a rejected body kept for the audit
UNSTORED_HEADERS = frozenset({"authorization", "cookie"})
CONCURRENCY = 16  # jobs confirmed at once by one worker


@dataclass(frozen=True)
class Intake:
    """How a received callback was answered."""

    status_code: int
    outcome: CallbackOutcome
    detail: str


async def accept_callback(
    rt: Runtime, token: str, body: bytes, headers: Mapping[str, str], peer: str | None
) -> Intake:
    """Store one callback durably, then say how to answer it (200 only after the commit)."""
    hashed = token_hash(token)
    row: dict[str, Any] = {
        "token_hash": hashed,
        "headers": {k: v for k, v in headers.items() if k.lower() not in UNSTORED_HEADERS},
        "peer": peer,
    }
    async with rt.sessionmaker.begin() as session:
        job_id = (
            await session.execute(sa.select(jobs.c.id).where(jobs.c.callback_token_hash == hashed))
        ).scalar_one_or_none()
        envelope = _envelope(body)
        intake = _judge_intake(rt, token, envelope, headers, known_token=job_id is not None)
        if intake.outcome != CallbackOutcome.PENDING:
            kept = body if intake.outcome != CallbackOutcome.REJECTED else body[:KEPT_OF_REJECTED]
            await session.execute(
                sa.insert(callbacks_table).values(
                    **row,
                    body=kept,
                    job_id=job_id,
                    outcome=intake.outcome,
                    detail=intake.detail,
                    processed_at=sa.func.now(),
                    **_envelope_fields(envelope),
                )
            )
            return intake
        await session.execute(
            pg_insert(callbacks_table)
            .values(
                **row,
                body=body,
                job_id=job_id,
                outcome=CallbackOutcome.PENDING,
                dedup_key=hashlib.sha256(hashed + body).digest(),
                **_envelope_fields(envelope),
            )
            .on_conflict_do_nothing(index_elements=[callbacks_table.c.dedup_key])
        )
    rt.waker.poke()
    return intake


def _judge_intake(
    rt: Runtime,
    token: str,
    envelope: dict[str, Any] | None,
    headers: Mapping[str, str],
    *,
    known_token: bool,
) -> Intake:
    if not known_token:
        return Intake(401, CallbackOutcome.REJECTED, "unknown callback token")
    if rt.settings.callback_auth_keys:
        try:
            verify_callback(
                url=callback_url(rt.settings, token),
                timestamp=headers.get("x-ice-timestamp"),
                signature=headers.get("x-ice-signature"),
                auth_keys=rt.settings.callback_auth_keys,
                now=time.time(),
            )
        except SignatureError as exc:
            return Intake(401, CallbackOutcome.REJECTED, str(exc))
    if envelope is None:
        return Intake(400, CallbackOutcome.MALFORMED, "not ICE's JSON callback envelope")
    if envelope["EventType"] not in KNOWN_EVENTS:
        return Intake(200, CallbackOutcome.IGNORED, f"EventType {envelope['EventType']!r}")
    return Intake(200, CallbackOutcome.PENDING, "")


def _envelope(body: bytes) -> dict[str, Any] | None:
    try:
        envelope = json.loads(body)
    except ValueError:
        return None
    if (
        not isinstance(envelope, dict)
        or not isinstance(envelope.get("EventType"), str)
        or not isinstance(envelope.get("MessageBody"), dict)
    ):
        return None
    return envelope


def _envelope_fields(envelope: dict[str, Any] | None) -> dict[str, str | None]:
    envelope = envelope or {}
    message = envelope.get("MessageBody") or {}
    return {
        "event_type": _short(envelope.get("EventType")),
        "ice_job_id": _short(message.get("JobId")),
        "ice_status": _short(message.get("Status")),
    }


def _short(value: object) -> str | None:
    return value[:200] if isinstance(value, str) else None


# -- processing ---------------------------------------------------------------------------


async def process(rt: Runtime, limit: int = 64) -> int:
    """Confirm the jobs that have pending callbacks; returns how many jobs were handled."""
    pending_jobs = sa.select(callbacks_table.c.job_id).where(
        callbacks_table.c.outcome == CallbackOutcome.PENDING
    )
    async with rt.sessionmaker.begin() as session:
        ids = await claim_jobs(
            session,
            jobs.c.id.in_(pending_jobs),
            limit=limit,
            lease_seconds=reconcile.lease_seconds(rt),
        )
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(job_id: uuid.UUID) -> None:
        async with slots:
            try:
                await _process_job(rt, job_id)
            except Exception:  # the lease expires and another pass tries again
                logger.exception("processing callbacks of job %s failed", job_id)

    await asyncio.gather(*(one(job_id) for job_id in ids))
    return len(ids)


async def _process_job(rt: Runtime, job_id: uuid.UUID) -> None:
    async with rt.sessionmaker() as session:
        job = (await session.execute(sa.select(jobs).where(jobs.c.id == job_id))).mappings().one()
        pending = (
            (
                await session.execute(
                    sa.select(callbacks_table).where(
                        callbacks_table.c.job_id == job_id,
                        callbacks_table.c.outcome == CallbackOutcome.PENDING,
                    )
                )
            )
            .mappings()
            .all()
        )
        before = await _statuses(session, job_id)
    if not pending:
        async with rt.sessionmaker.begin() as session:
            await session.execute(release(job_id))
        return

    async def judge(session: AsyncSession, _: RowMapping, after_job: RowMapping) -> None:
        after = await _statuses(session, job_id)
        await _record_outcomes(session, job, pending, before, after)

    if _needs_ice(job, pending, before):
        await reconcile.confirm(rt, job_id, EventSource.CALLBACK, after_apply=judge)
        return
    async with rt.sessionmaker.begin() as session:
        await _record_outcomes(session, job, pending, before, before)
        await session.execute(release(job_id))


async def _statuses(session: AsyncSession, job_id: uuid.UUID) -> dict[str | None, JobStatus]:
    """ICE JobId -> status, for the token's job and (for a batch) its sub-jobs."""
    rows = await session.execute(
        sa.select(jobs.c.ice_job_id, jobs.c.status).where(
            sa.or_(jobs.c.id == job_id, jobs.c.batch_id == job_id)
        )
    )
    return {ice_job_id: JobStatus(status) for ice_job_id, status in rows}


def _claim(job: RowMapping, callback: RowMapping) -> JobStatus | None:
    kind = JobKind.BATCH if callback["event_type"] == "BatchProduceMediaComplete" else JobKind.JOB
    return status_from_ice(kind, callback["ice_status"])


def _matches(job: RowMapping, callback: RowMapping) -> bool:
    """A single job's token only speaks for that job (unless ICE's id is not yet known);
    a batch's token also for its sub-jobs, which may not be known yet."""
    if job["kind"] == JobKind.BATCH or job["ice_job_id"] is None:
        return True
    return bool(callback["ice_job_id"] == job["ice_job_id"])


def _needs_ice(
    job: RowMapping,
    pending: Sequence[RowMapping],
    statuses: Mapping[str | None, JobStatus],
) -> bool:
    if job["status"] in TERMINAL_STATUSES:
        return False  # nothing can change any more (a finished batch's sub-jobs are final)
    for callback in pending:
        if not _matches(job, callback):
            continue
        claim, known = _claim(job, callback), statuses.get(callback["ice_job_id"])
        if claim is None or known is None or RANK[claim] > RANK[known]:
            return True
    return False


async def _record_outcomes(
    session: AsyncSession,
    job: RowMapping,
    pending: Sequence[RowMapping],
    before: Mapping[str | None, JobStatus],
    after: Mapping[str | None, JobStatus],
) -> None:
    credited: set[str | None] = set()
    for callback in pending:
        outcome, detail = _outcome(job, callback, before, after, credited)
        await session.execute(
            sa.update(callbacks_table)
            .where(callbacks_table.c.id == callback["id"])
            .values(outcome=outcome, detail=detail, processed_at=sa.func.now())
        )


def _outcome(
    job: RowMapping,
    callback: RowMapping,
    before: Mapping[str | None, JobStatus],
    after: Mapping[str | None, JobStatus],
    credited: set[str | None],
) -> tuple[CallbackOutcome, str]:
    target = callback["ice_job_id"]
    if not _matches(job, callback) or target not in after:
        return CallbackOutcome.UNMATCHED, f"JobId {target!r} is not this token's job"
    claim, now = _claim(job, callback), after[target]
    if claim is None:
        return CallbackOutcome.DUPLICATE, f"reports {callback['ice_status']!r}; ICE says {now}"
    if claim == now and before.get(target) != now and target not in credited:
        credited.add(target)
        return CallbackOutcome.APPLIED, f"confirmed by ICE: {now}"
    if claim == now:
        return CallbackOutcome.DUPLICATE, f"already {now}"
    if RANK[claim] < RANK[now]:
        return CallbackOutcome.STALE, f"reports {claim}, job is already {now}"
    return CallbackOutcome.REJECTED, f"reports {claim}, but ICE says {now}"
