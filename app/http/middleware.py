"""ASGI middleware of the HTTP app: request spans, request ids, and API keys.

``TracedRequests`` (when tracing is on) makes a server span of each HTTP request, with
OpenTelemetry's ASGI instrumentation, continuing the caller's ``traceparent``.

``RequestIds`` gives each HTTP request an id: the client's ``X-Request-ID`` when it is a
plain token, else a new one. It answers the id in ``X-Request-ID`` and puts it in
``telemetry.logs.REQUEST_ID``, so that every log line of the request carries it, and on
the request's span (``icehook.request_id``).

``ApiKeys`` refuses any request without one of the configured bearer keys (401), or whose
key's role does not grant it (403).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.access import ApiKey, Keyring, Role, grants, role_needed
from app.core.errors import error_body
from app.telemetry.logs import REQUEST_ID

CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
REQUEST_ID_ATTRIBUTE = "icehook.request_id"
# A callback's path holds its job's token, its credential: spans show it as "{token}".
CALLBACK_TOKEN = re.compile(r"^(/callbacks/ice/)[^/]*")
_UNREDACTED = "icehook.unredacted_scope"


class TracedRequests:
    """ASGI middleware: a server span for each HTTP request, made by OpenTelemetry's ASGI
    instrumentation from a copy of the request's scope whose path shows no callback token
    (its name, ``url.path`` and the like are taken from it); the app gets the scope as it
    came. ``excluded_urls``: requests that make no span (regular expressions, comma
    separated)."""

    def __init__(self, app: ASGIApp, tracer_provider: TracerProvider, excluded_urls: str) -> None:
        self.app = app
        self._traced = OpenTelemetryMiddleware(
            self._unredacted,
            excluded_urls=excluded_urls or None,
            tracer_provider=tracer_provider,
            exclude_spans=["receive", "send"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        shown = CALLBACK_TOKEN.sub(r"\1{token}", path)
        redacted = {**scope, "path": shown, "raw_path": shown.encode(), _UNREDACTED: scope}
        await self._traced(redacted, receive, send)

    async def _unredacted(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope[_UNREDACTED], receive, send)


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

        trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, request_id)
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
    time, by digest, against every key), and any whose key's role does not grant what the
    request needs: ``role`` when given, else what its method needs (``access.role_needed``).
    """

    def __init__(self, app: ASGIApp, keys: Sequence[ApiKey], role: Role | None = None) -> None:
        self.app = app
        self._keys = Keyring(keys)
        self._role = role

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held = bearer_role(scope["headers"], self._keys)
        needed = role_needed(scope["method"], self._role)
        if held is None:
            response = JSONResponse(
                error_body("unauthorized", "send Authorization: Bearer <one of ICEHOOK_API_KEYS>"),
                status_code=401,
                headers={"www-authenticate": "Bearer"},
            )
        elif not grants(held, needed):
            response = JSONResponse(
                error_body("forbidden", f"this key's role is {held}; this needs {needed}"),
                status_code=403,
            )
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def bearer_role(headers: Sequence[tuple[bytes, bytes]], keys: Keyring) -> Role | None:
    """The role of the key a request's ``Authorization: Bearer`` names, or None."""
    scheme, _, given = dict(headers).get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return None
    key = keys.find(given)
    return None if key is None else key.role


# The console's pages load nothing but its own stylesheet; no script, inline or not.
CONSOLE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
CONSOLE_STATIC = "/console/static/"
CONSOLE_HEADERS = (
    (b"content-security-policy", CONSOLE_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


class ConsoleHeaders:
    """ASGI middleware: every answer of the console is never framed and runs no script but
    what the policy allows (none); a page (not a stylesheet) is never stored by a cache,
    since one may show a new secret."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Its stylesheet and icon may be cached; a page whose path holds "static" may not.
        static = scope["path"].startswith(CONSOLE_STATIC)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in CONSOLE_HEADERS:
                    headers[name.decode()] = value.decode()
                if not static:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
