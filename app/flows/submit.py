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

Each job gets its own callback token in its ``NotifyAddress`` (``core.tokens``). The full
``UserData`` is kept only while the job is ``submitting`` (a resubmission must repeat it
exactly); once ICE's answer is known the token is redacted.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.answers import BatchJob, MediaProducingJob, SubmittedJob
from app.core.errors import Conflict, IceError, IcehookError, ValidationError
from app.core.moves import Move, Row
from app.core.policies import refused
from app.core.statuses import EventSource, JobKind, JobStatus
from app.core.submissions import MAX_QUERY_BYTES, Submission, oversized, user_data_text
from app.core.tokens import callback_url, client_token, new_token, redacted, token_hash
from app.ice.client import IceClient
from app.settings import Settings
from app.store import jobs

SUBMIT_ATTEMPTS_WAITED = 2  # ICE attempts a POST /v1/jobs waits for before answering 202


class IceRejected(IcehookError):
    """ICE refused a submission; the job is recorded as ``rejected``."""

    def __init__(self, job: RowMapping, error: IceError) -> None:
        super().__init__(f"ICE refused the job: {error.code}: {error.message}")
        self.job = job
        self.error = error


class Submitter:
    """Submits jobs and batches (``submit``), and settles those left ``submitting``
    (``settle``). Uses: the database, ICE, and from the settings the public URL (for the
    NotifyAddress), the sweep interval (when the sweeper first looks) and ICE's timeout."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], ice: IceClient, settings: Settings
    ) -> None:
        self.sessionmaker = sessionmaker
        self.ice = ice
        self.public_url = settings.public_url
        self.sweep_after = timedelta(seconds=settings.sweep_after_seconds)
        self.waited = SUBMIT_ATTEMPTS_WAITED * settings.ice_timeout_seconds + 1

    async def submit(
        self, sub: Submission, *, idempotency_key: str | None, body_hash: bytes
    ) -> tuple[RowMapping, bool]:
        """Submit one job or batch; return (job row, whether it is a replay of an earlier
        request). Raises ``IceRejected`` when ICE refuses, ``Conflict`` for a reused
        Idempotency-Key, ``ValidationError`` for parameters ICE could not be sent."""
        job_id = uuid.uuid4()
        token = new_token()
        parameters = {
            **sub.parameters,
            "UserData": user_data_text(sub.user_data, callback_url(self.public_url, token)),
        }
        if sub.kind == JobKind.JOB:
            parameters["ClientToken"] = client_token(job_id)
        if name := oversized(parameters):
            raise ValidationError(
                name,
                f"is too large to send to ICE: every parameter but Timeline goes in the "
                f"request's query string, which icehook keeps under {MAX_QUERY_BYTES} bytes",
            )
        async with self.sessionmaker.begin() as session:
            job = await jobs.insert_submission(
                session,
                {
                    "id": job_id,
                    "kind": sub.kind,
                    "project_id": sub.project_id,
                    "user_data": sub.user_data,
                    "parameters": parameters,
                    "callback_token_hash": token_hash(token),
                    "client_token": parameters.get("ClientToken"),
                    "idempotency_key": idempotency_key,
                    "request_hash": body_hash,
                    "check_at": datetime.now(UTC) + self.sweep_after,
                },
            )
            if job is None:
                existing = await jobs.by_idempotency_key(session, idempotency_key)
                if existing["request_hash"] != body_hash:
                    raise Conflict("this Idempotency-Key was used with another request body")
                return existing, True
        try:
            # The client waits for this: two attempts' worth at most, then the sweeper goes on.
            async with asyncio.timeout(self.waited):
                answer = await self._send(sub.kind, parameters)
        except TimeoutError:
            return job, False  # no answer in time: the sweeper settles it
        except IceError as exc:
            if not refused(exc):
                return job, False  # outcome unknown: the sweeper settles it
            raise IceRejected(await self._record_rejection(job_id, exc), exc) from None
        row = await self._leave_submitting(
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

    async def settle(self, job: Row) -> MediaProducingJob | BatchJob:
        """ICE's word on a job left ``submitting``: find it at ICE, or submit it again.

        Records ``rejected`` itself (and raises) when ICE refuses the resubmission.
        """
        parameters: dict[str, str] = dict(job["parameters"])
        try:
            if job["kind"] == JobKind.BATCH:
                found = await self._find_batch(job)
                if found is not None:
                    return found
                age = datetime.now(UTC) - job["created_at"]
                if age < max(timedelta(seconds=120), 2 * self.sweep_after):
                    raise IceError(0, "NotYetListed", "the batch may still appear in ICE's list")
                submitted = await self.ice.submit_scene_batch_editing_job(parameters)
                return await self.ice.get_batch_media_producing_job(submitted.job_id)
            submitted = await self.ice.submit_media_producing_job(parameters)
            return await self.ice.get_media_producing_job(submitted.job_id)
        except IceError as exc:
            if refused(exc) and exc.code != "JobNotFound":
                await self._record_rejection(job["id"], exc)
            raise

    async def _send(self, kind: JobKind, parameters: Mapping[str, str]) -> SubmittedJob:
        if kind == JobKind.BATCH:
            return await self.ice.submit_scene_batch_editing_job(parameters)
        return await self.ice.submit_media_producing_job(parameters)

    async def _record_rejection(self, job_id: uuid.UUID, error: IceError) -> RowMapping:
        return await self._leave_submitting(
            job_id,
            JobStatus.REJECTED,
            payload={"RequestId": error.request_id, "Code": error.code, "Message": error.message},
            changes={"error_code": error.code, "error_message": error.message},
        )

    async def _leave_submitting(
        self,
        job_id: uuid.UUID,
        status: JobStatus,
        *,
        payload: Mapping[str, Any],
        changes: Mapping[str, Any],
    ) -> RowMapping:
        """Record ICE's answer to a submission; the callback token leaves the stored UserData."""
        async with self.sessionmaker.begin() as session:
            locked = await jobs.lock(session, job_id)
            assert locked is not None
            changes = {**changes, "parameters": redacted(locked["parameters"])}
            row = await jobs.record_status(
                session, Move(locked, status, EventSource.SUBMIT, payload, changes)
            )
        return row or locked

    async def _find_batch(self, job: Row) -> BatchJob | None:
        """The batch ICE created for ``job``, recognised by its UserData (its NotifyAddress)."""
        created: datetime = job["created_at"]
        filters = {
            "StartTime": (created - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "EndTime": (created + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        mine = job["parameters"].get("UserData")
        token: str | None = None
        while True:
            page = await self.ice.list_batch_media_producing_jobs(filters, token)
            for batch in page.items:
                if batch.user_data == mine:
                    return await self.ice.get_batch_media_producing_job(batch.job_id)
            token = page.next_token
            if not token:
                return None
