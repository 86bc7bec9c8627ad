"""HTTP endpoints as plain async functions, and the routes list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app import db

if TYPE_CHECKING:
    from app.main import Runtime


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


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


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
