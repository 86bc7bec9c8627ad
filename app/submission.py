"""Submitting jobs to ICE without ever losing or doubling one.

1. The job is recorded as ``submitting`` (with the exact ICE parameters) and committed.
2. ICE is called outside any transaction.
3. The outcome is recorded: ``submitted`` with ICE's ids, or ``rejected`` with ICE's
   ``Code``/``Message``. When the outcome is unknown (timeout, ICE unreachable) the job
   stays ``submitting`` and the sweeper settles it (``settle``).

A single job's ``ClientToken`` is derived from its id, so a resubmission after a crash
returns the original ICE job instead of creating a second one. A scene batch takes no
``ClientToken``: the sweeper first looks for it in ``ListBatchMediaProducingJobs`` (by its
``UserData``), and resubmits only when ICE has had ample time to list it.

Each job gets its own callback token (256 random bits) in its ``NotifyAddress``; only its
SHA-256 is kept. The full ``UserData`` is kept only while the job is ``submitting`` (a
resubmission must repeat it exactly); once ICE's answer is known the token is redacted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.errors import Conflict, IceError, IcehookError, ValidationError
from app.ice import MAX_QUERY_BYTES, BatchJob, MediaProducingJob, SubmittedJob, oversized
from app.jobs import lock_job, record_status
from app.models import EventSource, JobKind, JobStatus, jobs
from app.schemas import Submission, user_data_text
from app.settings import Settings

if TYPE_CHECKING:
    from app.main import Runtime

CALLBACK_PATH = "/callbacks/ice/"
SUBMIT_ATTEMPTS_WAITED = 2  # ICE attempts a POST /v1/jobs waits for before answering 202
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
REDACTED = "<redacted>"


class IceRejected(IcehookError):
    """ICE refused a submission; the job is recorded as ``rejected``."""

    def __init__(self, job: RowMapping, error: IceError) -> None:
        super().__init__(f"ICE refused the job: {error.code}: {error.message}")
        self.job = job
        self.error = error


def callback_url(settings: Settings, token: str) -> str:
    """The NotifyAddress of the job whose callback token is ``token``."""
    return f"{settings.public_url or DEFAULT_PUBLIC_URL}{CALLBACK_PATH}{token}"


def client_token(job_id: uuid.UUID) -> str:
    return f"icehook-{job_id.hex}"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def request_hash(body: Mapping[str, Any]) -> bytes:
    """What makes two requests with one Idempotency-Key "the same"."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()


def refused(error: IceError) -> bool:
    """ICE answered and said no: not "no answer", "failed on ICE's side" or "try later"."""
    return 400 <= error.status < 500 and not error.code.startswith("Throttling")


async def submit(
    rt: Runtime, sub: Submission, *, idempotency_key: str | None, body_hash: bytes
) -> tuple[RowMapping, bool]:
    """Submit one job or batch; return (job row, whether it is a replay of an earlier request).

    Raises ``IceRejected`` when ICE refuses, ``Conflict`` for a reused Idempotency-Key.
    """
    job_id = uuid.uuid4()
    token = secrets.token_urlsafe(32)
    parameters = {
        **sub.parameters,
        "UserData": user_data_text(sub.user_data, callback_url(rt.settings, token)),
    }
    if sub.kind == JobKind.JOB:
        parameters["ClientToken"] = client_token(job_id)
    if name := oversized(parameters):
        raise ValidationError(
            name,
            f"is too large to send to ICE: every parameter but Timeline goes in the request's "
            f"query string, which icehook keeps under {MAX_QUERY_BYTES} bytes",
        )
    async with rt.sessionmaker.begin() as session:
        inserted = await session.execute(
            pg_insert(jobs)
            .values(
                id=job_id,
                kind=sub.kind,
                status=JobStatus.SUBMITTING,
                project_id=sub.project_id,
                user_data=sub.user_data,
                parameters=parameters,
                callback_token_hash=token_hash(token),
                client_token=parameters.get("ClientToken"),
                idempotency_key=idempotency_key,
                request_hash=body_hash,
                check_at=datetime.now(UTC) + timedelta(seconds=rt.settings.sweep_after_seconds),
            )
            .on_conflict_do_nothing(index_elements=[jobs.c.idempotency_key])
            .returning(*jobs.c)
        )
        job = inserted.mappings().one_or_none()
        if job is None:
            earlier = await session.execute(
                sa.select(jobs).where(jobs.c.idempotency_key == idempotency_key)
            )
            existing = earlier.mappings().one()
            if existing["request_hash"] != body_hash:
                raise Conflict("this Idempotency-Key was used with another request body")
            return existing, True
    try:
        # The client waits for this: two attempts' worth at most, then the sweeper goes on.
        async with asyncio.timeout(SUBMIT_ATTEMPTS_WAITED * rt.settings.ice_timeout_seconds + 1):
            answer = await _send(rt, sub.kind, parameters)
    except TimeoutError:
        return job, False  # no answer in time: the sweeper settles it
    except IceError as exc:
        if not refused(exc):
            return job, False  # outcome unknown: the sweeper settles it
        raise IceRejected(await _record_rejection(rt, job_id, exc), exc) from None
    row = await _leave_submitting(
        rt,
        job_id,
        JobStatus.SUBMITTED,
        payload={
            "RequestId": answer.request_id,
            "JobId": answer.job_id,
            "ProjectId": answer.project_id,
            "MediaId": answer.media_id,
        },
        changes={
            "ice_job_id": answer.job_id,
            "project_id": answer.project_id or sub.project_id,
            "media_id": answer.media_id,
        },
    )
    return row, False


