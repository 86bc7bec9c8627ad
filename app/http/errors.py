"""Errors as HTTP answers: the one handler that turns an error into JSON, and the middleware
that answers what nothing else handled.

``ApiError`` (``core.errors``) is answered as ``{"error": {code, message, ...}}`` with its
status. A database that cannot do the work now (``store.engine.unavailable``), which can
happen anywhere, is answered 503 with ``Retry-After``, so that a client (ICE, for a
callback) tries again. A client that went away gets nothing, and no log line: anyone can
cause it.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import ApiError, Unavailable, error_body
from app.store.engine import unavailable

logger = logging.getLogger(__name__)


async def handle_error(request: Request, exc: Exception) -> Response:
    """The one JSON error handler (see ``HANDLED``)."""
    if isinstance(exc, ClientDisconnect):
        # No one is there to answer, and anyone can cause it: not worth a log line.
        return Response(status_code=400)
    if unavailable(exc):
        logger.warning("database unreachable on %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            error_body(Unavailable.code, "the database is unreachable; try again shortly"),
            status_code=Unavailable.status,
            headers={"retry-after": "1"},
        )
    if isinstance(exc, ApiError):
        return JSONResponse(
            error_body(exc.code, exc.message, **exc.details), status_code=exc.status
        )
    if isinstance(exc, HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)


# The errors Starlette's own exception middleware hands to ``handle_error``; any other
# exception reaches ``Unhandled``.
HANDLED: tuple[type[Exception], ...] = (ApiError, HTTPException, ClientDisconnect)


class Unhandled:
    """ASGI middleware: answers an exception nothing else handled with ``handle_error``
    (503 for a lost database, else 500).

    Starlette would leave it to its outermost middleware, outside the app's own: the answer
    would then lack the request id (app/logs.py) and the log line its ``request_id``. An
    exception after the answer has started cannot be answered; it goes on to the server.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            if started:
                raise
            response = await handle_error(Request(scope), exc)
            await response(scope, receive, send)
