"""HTTP endpoints as plain async functions, and the routes list.

Every ``/v1`` route needs ``Authorization: Bearer <key>`` (``ApiKeys``). ICE's callbacks
arrive at ``/callbacks/ice/{token}``, outside ``/v1``: the token in the path is their
credential.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app import db, inbox, reconcile, schemas, submission
from app.errors import (
    Conflict,
    IceRefused,
    NotFound,
    PayloadTooLarge,
    ValidationError,
    error_body,
)
from app.models import EventSource, JobKind, job_events, jobs
from app.queue import claim_jobs

if TYPE_CHECKING:
    from app.main import Runtime

SUBMIT_MAX_BYTES = 4 * 1024 * 1024  # a Timeline can be large
IDEMPOTENCY_KEY_MAX = 200


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


class ApiKeys:
    """Refuses any request without one of the configured bearer keys (constant time)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._allowed(scope):
            response = JSONResponse(
                error_body("unauthorized", "send Authorization: Bearer <one of ICEHOOK_API_KEYS>"),
                status_code=401,
                headers={"www-authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _allowed(scope: Scope) -> bool:
        headers = dict(scope["headers"])
        scheme, _, given = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        digest = hashlib.sha256(given.strip().encode()).digest()
        keys = scope["app"].state.runtime.settings.api_keys
        # Compare digests against every key, so timing says nothing about which matched.
        matches = [hmac.compare_digest(digest, hashlib.sha256(k.encode()).digest()) for k in keys]
        return any(matches)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# -- health ---------------------------------------------------------------------------------


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Readiness: the database answers and its schema is at the migrations' head."""
    rt = runtime(request)
    try:
        revision = await db.current_revision(rt.engine)
    except (SQLAlchemyError, OSError) as exc:
        return _not_ready(f"database unreachable: {type(exc).__name__}")
    if revision != rt.schema_head:
        return _not_ready(f"schema at {revision or 'nothing'}, expected {rt.schema_head}")
    return JSONResponse({"status": "ready", "schema": revision})


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)


# -- ICE callbacks ----------------------------------------------------------------------------


async def receive_callback(request: Request) -> Response:
    rt = runtime(request)
    body = await read_body(request, rt.settings.callback_max_bytes)
    reply = await inbox.accept_callback(
        rt,
        request.path_params["token"],
        body,
        request.headers,
        request.client.host if request.client else None,
    )
    if reply.status_code == 200:
        return PlainTextResponse("success")  # ICE only looks at the status
    code = {400: "malformed_callback", 401: "unauthorized"}[reply.status_code]
    return JSONResponse(error_body(code, reply.detail), status_code=reply.status_code)


# -- jobs -------------------------------------------------------------------------------------


async def create_job(request: Request) -> JSONResponse:
    return await _submit(request, schemas.parse_job)


async def create_batch(request: Request) -> JSONResponse:
    return await _submit(request, schemas.parse_batch)


async def _submit(
    request: Request, parse: Callable[[dict[str, Any]], schemas.Submission]
) -> JSONResponse:
    body = schemas.parse_json_body(await read_body(request, SUBMIT_MAX_BYTES))
    sub = parse(body)
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= IDEMPOTENCY_KEY_MAX:
        raise ValidationError("Idempotency-Key", f"must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
    try:
        job, replay = await submission.submit(
            runtime(request), sub, idempotency_key=key, body_hash=submission.request_hash(body)
        )
    except submission.IceRejected as exc:
        raise IceRefused(
            str(exc),
            job=schemas.job_resource(exc.job),
            ice_code=exc.error.code,
            ice_message=exc.error.message,
            ice_request_id=exc.error.request_id,
        ) from None
    if replay:
        status = 200
    elif job["status"] == "submitting":
        status = 202  # ICE's answer is not known yet; the sweeper settles it
    else:
        status = 201
    return JSONResponse(schemas.job_resource(job), status_code=status)


async def _find_job(request: Request, kind: JobKind | None = None) -> dict[str, Any]:
    """The job named by the path's ``id``: icehook's id or ICE's JobId."""
    raw = request.path_params["id"]
    condition = jobs.c.ice_job_id == raw
    with contextlib.suppress(ValueError):
        # ICE's JobIds are 32 hex digits, which also parse as a UUID: look for both.
        condition = sa.or_(condition, jobs.c.id == uuid.UUID(raw))
    if kind is not None:
        condition = sa.and_(condition, jobs.c.kind == kind)
    async with runtime(request).sessionmaker() as session:
        row = (await session.execute(sa.select(jobs).where(condition))).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no {kind.value if kind else 'job'} {raw!r}")
    return dict(row)


async def get_job(request: Request) -> JSONResponse:
    job = await _find_job(request)
    async with runtime(request).sessionmaker() as session:
        events = (
            await session.execute(
                sa.select(job_events)
                .where(job_events.c.job_id == job["id"])
                .order_by(job_events.c.id)
            )
        ).mappings()
        resource = schemas.job_resource(job)
        resource["events"] = [schemas.event_resource(e) for e in events]
    return JSONResponse(resource)


async def get_batch(request: Request) -> JSONResponse:
    batch = await _find_job(request, JobKind.BATCH)
    async with runtime(request).sessionmaker() as session:
        subs = (
            await session.execute(
                sa.select(jobs).where(jobs.c.batch_id == batch["id"]).order_by(jobs.c.created_at)
            )
        ).mappings()
        resource = schemas.job_resource(batch)
        resource["sub_jobs"] = [schemas.job_resource(s) for s in subs]
    return JSONResponse(resource)


async def reconcile_job(request: Request) -> JSONResponse:
    """Ask ICE now and apply the answer."""
    rt = runtime(request)
    job = await _find_job(request)
    async with rt.sessionmaker.begin() as session:
        claimed = await claim_jobs(
            session,
            jobs.c.id == job["id"],
            limit=1,
            lease_seconds=reconcile.lease_seconds(rt),
        )
    if not claimed:
        raise Conflict("a worker is confirming this job with ICE right now; try again shortly")
    after = await reconcile.confirm(rt, job["id"], EventSource.MANUAL)
    return JSONResponse(schemas.job_resource(after or job))


async def list_jobs(request: Request) -> JSONResponse:
    query = schemas.parse_job_query(request.query_params)
    conditions = []
    for column, value in (
        (jobs.c.status, query.status),
        (jobs.c.ice_job_id, query.ice_job_id),
        (jobs.c.project_id, query.project_id),
        (jobs.c.batch_id, query.batch_id),
    ):
        if value is not None:
            conditions.append(column == value)
    if query.created_after is not None:
        conditions.append(jobs.c.created_at >= query.created_after)
    if query.created_before is not None:
        conditions.append(jobs.c.created_at < query.created_before)
    if query.cursor is not None:
        conditions.append(sa.tuple_(jobs.c.created_at, jobs.c.id) < sa.tuple_(*query.cursor))
    statement = (
        sa.select(jobs)
        .where(*conditions)
        .order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
        .limit(query.limit + 1)
    )
    async with runtime(request).sessionmaker() as session:
        rows = (await session.execute(statement)).mappings().all()
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return JSONResponse(
        {
            "items": [schemas.job_resource(r) for r in page],
            "next_cursor": (
                schemas.encode_cursor(page[-1]["created_at"], page[-1]["id"]) if more else None
            ),
        }
    )


v1 = [
    Route("/jobs", create_job, methods=["POST"]),
    Route("/jobs", list_jobs, methods=["GET"]),
    Route("/jobs/{id}", get_job, methods=["GET"]),
    Route("/jobs/{id}/reconcile", reconcile_job, methods=["POST"]),
    Route("/batch-jobs", create_batch, methods=["POST"]),
    Route("/batch-jobs/{id}", get_batch, methods=["GET"]),
]

routes = [
    Route("/callbacks/ice/{token}", receive_callback, methods=["POST"]),  # first: the busiest
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Mount("/v1", routes=v1, middleware=[Middleware(ApiKeys)]),
]
