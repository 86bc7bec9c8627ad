"""Submitting jobs to ICE without ever losing or doubling one.

1. The job is recorded as ``submitting`` (with the exact ICE parameters) and committed.
2. ICE is called outside any transaction.
3. The outcome is recorded: ``submitted`` with ICE's ids, or ``rejected`` with ICE's
   ``Code``/``Message``. When the outcome is unknown (no answer, ICE unreachable) the job
   stays ``submitting`` and is settled later (``settle``): by the sweeper, or at once by a
   callback, which carries ICE's JobId.

A submission is never repeated blindly. What ICE does with a repeated ``ClientToken`` is not
documented (the original job, an error, or a second job), and ``SubmitSceneBatchEditingJob``
takes none (docs/ice.md). So ``settle`` first looks for what ICE made: the JobId a callback
reported, then ICE's ``List*`` answers, recognised by the callback token in their
``UserData.NotifyAddress`` (however ICE re-serialised it). Only when ICE has had
``ICEHOOK_ICE_LISTING_GRACE_SECONDS`` to list it and does not is a job submitted again (with
its ClientToken); a refusal then proves ICE has no such job. A batch is submitted again only
if ICE's list shows icehook's scene batches at all; otherwise its fate is unknown
(``fate_unknown_since``) until a callback settles it or an operator resolves it.

Each job gets its own callback token in its ``NotifyAddress`` (``core.tokens``). The full
``UserData`` is kept only while the job is ``submitting`` (a resubmission must repeat it
exactly); once ICE's answer is known the token is redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.answers import Answer, BatchJob, MediaProducingJob, SubmittedJob
from app.core.errors import Conflict, IceError, IcehookError, IceJobNotFound, ValidationError
from app.core.moves import Move, Row
from app.core.policies import answer_seconds, refused
from app.core.statuses import EventSource, JobKind, JobStatus
from app.core.submissions import MAX_QUERY_BYTES, Submission, oversized, user_data_text
from app.core.tokens import (
    callback_url,
    client_token,
    new_token,
    redacted,
    token_hash,
    token_hash_in,
)
from app.ice.client import IceClient
from app.settings import Settings
from app.store import jobs
from app.telemetry import metrics, tracing

logger = logging.getLogger(__name__)

SUBMIT_ATTEMPTS_WAITED = 2  # ICE attempts a POST /v1/jobs waits for before answering 202
# ICE's list is searched for a submission from a little before it was recorded (the two
# clocks may differ) to a little after now.
LISTED_AROUND = timedelta(minutes=5)


Resolution = Literal["resubmit", "abandon"]  # an operator's choice for an unknown fate


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
        # Never shorter than a send may still be under way (its attempts and pauses), or a
        # send that is about to land would be sent again.
        self.listing_grace = timedelta(
            seconds=max(
                settings.ice_listing_grace_seconds,
                answer_seconds(settings.ice_timeout_seconds, settings.ice_max_attempts),
            )
        )
        self.waited = SUBMIT_ATTEMPTS_WAITED * settings.ice_timeout_seconds + 1
        self._sending: set[asyncio.Future[Any]] = set()  # sends the client stopped waiting for

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
        # The send goes on after the client stops waiting (202): cancelling it mid-flight
        # would turn a known outcome (a throttled wait, an answer on its way) into an
        # unknown one, and a batch ICE does not list would then have an unknown fate.
        sending = asyncio.ensure_future(self._send_and_record(job, sub, parameters))
        self._sending.add(sending)
        sending.add_done_callback(self._sent)
        try:
            row, refusal = await asyncio.wait_for(asyncio.shield(sending), self.waited)
        except TimeoutError:
            logger.info("job %s: ICE has not answered yet; answering 202", job_id)
            return job, False
        if refusal is not None:
            raise IceRejected(row, refusal)
        return row, False

    async def _send_and_record(
        self, job: RowMapping, sub: Submission, parameters: Mapping[str, str]
    ) -> tuple[RowMapping, IceError | None]:
        """Send ``job`` to ICE and record the answer: the row after it, and ICE's refusal."""
        try:
            answer = await self._send(sub.kind, parameters)
        except IceError as exc:
            if not refused(exc):
                self._outcome_unknown(job["id"], exc)
                return job, None  # the sweeper settles it
            return await self._record_rejection(job["id"], exc), exc
        row = await self._leave_submitting(
            job["id"],
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
        return row, None

    def _sent(self, sending: asyncio.Future[Any]) -> None:
        self._sending.discard(sending)
        if not sending.cancelled() and (failure := sending.exception()) is not None:
            logger.error(
                "recording ICE's answer to a submission failed; it stays submitting and is "
                "looked up later",
                exc_info=failure,
            )

    def _outcome_unknown(self, job_id: uuid.UUID, error: IceError) -> None:
        metrics.ICE_SUBMIT_UNKNOWN.labels(error.code).inc()
        logger.warning(
            "job %s: ICE's answer to its submission is unknown (%s); it is looked up later",
            job_id,
            error,
        )

    async def close(self) -> None:
        """Cancel the submissions still waiting for ICE (each is then looked up later)."""
        for sending in list(self._sending):
            sending.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)

    async def settle(self, job: Row, reported: Sequence[str] = ()) -> MediaProducingJob | BatchJob:
        """ICE's word on a job left ``submitting``: what ICE made for it, or the answer to
        submitting it again when ICE shows it has none (see the module's docstring).
        ``reported``: ICE JobIds its callbacks named.

        Records ``rejected`` itself (and raises) when ICE refuses the resubmission; raises
        ``IceError`` when the job's fate cannot be settled now.
        """
        found = await self._reported(job, reported)
        lists_ours = False
        if found is None:
            found, lists_ours = await self._listed(job)
        if found is not None:
            return found
        # A send still in flight, or just landed, may not be listed yet.
        last_sent = job["last_sent_at"] or job["created_at"]
        if datetime.now(UTC) - last_sent < self.listing_grace:
            raise IceError(0, "NotYetListed", "ICE may still list it; looking again later")
        if job["kind"] == JobKind.BATCH and not lists_ours:
            await self._fate_unknown(job["id"])
            raise IceError(
                0,
                "FateUnknown",
                "ICE lists none of icehook's scene batches, so it cannot show whether "
                "this one exists; a callback or an operator settles it",
            )
        await self._mark_sent(job["id"])
        try:
            submitted = await self._send(job["kind"], dict(job["parameters"]))
        except IceError as exc:
            if not refused(exc):
                self._outcome_unknown(job["id"], exc)
                raise
            # ICE may answer a repeated ClientToken with an error (docs/ice.md): look again,
            # and only if ICE still shows nothing is the refusal its word that no job exists.
            found, _ = await self._listed(job)
            if found is not None:
                return found
            await self._record_rejection(job["id"], exc)
            raise
        if job["kind"] == JobKind.BATCH:
            return await self.ice.get_batch_media_producing_job(submitted.job_id)
        return await self.ice.get_media_producing_job(submitted.job_id)

    async def _reported(self, job: Row, reported: Sequence[str]) -> Answer | None:
        """What ICE holds under a JobId a callback of ``job`` named, if its UserData carries
        ``job``'s token (a callback's JobId is the sender's word, ICE's answer the proof)."""
        for ice_job_id in dict.fromkeys(reported):
            try:
                answer: Answer
                if job["kind"] == JobKind.BATCH:
                    answer = await self.ice.get_batch_media_producing_job(ice_job_id)
                else:
                    answer = await self.ice.get_media_producing_job(ice_job_id)
            except IceJobNotFound:
                continue
            if token_hash_in(answer.user_data) == job["callback_token_hash"]:
                return answer
        return None

    async def _listed(self, job: Row) -> tuple[Answer | None, bool]:
        """What ICE lists for ``job`` (a job or batch created around when it was), by the
        token in its UserData; and whether the list showed any of icehook's own at all."""
        start = job["created_at"] - LISTED_AROUND
        # Up to now: a resubmission (whose answer may have been lost too) made it later.
        end = datetime.now(UTC) + LISTED_AROUND
        lists_ours = False
        async with contextlib.aclosing(self.ice.listed(job["kind"], start, end)) as items:
            async for item in items:
                hashed = token_hash_in(item.user_data)
                lists_ours |= hashed is not None
                if hashed == job["callback_token_hash"]:
                    if job["kind"] == JobKind.BATCH:  # a List answer has no SubJobList
                        return await self.ice.get_batch_media_producing_job(item.job_id), True
                    return item, True
        return None, lists_ours

    async def _fate_unknown(self, job_id: uuid.UUID) -> None:
        async with self.sessionmaker.begin() as session:
            await jobs.mark_fate_unknown(session, job_id)

    async def _mark_sent(self, job_id: uuid.UUID) -> None:
        async with self.sessionmaker.begin() as session:
            await jobs.mark_sent(session, job_id)

    async def resolve(self, job: Row, resolution: Resolution) -> RowMapping:
        """An operator's choice for a submission of unknown fate (``job``, leased by the
        caller): ``abandon`` it (``abandoned``), or ``resubmit`` it (``submitted``, or
        ``rejected`` if ICE refuses; ``submitting`` still if ICE's answer is lost again).
        The choice is recorded in the event it makes. Raises ``Conflict`` when the job's
        fate is not unknown."""
        if job["status"] != JobStatus.SUBMITTING or job["fate_unknown_since"] is None:
            raise Conflict("only a submission whose fate is unknown can be resolved")
        if resolution == "abandon":
            return await self._leave_submitting(
                job["id"],
                JobStatus.ABANDONED,
                payload={"Resolution": "abandon"},
                changes={},
                source=EventSource.MANUAL,
            )
        await self._mark_sent(job["id"])
        try:
            answer = await self._send(job["kind"], dict(job["parameters"]))
        except IceError as exc:
            if refused(exc):
                return await self._record_rejection(job["id"], exc, EventSource.MANUAL)
            # Lost again: still submitting, and the sweeper looks for it as before.
            self._outcome_unknown(job["id"], exc)
            async with self.sessionmaker() as session:
                return await jobs.get(session, job["id"])
        return await self._leave_submitting(
            job["id"],
            JobStatus.SUBMITTED,
            payload={
                "Resolution": "resubmit",
                "RequestId": answer.request_id,
                "JobId": answer.job_id,
            },
            changes={"ice_job_id": answer.job_id},
            source=EventSource.MANUAL,
        )

    async def _send(self, kind: JobKind, parameters: Mapping[str, str]) -> SubmittedJob:
        if kind == JobKind.BATCH:
            return await self.ice.submit_scene_batch_editing_job(parameters)
        return await self.ice.submit_media_producing_job(parameters)

    async def _record_rejection(
        self, job_id: uuid.UUID, error: IceError, source: EventSource = EventSource.SUBMIT
    ) -> RowMapping:
        return await self._leave_submitting(
            job_id,
            JobStatus.REJECTED,
            payload={"RequestId": error.request_id, "Code": error.code, "Message": error.message},
            changes={"error_code": error.code, "error_message": error.message},
            source=source,
        )

    async def _leave_submitting(
        self,
        job_id: uuid.UUID,
        status: JobStatus,
        *,
        payload: Mapping[str, Any],
        changes: Mapping[str, Any],
        source: EventSource = EventSource.SUBMIT,
    ) -> RowMapping:
        """Record ICE's answer to a submission (or an operator's choice); the callback token
        leaves the stored UserData."""
        async with self.sessionmaker.begin() as session:
            locked = await jobs.lock(session, job_id)
            assert locked is not None
            changes = {**changes, "parameters": redacted(locked["parameters"])}
            # Its events' webhooks continue the trace of the work that made the move (the
            # request that submitted, or the worker that settled an unknown outcome).
            move = Move(locked, status, source, payload, changes, tracing.traceparent())
            row = await jobs.record_status(session, move)
        return row or locked
