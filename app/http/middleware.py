"""ASGI middleware of the HTTP app: request ids, and API keys.

``RequestIds`` gives each HTTP request an id: the client's ``X-Request-ID`` when it is a
plain token, else a new one. It answers the id in ``X-Request-ID`` and puts it in
``telemetry.logs.REQUEST_ID``, so that every log line of the request carries it.

``ApiKeys`` refuses any request without one of the configured bearer keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import error_body
from app.telemetry.logs import REQUEST_ID

CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestIds:
    """ASGI middleware: the request id of each HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if CLIENT_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("x-request-id", request_id)
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


def new_api_key() -> str:
    """A key for ``ICEHOOK_API_KEYS``, for a run that generates its own (``serve --simulate``,
    ``demo``)."""
    return "ih_" + secrets.token_urlsafe(24)


class ApiKeys:
    """Refuses any request without one of ``keys`` as its bearer token (compared in constant
    time, by digest, against every key)."""

    def __init__(self, app: ASGIApp, keys: Sequence[str]) -> None:
        self.app = app
        self._digests = [hashlib.sha256(key.encode()).digest() for key in keys]

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

    def _allowed(self, scope: Scope) -> bool:
        headers = dict(scope["headers"])
        scheme, _, given = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        digest = hashlib.sha256(given.strip().encode()).digest()
        # Compare with every key, so timing says nothing about which matched.
        matches = [hmac.compare_digest(digest, known) for known in self._digests]
        return any(matches)
