"""The one error tree of icehook, and the one handler that turns it into JSON.

::

    IcehookError                     anything icehook raises on purpose
    ├── ConfigError                  a setting is wrong; the program stops at start (exit 2)
    ├── ApiError                     answered to an HTTP client as {"error": {code, message}}
    │   ├── BadRequest          400
    │   ├── NotFound            404
    │   ├── Conflict            409
    │   ├── PayloadTooLarge     413
    │   ├── ValidationError     422  names the field that is wrong
    │   ├── IceRefused          422  ICE refused a submission; carries ICE's Code and Message
    │   └── Unavailable         503  the database cannot be reached (also from outside errors)
    ├── SignatureError               a signature is missing, malformed, stale or does not verify
    └── IceError                     ICE answered with an error, or could not be reached
        └── IceJobNotFound           ICE does not know the job (JobNotFound, or a malformed JobId)

Errors from outside (httpx, asyncpg, ICE error bodies, signature parsing) are turned
into one of these in the module that meets them; nothing else leaks to a client. The one
exception is losing the database, which can happen anywhere: ``handle_error`` answers it
with 503 and ``Retry-After``, so that a client (ICE, for a callback) tries again.
"""

from __future__ import annotations

import logging
import sys
from typing import ClassVar

from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


class IcehookError(Exception):
    """Base of every error icehook raises on purpose."""


class ConfigError(IcehookError):
    """A configuration variable is missing or malformed."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class ApiError(IcehookError):
    """An error answered to an HTTP client."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details  # extra keys of the error object, e.g. the field at fault


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class ValidationError(ApiError):
    status = 422
    code = "validation_error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.field = field


class Unavailable(ApiError):
    status = 503
    code = "unavailable"


class IceRefused(ApiError):
    """ICE refused a submission (the job is kept, as ``rejected``)."""

    status = 422
    code = "ice_rejected"


class SignatureError(IcehookError):
    """A request or callback signature is missing, malformed, expired or wrong."""


class IceError(IcehookError):
    """ICE refused a call, or could not be reached (then ``status`` is 0 and ``code`` says why)."""

    def __init__(
        self, status: int, code: str, message: str, request_id: str = "", retry_after: float = 0.0
    ) -> None:
        super().__init__(f"ICE {code} (HTTP {status}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after


class IceJobNotFound(IceError):
    """ICE has no such job."""


def error_body(code: str, message: str, **details: object) -> dict[str, dict[str, object]]:
    return {"error": {"code": code, "message": message, **details}}


# SQLSTATEs (or their classes) that say "not now": the same request may work later.
# 08 connection exception, 53 insufficient resources, 57 operator intervention (a cancelled
# or timed-out statement, an administrator's shutdown), 25006 read-only transaction (a
# standby, or a primary made read-only), 40001 / 40P01 serialization failure and deadlock.
RETRY_LATER_SQLSTATES = ("08", "53", "57", "25006", "40001", "40P01")


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot do this now: it could not be reached, the
    connection was lost, a statement ran out of time, or the database refuses writes."""
    if isinstance(exc, sa_exc.DBAPIError):
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
        return (
            exc.connection_invalidated
            or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
            or sqlstate.startswith(RETRY_LATER_SQLSTATES)
        )
    # No pooled connection came free, the network failed, or a statement's client-side
    # deadline passed (TimeoutError is an OSError).
    return isinstance(exc, sa_exc.TimeoutError | OSError)


def log_failure(log: logging.Logger, message: str, *args: object) -> None:
    """Log the exception being handled: a WARNING naming it when the database cannot do the
    work now (it recovers by itself, and a traceback would say nothing new each time), else
    an ERROR with its traceback."""
    exc = sys.exc_info()[1]
    if exc is not None and database_unreachable(exc):
        reason = str(exc).splitlines()[0] if str(exc) else ""
        log.warning(f"{message} (the database: %s: %s)", *args, type(exc).__name__, reason)
    else:
        log.exception(message, *args)


async def handle_error(request: Request, exc: Exception) -> Response:
    """The one JSON error handler (see ``HANDLED``)."""
    if isinstance(exc, ClientDisconnect):
        # No one is there to answer, and anyone can cause it: not worth a log line.
        return Response(status_code=400)
    if database_unreachable(exc):
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
