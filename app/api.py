"""HTTP endpoints as plain async functions, and the routes list.

Every ``/v1`` route needs ``Authorization: Bearer <key>`` (``ApiKeys``). ICE's callbacks
arrive at ``/callbacks/ice/{token}``, outside ``/v1``: the token in the path is their
credential.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from app import (
    audit,
    db,
    inbox,
    metrics,
    numbers,
    openapi,
    outbox,
    reconcile,
    schemas,
    submission,
)
from app.errors import (
    Conflict,
    IceRefused,
    NotFound,
    PayloadTooLarge,
    ValidationError,
    error_body,
)
from app.models import (
    EventSource,
    JobKind,
    JobStatus,
    jobs,
    subscriptions,
)
from app.openapi import Text, operation
from app.queue import DELIVERIES, claim_jobs, notify

if TYPE_CHECKING:
    from app.main import Runtime

SUBMIT_MAX_BYTES = 4 * 1024 * 1024  # a Timeline can be large


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def new_api_key() -> str:
    """A key for ``ICEHOOK_API_KEYS``, for a run that generates its own (``serve --simulate``,
    ``demo``)."""
    return "ih_" + secrets.token_urlsafe(24)


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
    declared = numbers.natural(request.headers.get("content-length", ""))
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# -- health ---------------------------------------------------------------------------------


@operation({200: schemas.Health}, public=True, database=False)
async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


@operation({200: schemas.Readiness, 503: schemas.Readiness}, public=True)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: nothing is wedged (the callback writer, a worker pass, the webhook claims),
    and the database answers, takes writes and has its schema at the migrations' head."""
    rt = runtime(request)
    if problems := rt.health.problems():
        return _not_ready("; ".join(problems))
    try:
        revision, read_only = await db.database_state(rt.engine)
    except (SQLAlchemyError, OSError) as exc:  # OSError: TimeoutError too
        return _not_ready(f"database unreachable: {type(exc).__name__}")
    if read_only:
        return _not_ready("the database is read-only")
    if revision != rt.schema_head:
        return _not_ready(f"schema at {revision or 'nothing'}, expected {rt.schema_head}")
    return JSONResponse({"status": "ready", "schema": revision})


@operation({200: Text("text/plain")})
async def serve_metrics(request: Request) -> Response:
    """Prometheus' text format (behind the API key, as a bearer token)."""
    await metrics.refresh(runtime(request))
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


@operation({200: dict[str, Any]}, public=True, database=False)
async def openapi_json(request: Request) -> Response:
    """This API's description (OpenAPI 3.1)."""
    return Response(_openapi_document(), media_type="application/json")


@functools.cache
def _openapi_document() -> bytes:
    return json.dumps(openapi.document(routes), ensure_ascii=False).encode()


@operation({200: Text("text/html")}, public=True, database=False)
async def docs(request: Request) -> HTMLResponse:
    """The API description, rendered in the browser (Swagger UI)."""
    return HTMLResponse(openapi.DOCS_PAGE)


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)


# -- ICE callbacks ----------------------------------------------------------------------------


@operation(
    {200: Text("text/plain"), 400: schemas.Error, 401: schemas.Error},
    body=schemas.IceCallback,
    public=True,
)
async def receive_callback(request: Request) -> Response:
    """Where ICE posts a job's callbacks: stored, then answered 200.

    The token in the path is the credential (with X-ICE-SIGNATURE when AuthKeys are set).
    """
    rt = runtime(request)
    with metrics.INTAKE_SECONDS.time():
        body = await read_body(request, rt.settings.callback_max_bytes)
        reply = await inbox.accept_callback(
            rt,
            request.path_params["token"],
            body,
            request.headers,
            request.client.host if request.client else None,
        )
    metrics.CALLBACKS_RECEIVED.labels(reply.outcome.value).inc()
    if reply.status_code == 200:
        return PlainTextResponse("success")  # ICE only looks at the status
    code = {400: "malformed_callback", 401: "unauthorized"}[reply.status_code]
    return JSONResponse(error_body(code, reply.detail), status_code=reply.status_code)


# -- jobs -------------------------------------------------------------------------------------


