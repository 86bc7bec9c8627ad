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
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app import db, inbox, metrics, outbox, reconcile, schemas, submission
from app.errors import (
    Conflict,
    IceRefused,
    NotFound,
    PayloadTooLarge,
    ValidationError,
    error_body,
)
from app.models import (
    DeliveryStatus,
    EventSource,
    JobKind,
    callbacks,
    deliveries,
    delivery_attempts,
    job_events,
    jobs,
    subscriptions,
)
from app.models import outbox as messages
from app.queue import DELIVERIES, claim_jobs, notify

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


async def serve_metrics(request: Request) -> Response:
    """Prometheus' text format (behind the API key, as a bearer token)."""
    await metrics.refresh(runtime(request))
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)


# -- ICE callbacks ----------------------------------------------------------------------------


async def receive_callback(request: Request) -> Response:
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
    """One job with its timeline: its events, the callbacks received for it (each with how
    it was judged) and its deliveries, each oldest first."""
    job = await _find_job(request)
    async with runtime(request).sessionmaker() as session:
        events = (
            await session.execute(
                sa.select(job_events)
                .where(job_events.c.job_id == job["id"])
                .order_by(job_events.c.id)
            )
        ).mappings()
        received = (
            await session.execute(
                sa.select(*CALLBACK_COLUMNS)
                .where(callbacks.c.job_id == job["id"])
                .order_by(callbacks.c.id)
            )
        ).mappings()
        sent = (
            await session.execute(
                sa.select(*DELIVERY_COLUMNS)
                .join(messages, messages.c.id == deliveries.c.message_id)
                .where(deliveries.c.job_id == job["id"])
                .order_by(deliveries.c.id)
            )
        ).mappings()
        resource = schemas.job_resource(job)
        resource["events"] = [schemas.event_resource(e) for e in events]
        resource["callbacks"] = [schemas.callback_resource(c) for c in received]
        resource["deliveries"] = [schemas.delivery_resource(d) for d in sent]
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
    conditions = _equal(
        (jobs.c.status, query.status),
        (jobs.c.ice_job_id, query.ice_job_id),
        (jobs.c.project_id, query.project_id),
        (jobs.c.batch_id, query.batch_id),
    )
    if query.created_after is not None:
        conditions.append(jobs.c.created_at >= query.created_after)
    if query.created_before is not None:
        conditions.append(jobs.c.created_at < query.created_before)
    if query.cursor is not None:
        conditions.append(sa.tuple_(jobs.c.created_at, jobs.c.id) < sa.tuple_(*query.cursor))
    statement = (
        sa.select(jobs).where(*conditions).order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
    )
    return await _page(
        request,
        statement,
        query.limit,
        schemas.job_resource,
        lambda last: schemas.encode_cursor(last["created_at"], last["id"]),
    )


CALLBACK_COLUMNS = tuple(callbacks.c[name] for name in schemas.CALLBACK_FIELDS)


async def list_callbacks(request: Request) -> JSONResponse:
    """Every received callback, rejected and unmatched ones too; newest first."""
    query = schemas.parse_callback_query(request.query_params)
    conditions = _equal((callbacks.c.outcome, query.outcome), (callbacks.c.job_id, query.job_id))
    if query.received_after is not None:
        conditions.append(callbacks.c.received_at >= query.received_after)
    if query.received_before is not None:
        conditions.append(callbacks.c.received_at < query.received_before)
    if query.before_id is not None:
        conditions.append(callbacks.c.id < query.before_id)
    statement = sa.select(*CALLBACK_COLUMNS).where(*conditions).order_by(callbacks.c.id.desc())
    return await _page(
        request,
        statement,
        query.limit,
        schemas.callback_resource,
        lambda last: schemas.encode_id_cursor(last["id"]),
    )


def _equal(*pairs: tuple[sa.ColumnElement[Any], object]) -> list[sa.ColumnElement[bool]]:
    """A list query's equality filters: one condition per value that was given."""
    return [column == value for column, value in pairs if value is not None]


async def _page(
    request: Request,
    statement: sa.Select[Any],
    limit: int,
    resource: Callable[[RowMapping], dict[str, Any]],
    cursor_of: Callable[[RowMapping], str],
) -> JSONResponse:
    """``limit`` rows of ``statement`` (ordered newest first) and the cursor to the next."""
    async with runtime(request).sessionmaker() as session:
        rows = (await session.execute(statement.limit(limit + 1))).mappings().all()
    page = rows[:limit]
    return JSONResponse(
        {
            "items": [resource(row) for row in page],
            "next_cursor": cursor_of(page[-1]) if len(rows) > limit else None,
        }
    )


# -- subscriptions ----------------------------------------------------------------------------

JSON_BODY_MAX = 64 * 1024


async def _json_body(request: Request) -> dict[str, Any]:
    return schemas.parse_json_body(await read_body(request, JSON_BODY_MAX))


async def _check_reachable(rt: Runtime, url: str) -> None:
    """Refuse a subscriber URL whose host icehook may not reach (checked again at delivery)."""
    try:
        await outbox.resolve(url, rt.settings.allowed_webhook_nets)
    except outbox.Refused as exc:
        raise ValidationError("url", str(exc)) from None


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


