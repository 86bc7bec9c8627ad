"""Webhook subscriptions: created (a v1 secret shown once), listed, read, changed (disabling
or enabling one is logged as a WARNING and announced as an operational event), deleted,
their secret rotated, their events replayed, their undelivered events recovered, their dead
deliveries retried. Each action is also a method the console calls, so that both do the
same."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.core.errors import Conflict, NotFound
from app.flows.reporting import log_disabled, log_enabled
from app.http.contracts.subscriptions import (
    CreatedSubscription,
    NewSubscription,
    Recovered,
    Replay,
    Replayed,
    Retried,
    RotatedSubscription,
    Subscription,
    SubscriptionChange,
    Subscriptions,
    parse_replay,
    parse_subscription,
    shown_once,
    subscription_resource,
)
from app.http.openapi import operation
from app.http.routes.common import json_body
from app.settings import IpNetwork
from app.store import deliveries, subscriptions
from app.webhooks.addresses import check_reachable
from app.webhooks.signing import new_secret

SUBSCRIPTION_ID = {"id": uuid.UUID}  # the path parameter's type, for the API description


class SubscriptionRoutes:
    """Uses: the database, the networks subscribers may be in although not public, how
    long a rotated-out secret still signs, and how long a disabled subscription's events
    are still queued for it (seconds)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        allowed_nets: Sequence[IpNetwork],
        secret_overlap: timedelta,
        disabled_queue_seconds: float,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.allowed_nets = allowed_nets
        self.secret_overlap = secret_overlap
        self.disabled_queue_seconds = disabled_queue_seconds

    def routes(self) -> list[Route]:
        return [
            Route("/subscriptions", self.create, methods=["POST"]),
            Route("/subscriptions", self.list, methods=["GET"]),
            Route("/subscriptions/{id}", self.get, methods=["GET"]),
            Route("/subscriptions/{id}", self.update, methods=["PATCH"]),
            Route("/subscriptions/{id}", self.delete, methods=["DELETE"]),
            Route("/subscriptions/{id}/rotate-secret", self.rotate_secret, methods=["POST"]),
            Route("/subscriptions/{id}/replay", self.replay, methods=["POST"]),
            Route("/subscriptions/{id}/recover", self.recover, methods=["POST"]),
            Route("/subscriptions/{id}/retry-dead", self.retry_dead, methods=["POST"]),
        ]

    @operation({201: CreatedSubscription}, body=NewSubscription)
    async def create(self, request: Request) -> JSONResponse:
        """201 with the subscription; a ``v1`` one with its ``secret``, never shown again.

        A ``v1a`` one's ``public_key`` verifies it; its secret key is never shown."""
        created = await self.create_subscription(await json_body(request))
        return JSONResponse(created, status_code=201)

    async def create_subscription(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A new subscription from ``body`` (``NewSubscription``), with its secret."""
        values = parse_subscription(body)
        await check_reachable(values["url"], self.allowed_nets)
        secret = new_secret(values.setdefault("signature_scheme", "v1"))
        async with self.sessionmaker.begin() as session:
            row = await subscriptions.create(session, values, secret)
        return shown_once(row, secret)

    @operation({200: Subscriptions})
    async def list(self, request: Request) -> JSONResponse:
        """Every subscription (deleted ones are not listed)."""
        async with self.sessionmaker() as session:
            rows = await subscriptions.in_use(session)
        return JSONResponse({"items": [subscription_resource(r) for r in rows]})

    @operation({200: Subscription}, path=SUBSCRIPTION_ID)
    async def get(self, request: Request) -> JSONResponse:
        """One subscription."""
        async with self.sessionmaker() as session:
            row = await _find(session, subscription_id_in(request))
        return JSONResponse(subscription_resource(row))

    @operation({200: Subscription}, body=SubscriptionChange, path=SUBSCRIPTION_ID)
    async def update(self, request: Request) -> JSONResponse:
        """Change what is given (``headers`` and ``filter`` are replaced whole; null removes
        them). Disabling queues its new events for it for a while
        (``ICEHOOK_WEBHOOK_DISABLED_QUEUE_SECONDS``); enabling a disabled subscription clears
        why it was disabled and sends what was queued. Either is announced to the
        subscriptions that want ``subscription.disabled``/``subscription.enabled``."""
        changed = await self.change(subscription_id_in(request), await json_body(request))
        return JSONResponse(changed)

    async def change(self, subscription_id: uuid.UUID, body: Mapping[str, Any]) -> dict[str, Any]:
        """The subscription with what ``body`` (``SubscriptionChange``) gives changed."""
        values = parse_subscription(body, partial=True)
        if "url" in values:
            await check_reachable(values["url"], self.allowed_nets)
        async with self.sessionmaker.begin() as session:
            before = await _find(session, subscription_id)
            row = await subscriptions.change(
                session, subscription_id, values, self.disabled_queue_seconds
            )
        if before["enabled"] and not row["enabled"]:
            log_disabled(row)
        elif row["enabled"] and not before["enabled"]:
            log_enabled(row)
        return subscription_resource(row)

    @operation({204: None}, path=SUBSCRIPTION_ID)
    async def delete(self, request: Request) -> Response:
        """204; the subscription's undelivered events are marked dead (its history is kept)."""
        subscription_id = subscription_id_in(request)
        async with self.sessionmaker.begin() as session:
            if not await subscriptions.delete(session, subscription_id):
                raise NotFound(f"no subscription {str(subscription_id)!r}")
        return Response(status_code=204)

    @operation({200: RotatedSubscription}, path=SUBSCRIPTION_ID)
    async def rotate_secret(self, request: Request) -> JSONResponse:
        """A new secret or key pair; the old one keeps signing for the configured overlap.

        ``v1``: the new ``secret``, shown once; ``v1a``: the new ``public_key``."""
        return JSONResponse(await self.rotate(subscription_id_in(request)))

    async def rotate(self, subscription_id: uuid.UUID) -> dict[str, Any]:
        """The subscription with a new secret of its scheme (a v1 one shown here once)."""
        async with self.sessionmaker.begin() as session:
            secret = new_secret((await _find(session, subscription_id))["signature_scheme"])
            row = await subscriptions.rotate(session, subscription_id, secret, self.secret_overlap)
        return shown_once(row, secret) | {
            "previous_secret_valid_until": row["previous_secret_until"].isoformat(),
        }

    @operation({202: Replayed}, body=Replay, path=SUBSCRIPTION_ID)
    async def replay(self, request: Request) -> JSONResponse:
        """Send the subscription the recorded events of a period again (202: they are queued)."""
        count = await self.replay_events(subscription_id_in(request), await json_body(request))
        return JSONResponse({"replayed": count}, status_code=202)

    async def replay_events(self, subscription_id: uuid.UUID, body: Mapping[str, Any]) -> int:
        """Queue the events of the period ``body`` (``Replay``) gives again; how many."""
        since, until = parse_replay(body)
        async with self.sessionmaker.begin() as session:
            await _find(session, subscription_id)
            return await deliveries.replay(session, subscription_id, since, until)

    @operation({202: Recovered}, body=Replay, path=SUBSCRIPTION_ID)
    async def recover(self, request: Request) -> JSONResponse:
        """Send the subscription again only what it was meant to receive in a period (by
        when each event was recorded, from when the subscription existed) and has not been
        delivered: pending, dead, or never queued while it was disabled. Delivered events
        are not sent again (``replay`` sends every one). 202: they are queued."""
        count = await self.recover_events(subscription_id_in(request), await json_body(request))
        return JSONResponse({"recovered": count}, status_code=202)

    async def recover_events(self, subscription_id: uuid.UUID, body: Mapping[str, Any]) -> int:
        """Queue the undelivered events of the period ``body`` (``Replay``) gives; how many."""
        since, until = parse_replay(body)
        async with self.sessionmaker.begin() as session:
            await _find(session, subscription_id)
            return await deliveries.replay(session, subscription_id, since, until, recovering=True)

    @operation({202: Retried}, body=Replay, path=SUBSCRIPTION_ID, errors=(409,))
    async def retry_dead(self, request: Request) -> JSONResponse:
        """Make the subscription's dead deliveries of a period (by when their event was
        recorded) due again, each with a fresh retry schedule (202: they are queued). 409
        while the subscription is disabled."""
        count = await self.retry_dead_deliveries(
            subscription_id_in(request), await json_body(request)
        )
        return JSONResponse({"retried": count}, status_code=202)

    async def retry_dead_deliveries(
        self, subscription_id: uuid.UUID, body: Mapping[str, Any]
    ) -> int:
        """Make the dead deliveries of the period ``body`` (``Replay``) gives due again."""
        since, until = parse_replay(body)
        async with self.sessionmaker.begin() as session:
            subscription = await _find(session, subscription_id)
            if not subscription["enabled"]:
                raise Conflict("the subscription is disabled; enable it first")
            return await deliveries.retry_dead(session, subscription_id, since, until)


def subscription_id_in(request: Request) -> uuid.UUID:
    """The subscription id of the path (its ``id``); ``NotFound`` unless it is one."""
    try:
        return uuid.UUID(request.path_params["id"])
    except ValueError:
        raise NotFound(f"no subscription {request.path_params['id']!r}") from None


async def _find(session: AsyncSession, subscription_id: uuid.UUID) -> RowMapping:
    row = await subscriptions.find(session, subscription_id)
    if row is None:
        raise NotFound(f"no subscription {str(subscription_id)!r}")
    return row
