"""The service's own routes: liveness, readiness and metrics."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.core.access import Role
from app.core.health import Health
from app.flows.gauges import DatabaseGauges
from app.http.contracts.common import Health as Liveness
from app.http.contracts.common import Readiness
from app.http.openapi import Text, operation
from app.store import schema
from app.telemetry import metrics


class ServiceRoutes:
    """Uses: the engine and the schema's head revision (readiness), the process's health
    watches, and the gauges read from the database (``serve`` only; kept current in the
    background, so a scrape does not wait for the database)."""

    def __init__(
        self,
        engine: AsyncEngine,
        health: Health,
        schema_head: str,
        *,
        database_gauges: DatabaseGauges | None,
    ) -> None:
        self.engine = engine
        self.health = health
        self.schema_head = schema_head
        self.database_gauges = database_gauges

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
        ]

    @operation({200: Liveness}, public=True, database=False)
    async def healthz(self, request: Request) -> JSONResponse:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    @operation({200: Readiness, 503: Readiness}, public=True)
    async def readyz(self, request: Request) -> JSONResponse:
        """Readiness: nothing is wedged (the callback writer, a worker pass, the webhook
        claims), and the database answers, takes writes and has its schema at the
        migrations' head."""
        if problems := self.health.problems():
            return _not_ready("; ".join(problems))
        try:
            revision, read_only = await schema.database_state(self.engine)
        except (SQLAlchemyError, OSError) as exc:  # OSError: TimeoutError too
            return _not_ready(f"database unreachable: {type(exc).__name__}")
        if read_only:
            return _not_ready("the database is read-only")
        if revision != self.schema_head:
            return _not_ready(f"schema at {revision or 'nothing'}, expected {self.schema_head}")
        return JSONResponse({"status": "ready", "schema": revision})

    @operation({200: Text("text/plain")}, role=Role.METRICS)
    async def metrics(self, request: Request) -> Response:
        """Prometheus' text format (behind the API key, as a bearer token)."""
        if self.database_gauges is not None:
            self.database_gauges.publish()
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