async def _send(rt: Runtime, kind: JobKind, parameters: Mapping[str, str]) -> SubmittedJob:
    if kind == JobKind.BATCH:
        return await rt.ice.submit_scene_batch_editing_job(parameters)
    return await rt.ice.submit_media_producing_job(parameters)


async def _record_rejection(rt: Runtime, job_id: uuid.UUID, error: IceError) -> RowMapping:
    return await _leave_submitting(
        rt,
        job_id,
        JobStatus.REJECTED,
        payload={"RequestId": error.request_id, "Code": error.code, "Message": error.message},
        changes={"error_code": error.code, "error_message": error.message},
    )


async def _leave_submitting(
    rt: Runtime,
    job_id: uuid.UUID,
    status: JobStatus,
    *,
    payload: Mapping[str, Any],
    changes: Mapping[str, Any],
) -> RowMapping:
    """Record ICE's answer to a submission; the callback token leaves the stored UserData."""
    async with rt.sessionmaker.begin() as session:
        locked = await lock_job(session, job_id)
        assert locked is not None
        row = await record_status(
            session,
            locked,
            status,
            source=EventSource.SUBMIT,
            payload=payload,
            changes={**changes, "parameters": redacted(locked["parameters"])},
        )
    return row or locked


def redacted(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters with the callback token taken out of UserData's NotifyAddress."""
    try:
        user_data = json.loads(parameters.get("UserData") or "{}")
    except ValueError:
        return dict(parameters)
    address = str(user_data.get("NotifyAddress", ""))
    if CALLBACK_PATH in address:
        user_data["NotifyAddress"] = address.split(CALLBACK_PATH)[0] + CALLBACK_PATH + REDACTED
    return {**parameters, "UserData": json.dumps(user_data, ensure_ascii=False)}


async def settle(rt: Runtime, job: RowMapping) -> MediaProducingJob | BatchJob:
    """ICE's word on a job left ``submitting``: find it at ICE, or submit it again.

    Records ``rejected`` itself (and raises) when ICE refuses the resubmission.
    """
    parameters: dict[str, str] = dict(job["parameters"])
    try:
        if job["kind"] == JobKind.BATCH:
            found = await _find_batch(rt, job)
            if found is not None:
                return found
            age = datetime.now(UTC) - job["created_at"]
            if age < timedelta(seconds=max(120.0, 2 * rt.settings.sweep_after_seconds)):
                raise IceError(0, "NotYetListed", "the batch may still appear in ICE's list")
            submitted = await rt.ice.submit_scene_batch_editing_job(parameters)
            return await rt.ice.get_batch_media_producing_job(submitted.job_id)
        submitted = await rt.ice.submit_media_producing_job(parameters)
        return await rt.ice.get_media_producing_job(submitted.job_id)
    except IceError as exc:
        if refused(exc) and exc.code != "JobNotFound":
            await _record_rejection(rt, job["id"], exc)
        raise


async def _find_batch(rt: Runtime, job: RowMapping) -> BatchJob | None:
    """The batch ICE created for ``job``, recognised by its UserData (its NotifyAddress)."""
    created: datetime = job["created_at"]
    filters = {
        "StartTime": (created - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "EndTime": (created + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    mine = job["parameters"].get("UserData")
    token: str | None = None
    while True:
        page = await rt.ice.list_batch_media_producing_jobs(filters, token)
        for batch in page.items:
            if batch.user_data == mine:
                return await rt.ice.get_batch_media_producing_job(batch.job_id)
        token = page.next_token
        if not token:
            return None