async def create_subscription(request: Request) -> JSONResponse:
    """201 with the subscription and its ``secret``, which is never shown again."""
    rt = runtime(request)
    values = schemas.parse_subscription(await _json_body(request))
    await _check_reachable(rt, values["url"])
    secret = outbox.new_secret()
    async with rt.sessionmaker.begin() as session:
        row = (
            (
                await session.execute(
                    sa.insert(subscriptions)
                    .values(id=uuid.uuid4(), secret=secret, **values)
                    .returning(*subscriptions.c)
                )
            )
            .mappings()
            .one()
        )
    return JSONResponse(schemas.subscription_resource(row) | {"secret": secret}, status_code=201)


async def list_subscriptions(request: Request) -> JSONResponse:
    async with runtime(request).sessionmaker() as session:
        rows = (
            await session.execute(
                sa.select(subscriptions)
                .where(subscriptions.c.deleted_at.is_(None))
                .order_by(subscriptions.c.created_at, subscriptions.c.id)
            )
        ).mappings()
        return JSONResponse({"items": [schemas.subscription_resource(r) for r in rows]})


async def get_subscription(request: Request) -> JSONResponse:
    async with runtime(request).sessionmaker() as session:
        row = await _find_subscription(session, _subscription_id(request))
    return JSONResponse(schemas.subscription_resource(row))


async def update_subscription(request: Request) -> JSONResponse:
    """Change what is given; enabling a disabled subscription clears why it was disabled."""
    rt = runtime(request)
    subscription_id = _subscription_id(request)
    values = schemas.parse_subscription(await _json_body(request), partial=True)
    if "url" in values:
        await _check_reachable(rt, values["url"])
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


async def delete_subscription(request: Request) -> Response:
    """204; the subscription's undelivered events are marked dead (its history is kept)."""
    subscription_id = _subscription_id(request)
    async with runtime(request).sessionmaker.begin() as session:
        await _find_subscription(session, subscription_id)
        await session.execute(
            sa.update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(enabled=False, deleted_at=sa.func.now(), updated_at=sa.func.now())
        )
        await session.execute(
            sa.update(deliveries)
            .where(
                deliveries.c.subscription_id == subscription_id,
                deliveries.c.status == DeliveryStatus.PENDING,
            )
            .values(status=DeliveryStatus.DEAD, last_error="the subscription was deleted")
        )
    return Response(status_code=204)


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

DELIVERY_COLUMNS = (*deliveries.c, messages.c.event_id)


def _delivery_id(request: Request) -> int:
    raw = request.path_params["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"no delivery {raw!r}")
    return int(raw)


async def list_deliveries(request: Request) -> JSONResponse:
    query = schemas.parse_delivery_query(request.query_params)
    conditions = _equal(
        (deliveries.c.status, query.status),
        (deliveries.c.subscription_id, query.subscription_id),
        (deliveries.c.job_id, query.job_id),
        (deliveries.c.event_type, query.event_type),
    )
    if query.before_id is not None:
        conditions.append(deliveries.c.id < query.before_id)
    statement = (
        sa.select(*DELIVERY_COLUMNS)
        .join(messages, messages.c.id == deliveries.c.message_id)
        .where(*conditions)
        .order_by(deliveries.c.id.desc())
    )
    return await _page(
        request,
        statement,
        query.limit,
        schemas.delivery_resource,
        lambda last: schemas.encode_id_cursor(last["id"]),
    )


async def _delivery(session: AsyncSession, delivery_id: int) -> dict[str, Any]:
    row = (
        (
            await session.execute(
                sa.select(*DELIVERY_COLUMNS)
                .join(messages, messages.c.id == deliveries.c.message_id)
                .where(deliveries.c.id == delivery_id)
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound(f"no delivery {delivery_id}")
    attempts = (
        await session.execute(
            sa.select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id == delivery_id)
            .order_by(delivery_attempts.c.id)
        )
    ).mappings()
    resource = schemas.delivery_resource(row)
    resource["attempt_log"] = [schemas.attempt_resource(a) for a in attempts]
    return resource


async def get_delivery(request: Request) -> JSONResponse:
    """One delivery with every attempt."""
    async with runtime(request).sessionmaker() as session:
        return JSONResponse(await _delivery(session, _delivery_id(request)))


async def retry_delivery(request: Request) -> JSONResponse:
    """Make a delivery due now with a fresh retry schedule (a delivered one is sent again)."""
    delivery_id = _delivery_id(request)
    async with runtime(request).sessionmaker.begin() as session:
        if await outbox.retry(session, delivery_id) is None:
            raise NotFound(f"no delivery {delivery_id}")
        subscription = (
            await session.execute(
                sa.select(subscriptions.c.enabled, subscriptions.c.deleted_at)
                .join(deliveries, deliveries.c.subscription_id == subscriptions.c.id)
                .where(deliveries.c.id == delivery_id)
            )
        ).one()
        if subscription.deleted_at is not None or not subscription.enabled:
            raise Conflict("its subscription is disabled or deleted; enable it first")
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
    Route("/metrics", serve_metrics, methods=["GET"], middleware=[Middleware(ApiKeys)]),
    Mount("/v1", routes=v1, middleware=[Middleware(ApiKeys)]),
]