@operation(
    {200: schemas.Job, 201: schemas.Job, 202: schemas.Job},
    body=schemas.JobSubmission,
    headers=schemas.SubmitHeaders,
    errors=(409,),
)
async def create_job(request: Request) -> JSONResponse:
    """Submit one SubmitMediaProducingJob.

    201 with the job; 202 while ICE's answer is not known yet (the sweeper settles it); 200
    for a repeated Idempotency-Key with the same body.
    """
    return await _submit(request, schemas.parse_job)


@operation(
    {200: schemas.Job, 201: schemas.Job, 202: schemas.Job},
    body=schemas.BatchSubmission,
    headers=schemas.SubmitHeaders,
    errors=(409,),
)
async def create_batch(request: Request) -> JSONResponse:
    """Submit one SubmitSceneBatchEditingJob (answered as a job submission is)."""
    return await _submit(request, schemas.parse_batch)


async def _submit(
    request: Request, parse: Callable[[dict[str, Any]], schemas.Submission]
) -> JSONResponse:
    body = schemas.parse_json_body(await read_body(request, SUBMIT_MAX_BYTES))
    sub = parse(body)
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= schemas.IDEMPOTENCY_KEY_MAX:
        limit = schemas.IDEMPOTENCY_KEY_MAX
        raise ValidationError("Idempotency-Key", f"must be 1 to {limit} characters")
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


async def _find_job(
    session: AsyncSession, request: Request, kind: JobKind | None = None
) -> RowMapping:
    """The job named by the path's ``id``: icehook's id or ICE's JobId."""
    raw = request.path_params["id"]
    row = await audit.find_job(session, raw, kind)
    if row is None:
        raise NotFound(f"no {kind.value if kind else 'job'} {raw!r}")
    return row


@operation({200: schemas.JobTimeline})
async def get_job(request: Request) -> JSONResponse:
    """One job with its timeline (``audit.timeline``)."""
    async with runtime(request).sessionmaker() as session:
        return JSONResponse(await audit.timeline(session, await _find_job(session, request)))


@operation({200: schemas.Batch})
async def get_batch(request: Request) -> JSONResponse:
    """One batch with its sub-jobs."""
    async with runtime(request).sessionmaker() as session:
        batch = await _find_job(session, request, JobKind.BATCH)
        subs = (
            await session.execute(
                sa.select(jobs).where(jobs.c.batch_id == batch["id"]).order_by(jobs.c.created_at)
            )
        ).mappings()
        resource = schemas.job_resource(batch)
        resource["sub_jobs"] = [schemas.job_resource(s) for s in subs]
    return JSONResponse(resource)


@operation({200: schemas.Job}, errors=(409,))
async def reconcile_job(request: Request) -> JSONResponse:
    """Ask ICE now and apply the answer."""
    rt = runtime(request)
    async with rt.sessionmaker.begin() as session:
        job = await _find_job(session, request)
        if job["ice_job_id"] is None and job["status"] != JobStatus.SUBMITTING:
            return JSONResponse(schemas.job_resource(job))  # ICE refused it: nothing to ask
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


@operation({200: schemas.JobPage}, query=schemas.JobFilters)
async def list_jobs(request: Request) -> JSONResponse:
    """Jobs, newest first, a page at a time."""
    query = schemas.parse_job_query(request.query_params)
    async with runtime(request).sessionmaker() as session:
        return JSONResponse(await audit.list_jobs(session, query))


@operation({200: schemas.CallbackPage}, query=schemas.CallbackFilters)
async def list_callbacks(request: Request) -> JSONResponse:
    """Every received callback, rejected and unmatched ones too; newest first."""
    query = schemas.parse_callback_query(request.query_params)
    async with runtime(request).sessionmaker() as session:
        return JSONResponse(await audit.list_callbacks(session, query))


# -- subscriptions ----------------------------------------------------------------------------

JSON_BODY_MAX = 64 * 1024


async def _json_body(request: Request) -> dict[str, Any]:
    return schemas.parse_json_body(await read_body(request, JSON_BODY_MAX))


SUBSCRIPTION_ID = {"id": uuid.UUID}  # the path parameter's type, for the API description


def _subscription_id(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["id"])
    except ValueError:
        raise NotFound(f"no subscription {request.path_params['id']!r}") from None


