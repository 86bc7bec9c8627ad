"""Jobs and batches: submitting, reading one with its timeline, listing, reconciling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.core.errors import Conflict, IceRefused, NotFound
from app.core.events import job_resource
from app.core.statuses import EventSource, JobKind, JobStatus
from app.core.submissions import Submission
from app.core.tokens import request_hash
from app.flows.confirm import Confirmer
from app.flows.leasing import LeaseKeeper
from app.flows.submit import IceRejected, Submitter
from app.http.contracts.common import encode_cursor, page_resource, parse_json_body
from app.http.contracts.jobs import (
    Batch,
    BatchSubmission,
    Job,
    JobFilters,
    JobPage,
    JobSubmission,
    JobTimeline,
    Resolve,
    SubmitHeaders,
    parse_batch,
    parse_job,
    parse_job_query,
    parse_resolve,
    parse_submit_headers,
    timeline_resource,
)
from app.http.openapi import operation
from app.http.routes.common import json_body, read_body
from app.store import audit

SUBMIT_MAX_BYTES = 4 * 1024 * 1024  # a Timeline can be large


class JobRoutes:
    """Uses: the database, the ``Submitter``, the process's leases and the ``Confirmer``."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        submitter: Submitter,
        leases: LeaseKeeper,
        confirmer: Confirmer,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.submitter = submitter
        self.leases = leases
        self.confirmer = confirmer

    def routes(self) -> list[Route]:
        return [
            Route("/jobs", self.create_job, methods=["POST"]),
            Route("/jobs", self.list_jobs, methods=["GET"]),
            Route("/jobs/{id}", self.get_job, methods=["GET"]),
            Route("/jobs/{id}/reconcile", self.reconcile_job, methods=["POST"]),
            Route("/batch-jobs", self.create_batch, methods=["POST"]),
            Route("/batch-jobs/{id}", self.get_batch, methods=["GET"]),
            Route("/batch-jobs/{id}/resolve", self.resolve_batch, methods=["POST"]),
        ]

    @operation(
        {200: Job, 201: Job, 202: Job}, body=JobSubmission, headers=SubmitHeaders, errors=(409,)
    )
    async def create_job(self, request: Request) -> JSONResponse:
        """Submit one SubmitMediaProducingJob.

        201 with the job; 202 while ICE's answer is not known yet (the sweeper settles it);
        200 for a repeated Idempotency-Key with the same body.
        """
        return await self._submit(request, parse_job)

    @operation(
        {200: Job, 201: Job, 202: Job}, body=BatchSubmission, headers=SubmitHeaders, errors=(409,)
    )
    async def create_batch(self, request: Request) -> JSONResponse:
        """Submit one SubmitSceneBatchEditingJob (answered as a job submission is)."""
        return await self._submit(request, parse_batch)

    async def _submit(
        self, request: Request, parse: Callable[[dict[str, Any]], Submission]
    ) -> JSONResponse:
        body = parse_json_body(await read_body(request, SUBMIT_MAX_BYTES))
        sub = parse(body)
        key = parse_submit_headers(request.headers).get("Idempotency-Key")
        try:
            job, replay = await self.submitter.submit(
                sub, idempotency_key=key, body_hash=request_hash(body)
            )
        except IceRejected as exc:
            raise IceRefused(
                str(exc),
                job=job_resource(exc.job),
                ice_code=exc.error.code,
                ice_message=exc.error.message,
                ice_request_id=exc.error.request_id,
            ) from None
        if replay:
            status = 200
        elif job["status"] == JobStatus.SUBMITTING:
            status = 202  # ICE's answer is not known yet; the sweeper settles it
        else:
            status = 201
        return JSONResponse(job_resource(job), status_code=status)

    @operation({200: JobPage}, query=JobFilters)
    async def list_jobs(self, request: Request) -> JSONResponse:
        """Jobs, newest first, a page at a time."""
        query = parse_job_query(request.query_params)
        async with self.sessionmaker() as session:
            found = await audit.jobs(session, query)
        return JSONResponse(
            page_resource(
                found, job_resource, lambda last: encode_cursor(last["created_at"], last["id"])
            )
        )

    @operation({200: JobTimeline})
    async def get_job(self, request: Request) -> JSONResponse:
        """One job with its timeline: its events, the callbacks received for it (each with
        how it was judged) and its deliveries, each oldest first."""
        async with self.sessionmaker() as session:
            job = await _find(session, request)
            timeline = await audit.timeline(session, job["id"])
        return JSONResponse(timeline_resource(job, timeline))

    @operation({200: Batch})
    async def get_batch(self, request: Request) -> JSONResponse:
        """One batch with its sub-jobs."""
        async with self.sessionmaker() as session:
            batch = await _find(session, request, JobKind.BATCH)
            subs = await audit.sub_jobs(session, batch["id"])
        return JSONResponse(job_resource(batch) | {"sub_jobs": [job_resource(s) for s in subs]})

    @operation({200: Job}, errors=(409,))
    async def reconcile_job(self, request: Request) -> JSONResponse:
        """Ask ICE now and apply the answer."""
        return JSONResponse(job_resource(await self.reconcile(request.path_params["id"])))

    async def reconcile(self, raw_id: str) -> RowMapping:
        """The job ``raw_id`` names, after asking ICE about it now and applying the answer."""
        async with self.sessionmaker.begin() as session:
            job = await find_job(session, raw_id)
            if job["ice_job_id"] is None and job["status"] != JobStatus.SUBMITTING:
                return job  # ICE refused it: nothing to ask
            claimed = await self.leases.claim_one(session, job["id"])
        if not claimed:
            raise Conflict("a worker is confirming this job with ICE right now; try again shortly")
        after = await self.confirmer.confirm(job["id"], EventSource.MANUAL)
        return after or job

    @operation({200: Job, 202: Job}, body=Resolve, errors=(409,))
    async def resolve_batch(self, request: Request) -> JSONResponse:
        """Settle a batch whose fate is unknown: submit it again, or abandon it. The choice
        is recorded in the event it makes; 202 if ICE's answer to the resubmission was lost
        too (the sweeper then looks for it). 409 unless its fate is unknown, or while a
        worker is asking ICE about it."""
        resolution = parse_resolve(await json_body(request))["resolution"]
        async with self.sessionmaker.begin() as session:
            batch = await _find(session, request, JobKind.BATCH)
            claimed = await self.leases.claim_one(session, batch["id"])
            if claimed:  # as it is now that no worker can move it: one may just have
                batch = await _find(session, request, JobKind.BATCH)
        if not claimed:
            raise Conflict("a worker is asking ICE about this batch right now; try again shortly")
        try:
            with self.leases.holding(jobs=[batch["id"]]):
                after = await self.submitter.resolve(batch, resolution)
        finally:
            async with self.sessionmaker.begin() as session:
                await self.leases.release(session, [batch["id"]])
        status = 202 if after["status"] == JobStatus.SUBMITTING else 200  # ICE's answer lost
        return JSONResponse(job_resource(after), status_code=status)


async def _find(session: AsyncSession, request: Request, kind: JobKind | None = None) -> RowMapping:
    """The job named by the path's ``id``: icehook's id or ICE's JobId."""
    return await find_job(session, request.path_params["id"], kind)


async def find_job(session: AsyncSession, raw: str, kind: JobKind | None = None) -> RowMapping:
    """The job ``raw`` names (icehook's id or ICE's JobId); ``NotFound`` if none."""
    row = await audit.find_job(session, raw, kind)
    if row is None:
        raise NotFound(f"no {kind.value if kind else 'job'} {raw!r}")
    return row
