"""Webhook deliveries: the log (each with every attempt), and sending one again by hand."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.core.errors import NotFound
from app.core.parsing import natural
from app.http.contracts.common import encode_id_cursor, page_resource
from app.http.contracts.deliveries import (
    DeliveryDetail,
    DeliveryFilters,
    DeliveryPage,
    attempt_resource,
    delivery_resource,
    parse_delivery_query,
)
from app.http.openapi import operation
from app.store import audit, deliveries

DELIVERY_ID = {"id": int}  # the path parameter's type, for the API description


class DeliveryRoutes:
    """Uses: the database."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    def routes(self) -> list[Route]:
        return [
            Route("/deliveries", self.list, methods=["GET"]),
            Route("/deliveries/{id}", self.get, methods=["GET"]),
            Route("/deliveries/{id}/retry", self.retry, methods=["POST"]),
        ]

    @operation({200: DeliveryPage}, query=DeliveryFilters)
    async def list(self, request: Request) -> JSONResponse:
        """Webhook deliveries, newest first, a page at a time."""
        query = parse_delivery_query(request.query_params)
        async with self.sessionmaker() as session:
            found = await audit.deliveries(session, query)
        return JSONResponse(
            page_resource(found, delivery_resource, lambda last: encode_id_cursor(last["id"]))
        )

    @operation({200: DeliveryDetail}, path=DELIVERY_ID)
    async def get(self, request: Request) -> JSONResponse:
        """One delivery with every attempt."""
        async with self.sessionmaker() as session:
            return JSONResponse(await delivery_detail(session, delivery_id_in(request)))

    @operation({202: DeliveryDetail}, path=DELIVERY_ID, errors=(409,))
    async def retry(self, request: Request) -> JSONResponse:
        """Make a delivery due now with a fresh retry schedule (a delivered one is sent again)."""
        return JSONResponse(await self.retry_now(delivery_id_in(request)), status_code=202)

    async def retry_now(self, delivery_id: int) -> dict[str, Any]:
        """The delivery, made due now with a fresh retry schedule."""
        async with self.sessionmaker.begin() as session:
            if not await deliveries.retry(session, delivery_id):
                raise NotFound(f"no delivery {delivery_id}")
            return await delivery_detail(session, delivery_id)


async def delivery_detail(session: AsyncSession, delivery_id: int) -> dict[str, Any]:
    """One delivery's resource with its ``attempt_log``; ``NotFound`` if there is no such."""
    found = await audit.delivery(session, delivery_id)
    if found is None:
        raise NotFound(f"no delivery {delivery_id}")
    row, attempts = found
    return delivery_resource(row) | {"attempt_log": [attempt_resource(a) for a in attempts]}


def delivery_id_in(request: Request) -> int:
    """The delivery id of the path (its ``id``); ``NotFound`` unless it is one."""
    raw = request.path_params["id"]
    delivery_id = natural(raw)
    if delivery_id is None:
        raise NotFound(f"no delivery {raw!r}")
    return delivery_id