async def _find_subscription(session: AsyncSession, subscription_id: uuid.UUID) -> RowMapping:
    row = (
        (
            await session.execute(
                sa.select(subscriptions).where(
                    subscriptions.c.id == subscription_id, subscriptions.c.deleted_at.is_(None)
                )
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound(f"no subscription {str(subscription_id)!r}")
    return row


@operation({201: schemas.CreatedSubscription}, body=schemas.NewSubscription)
async def create_subscription(request: Request) -> JSONResponse:
    """201 with the subscription and its ``secret``, which is never shown again."""
    rt = runtime(request)
    values = schemas.parse_subscription(await _json_body(request))
    await outbox.check_reachable(values["url"], rt.settings.allowed_webhook_nets)
    async with rt.sessionmaker.begin() as session:
        row, secret = await outbox.subscribe(session, values)
    return JSONResponse(schemas.subscription_resource(row) | {"secret": secret}, status_code=201)


@operation({200: schemas.Subscriptions})
async def list_subscriptions(request: Request) -> JSONResponse:
    """Every subscription (deleted ones are not listed)."""
    async with runtime(request).sessionmaker() as session:
        rows = await outbox.subscriptions_in_use(session)
    return JSONResponse({"items": [schemas.subscription_resource(r) for r in rows]})


@operation({200: schemas.Subscription}, path=SUBSCRIPTION_ID)
async def get_subscription(request: Request) -> JSONResponse:
    """One subscription."""
    async with runtime(request).sessionmaker() as session:
        row = await _find_subscription(session, _subscription_id(request))
    return JSONResponse(schemas.subscription_resource(row))


@operation({200: schemas.Subscription}, body=schemas.SubscriptionChange, path=SUBSCRIPTION_ID)
async def update_subscription(request: Request) -> JSONResponse:
    """Change what is given; enabling a disabled subscription clears why it was disabled."""
    rt = runtime(request)
    subscription_id = _subscription_id(request)
    values = schemas.parse_subscription(await _json_body(request), partial=True)
    if "url" in values:
        await outbox.check_reachable(values["url"], rt.settings.allowed_webhook_nets)
    if values.get("enabled"):
        values |= {"disabled_reason": None, "failing_since": None}
    async with rt.sessionmaker.begin() as session:
        await _find_subscription(session, subscription_id)
        row = (
            (
                await session.execute(
                    sa.update(subscriptions)
                    .where(subscriptions.c.id == subscription_id)
                    .values(**values, updated_at=sa.func.now())
                    .returning(*subscriptions.c)
                )
            )
            .mappings()
            .one()
        )
        if values.get("enabled"):
            await session.execute(sa.select(notify(DELIVERIES)))  # its held deliveries resume
    return JSONResponse(schemas.subscription_resource(row))


@operation({204: None}, path=SUBSCRIPTION_ID)
async def delete_subscription(request: Request) -> Response:
    """204; the subscription's undelivered events are marked dead (its history is kept)."""
    subscription_id = _subscription_id(request)
    async with runtime(request).sessionmaker.begin() as session:
        if not await outbox.unsubscribe(session, subscription_id):
            raise NotFound(f"no subscription {str(subscription_id)!r}")
    return Response(status_code=204)


@operation({200: schemas.RotatedSubscription}, path=SUBSCRIPTION_ID)
async def rotate_secret(request: Request) -> JSONResponse:
    """A new secret, shown once; the old one keeps signing for the configured overlap."""
    rt = runtime(request)
    subscription_id = _subscription_id(request)
    secret = outbox.new_secret()
    overlap = timedelta(seconds=rt.settings.webhook_secret_overlap_seconds)
    async with rt.sessionmaker.begin() as session:
        await _find_subscription(session, subscription_id)
        row = (
            (
                await session.execute(
                    sa.update(subscriptions)
                    .where(subscriptions.c.id == subscription_id)
                    .values(
                        previous_secret=subscriptions.c.secret,
                        previous_secret_until=sa.func.now() + overlap,
                        secret=secret,
                        updated_at=sa.func.now(),
                    )
                    .returning(*subscriptions.c)
                )
            )
            .mappings()
            .one()
        )
    return JSONResponse(
        schemas.subscription_resource(row)
        | {
            "secret": secret,
            "previous_secret_valid_until": row["previous_secret_until"].isoformat(),
        }
    )


@operation({202: schemas.Replayed}, body=schemas.Replay, path=SUBSCRIPTION_ID)
async def replay_subscription(request: Request) -> JSONResponse:
    """Send the subscription the recorded events of a period again (202: they are queued)."""
    rt = runtime(request)
    subscription_id = _subscription_id(request)
    since, until = schemas.parse_replay(await _json_body(request))
    async with rt.sessionmaker.begin() as session:
        subscription = await _find_subscription(session, subscription_id)
        count = await outbox.replay(session, subscription, since, until)
    return JSONResponse({"replayed": count}, status_code=202)


# -- deliveries -------------------------------------------------------------------------------


DELIVERY_ID = {"id": int}


def _delivery_id(request: Request) -> int:
    raw = request.path_params["id"]
    delivery_id = numbers.natural(raw)
    if delivery_id is None:
        raise NotFound(f"no delivery {raw!r}")
    return delivery_id


@operation({200: schemas.DeliveryPage}, query=schemas.DeliveryFilters)
async def list_deliveries(request: Request) -> JSONResponse:
    """Webhook deliveries, newest first, a page at a time."""
    query = schemas.parse_delivery_query(request.query_params)
    async with runtime(request).sessionmaker() as session:
        return JSONResponse(await audit.list_deliveries(session, query))


async def _delivery(session: AsyncSession, delivery_id: int) -> dict[str, Any]:
    resource = await audit.delivery(session, delivery_id)
    if resource is None:
        raise NotFound(f"no delivery {delivery_id}")
    return resource


@operation({200: schemas.DeliveryDetail}, path=DELIVERY_ID)
async def get_delivery(request: Request) -> JSONResponse:
    """One delivery with every attempt."""
    async with runtime(request).sessionmaker() as session:
        return JSONResponse(await _delivery(session, _delivery_id(request)))


@operation({202: schemas.DeliveryDetail}, path=DELIVERY_ID, errors=(409,))
async def retry_delivery(request: Request) -> JSONResponse:
    """Make a delivery due now with a fresh retry schedule (a delivered one is sent again)."""
    delivery_id = _delivery_id(request)
    async with runtime(request).sessionmaker.begin() as session:
        if await outbox.retry(session, delivery_id) is None:
            raise NotFound(f"no delivery {delivery_id}")
        resource = await _delivery(session, delivery_id)
    return JSONResponse(resource, status_code=202)


v1 = [
    Route("/jobs", create_job, methods=["POST"]),
    Route("/jobs", list_jobs, methods=["GET"]),
    Route("/jobs/{id}", get_job, methods=["GET"]),
    Route("/jobs/{id}/reconcile", reconcile_job, methods=["POST"]),
    Route("/batch-jobs", create_batch, methods=["POST"]),
    Route("/batch-jobs/{id}", get_batch, methods=["GET"]),
    Route("/subscriptions", create_subscription, methods=["POST"]),
    Route("/subscriptions", list_subscriptions, methods=["GET"]),
    Route("/subscriptions/{id}", get_subscription, methods=["GET"]),
    Route("/subscriptions/{id}", update_subscription, methods=["PATCH"]),
    Route("/subscriptions/{id}", delete_subscription, methods=["DELETE"]),
    Route("/subscriptions/{id}/rotate-secret", rotate_secret, methods=["POST"]),
    Route("/subscriptions/{id}/replay", replay_subscription, methods=["POST"]),
    Route("/callbacks", list_callbacks, methods=["GET"]),
    Route("/deliveries", list_deliveries, methods=["GET"]),
    Route("/deliveries/{id}", get_delivery, methods=["GET"]),
    Route("/deliveries/{id}/retry", retry_delivery, methods=["POST"]),
]

routes = [
    Route("/callbacks/ice/{token}", receive_callback, methods=["POST"]),  # first: the busiest
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Route("/metrics", serve_metrics, methods=["GET"], middleware=[Middleware(ApiKeys)]),
    # No trailing-slash redirects: Starlette would build their address from the request's
    # own Host header, and a client that needs one is better told 404.
    Mount("/v1", app=Router(v1, redirect_slashes=False), middleware=[Middleware(ApiKeys)]),
]
