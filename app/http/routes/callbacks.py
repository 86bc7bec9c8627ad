"""ICE's callbacks (``POST /callbacks/ice/{token}``, outside ``/v1``: the token in the path is
the credential), and the audit's list of every callback received."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from app.core.errors import error_body
from app.flows.intake import Intake
from app.http.contracts.callbacks import (
    CallbackFilters,
    CallbackPage,
    IceCallback,
    callback_resource,
    parse_callback_query,
)
from app.http.contracts.common import encode_id_cursor, page_resource
from app.http.contracts.errors import Error
from app.http.openapi import Text, operation
from app.http.routes.common import read_body
from app.store import audit
from app.telemetry import metrics


class CallbackRoutes:
    """Uses: the ``Intake``, the largest callback body accepted, and the database (the list)."""

    def __init__(
        self, intake: Intake, max_bytes: int, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self.intake = intake
        self.max_bytes = max_bytes
        self.sessionmaker = sessionmaker

    def ice_routes(self) -> list[Route]:
        return [Route("/callbacks/ice/{token}", self.receive, methods=["POST"])]

    def v1_routes(self) -> list[Route]:
        return [Route("/callbacks", self.list, methods=["GET"])]

    @operation(
        {200: Text("text/plain"), 400: Error, 401: Error},
        body=IceCallback,
        public=True,
    )
    async def receive(self, request: Request) -> Response:
        """Where ICE posts a job's callbacks: stored, then answered 200.

        The token in the path is the credential (with X-ICE-SIGNATURE when AuthKeys are set).
        """
        with metrics.INTAKE_SECONDS.time():
            body = await read_body(request, self.max_bytes)
            reply = await self.intake.accept(
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

    @operation({200: CallbackPage}, query=CallbackFilters)
    async def list(self, request: Request) -> JSONResponse:
        """Every received callback, rejected and unmatched ones too; newest first."""
        query = parse_callback_query(request.query_params)
        async with self.sessionmaker() as session:
            found = await audit.callbacks(session, query)
        return JSONResponse(
            page_resource(found, callback_resource, lambda last: encode_id_cursor(last["id"]))
        )
