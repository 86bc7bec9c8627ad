"""The HTTP server's edge: what one connection or one request may take, enforced before the
application sees a byte of it.

uvicorn closes a keep-alive connection that stays idle, but bounds nothing else: a client
may take forever to send a request's head or its body, send a head of any size (httptools
buffers all of it), and open connections until the process runs out of file descriptors.
``BoundedHttpToolsProtocol`` is uvicorn's own httptools protocol with those limits added
(``EdgeLimits``), so icehook keeps uvicorn's speed (``python -m bench.intake``) and gains:

- at most ``max_connections`` open connections per server: one more is answered 503 and
  closed at once;
- a request head (request line and headers) of at most ``max_head_bytes`` and
  ``MAX_HEADERS`` headers (431), received within ``head_seconds`` of its first byte or of
  the connection becoming idle (408);
- a request body received within ``body_seconds`` of its head (408; the application's
  ``receive`` then reports a disconnect).

Every refusal is counted in ``icehook_http_refused_total{reason}`` instead of logged: a
flood must not become a flood of log lines too. The subclass leans on uvicorn's protocol
attributes (``cycle``, ``pipeline``, ``transport``); tests/e2e/test_edge.py drives each limit
over a real socket, so an uvicorn release that changes them fails there.
"""

from __future__ import annotations

import asyncio
import http
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.settings import Settings
from app.telemetry import metrics

MAX_HEADERS = 100


@dataclass(frozen=True)
class EdgeLimits:
    max_connections: int = 1000
    max_head_bytes: int = 16 * 1024
    head_seconds: float = 10.0
    body_seconds: float = 30.0
    keepalive_seconds: float = 5.0


def limits_of(settings: Settings) -> EdgeLimits:
    """What one connection or request to ``serve`` may take, as configured."""
    return EdgeLimits(
        max_connections=settings.http_max_connections,
        max_head_bytes=settings.http_max_header_bytes,
        head_seconds=settings.http_header_timeout_seconds,
        body_seconds=settings.http_body_timeout_seconds,
        keepalive_seconds=settings.http_keepalive_seconds,
    )


def _refusal(status: int, reason: str) -> bytes:
    body = reason.encode()
    return (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
        "content-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode() + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with ``limits`` (see the module docstring)."""

    limits: ClassVar[EdgeLimits] = EdgeLimits()

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._turned_away = False  # refused at connection: none of uvicorn's state is set
        self._in_head = True  # the next bytes belong to a request head
        self._head_bytes = 0
        # The current deadline and what to do when it passes (math.inf: none). A request
        # moves its deadline three times; moving it only sets these, and one timer per
        # connection, re-armed when it fires early, enforces it (timers cost more than
        # the attributes: python -m bench.intake_cost, bench/results/restructure.md).
        self._deadline_at = math.inf
        self._on_deadline: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._turned_away = True
            metrics.HTTP_REFUSED.labels("connections").inc()
            transport.write(_refusal(503, "too many connections"))
            transport.close()
            return
        super().connection_made(transport)
        self._arm(self.limits.head_seconds, self._head_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._turned_away:
            return
        self._disarm()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if not self._turned_away:
            super().shutdown()

    def data_received(self, data: bytes) -> None:
        if self._turned_away or self.transport.is_closing():
            return
        if self._in_head:
            room = self.limits.max_head_bytes - self._head_bytes
            if len(data) > room:
                # Feed no more than the limit: if the head ends within it, go on with the rest.
                head, data = data[:room], data[room:]
                self._head_bytes += len(head)
                super().data_received(head)
                if self._in_head and not self.transport.is_closing():
                    self._refuse(431, "head_too_large", "the request head is too large")
                    return
            else:
                self._head_bytes += len(data)
        if data and not self.transport.is_closing():
            super().data_received(data)

    # -- parser callbacks --------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._in_head = False
        # Counted once the head is in, not header by header: the head's size limit already
        # bounds how many were buffered (a header takes at least four bytes).
        if len(self.headers) > MAX_HEADERS:
            self._refuse(431, "too_many_headers", f"more than {MAX_HEADERS} headers")
            return
        self._arm(self.limits.body_seconds, self._body_expired)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        # What follows in this connection is the next request's head. (The rest of the chunk
        # being parsed is not counted: a pipelining client gains at most one read.)
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            # Idle now (uvicorn's keep-alive timer runs too); a head begun must end in time.
            self._arm(self.limits.head_seconds, self._head_expired)

    # -- deadlines ---------------------------------------------------------------------------

    def _arm(self, seconds: float, expired: Callable[[], None]) -> None:
        self._deadline_at = self.loop.time() + seconds
        self._on_deadline = expired
        if self._deadline_at < self._timer_at:  # no timer, or one that would fire too late
            self._set_timer(self._deadline_at)

    def _disarm(self) -> None:
        self._deadline_at, self._on_deadline = math.inf, None

    def _set_timer(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = self.loop.call_at(when, self._timer_fired), when

    def _timer_fired(self) -> None:
        self._timer, self._timer_at = None, math.inf
        if self._deadline_at == math.inf:
            return
        if self.loop.time() < self._deadline_at:  # the deadline moved on since the timer
            self._set_timer(self._deadline_at)
            return
        expired, self._on_deadline = self._on_deadline, None
        self._deadline_at = math.inf
        if expired is not None:
            expired()

    def _head_expired(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; the next head's time starts after it
        self._refuse(408, "head_timeout", "the request head took too long")

    def _body_expired(self) -> None:
        self._refuse(408, "body_timeout", "the request body took too long")

    def _refuse(self, status: int, reason: str, message: str) -> None:
        """Answer ``status`` unless a response has begun, and close the connection; the
        application, if it runs, sees a disconnect."""
        metrics.HTTP_REFUSED.labels(reason).inc()
        self._disarm()
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(_refusal(status, message))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def protocol(limits: EdgeLimits) -> type[BoundedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http`` setting, bound to ``limits``."""
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})


def server_config(app: Any, limits: EdgeLimits, **options: Any) -> uvicorn.Config:
    """An uvicorn configuration serving ``app`` within ``limits``."""
    return uvicorn.Config(
        app,
        http=protocol(limits),
        timeout_keep_alive=limits.keepalive_seconds,  # type: ignore[arg-type]
        **options,
    )
