"""The Starlette app of the HTTP API, put together from its resources' routes.

Every ``/v1`` route, and ``/metrics``, needs ``Authorization: Bearer <key>`` of a role
that grants it (``middleware.ApiKeys``, ``core.access``). ICE's callbacks arrive at
``/callbacks/ice/{token}``, outside ``/v1``: the token in the path is their credential.
Every answer carries ``X-Request-ID`` (``middleware.RequestIds``); with tracing on, each
request is a span that carries it too (``middleware.TracedRequests``). ``/console`` is
the web console (``console/``), for people, outside the API's description. An error is
answered as JSON (``errors``) unless the console shows it as a page. There are no
trailing-slash redirects: Starlette would build their address from the request's own
Host header, and a client that needs one is better told 404.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Lifespan

from app.core.access import ApiKey, Role
from app.http import errors, openapi
from app.http.console.routes import ConsoleRoutes
from app.http.middleware import ApiKeys, ConsoleHeaders, RequestIds, TracedRequests
from app.http.openapi import Text, operation
from app.http.routes.callbacks import CallbackRoutes
from app.http.routes.deliveries import DeliveryRoutes
from app.http.routes.events import EventRoutes
from app.http.routes.jobs import JobRoutes
from app.http.routes.service import ServiceRoutes
from app.http.routes.subscriptions import SubscriptionRoutes
from app.telemetry.tracing import OFF, Tracing


class DescriptionRoutes:
    """This API's description (``openapi.document`` of the routes served) and its page."""

    def __init__(self, described: Callable[[], Sequence[BaseRoute]]) -> None:
        self.described = described
        self._document: bytes | None = None

    def routes(self) -> list[Route]:
        return [
            Route("/openapi.json", self.openapi_json, methods=["GET"]),
            Route("/docs", self.docs, methods=["GET"]),
        ]

    @operation({200: dict[str, Any]}, public=True, database=False)
    async def openapi_json(self, request: Request) -> Response:
        """This API's description (OpenAPI 3.1)."""
        if self._document is None:
            document = openapi.document(self.described())
            self._document = json.dumps(document, ensure_ascii=False).encode()
        return Response(self._document, media_type="application/json")

    @operation({200: Text("text/html")}, public=True, database=False)
    async def docs(self, request: Request) -> HTMLResponse:
        """The API description, rendered in the browser (Swagger UI)."""
        return HTMLResponse(openapi.DOCS_PAGE)


def create_http_app(
    *,
    service: ServiceRoutes,
    callbacks: CallbackRoutes,
    jobs: JobRoutes,
    subscriptions: SubscriptionRoutes,
    deliveries: DeliveryRoutes,
    events: EventRoutes,
    console: ConsoleRoutes,
    api_keys: Sequence[ApiKey],
    lifespan: Lifespan[Starlette] | None = None,
    tracing: Tracing = OFF,
) -> Starlette:
    """The app serving these resources, behind ``api_keys``; with ``tracing`` on, a span
    for each request."""
    keys = [Middleware(ApiKeys, keys=api_keys)]
    metrics_keys = [Middleware(ApiKeys, keys=api_keys, role=Role.METRICS)]
    v1 = [
        *jobs.routes(),
        *subscriptions.routes(),
        *callbacks.v1_routes(),
        *deliveries.routes(),
        *events.routes(),
    ]
    pages = Router(console.routes(), redirect_slashes=False)
    routes: list[BaseRoute] = []
    routes += [
        *callbacks.ice_routes(),  # first: the busiest
        *service.routes(),
        *DescriptionRoutes(lambda: routes).routes(),
        Route("/metrics", service.metrics, methods=["GET"], middleware=metrics_keys),
        Mount("/v1", app=Router(v1, redirect_slashes=False), middleware=keys),
        # For people, outside the API's description (openapi.PAGES).
        Route("/console", _to_console, methods=["GET"]),
        Mount("/console", app=pages, middleware=[Middleware(ConsoleHeaders)]),
    ]
    spans = []
    if tracing.provider is not None:
        spans.append(
            Middleware(
                TracedRequests,
                tracer_provider=tracing.provider,
                excluded_urls=tracing.excluded_urls,
            )
        )
    return _app(routes, spans, lifespan or _no_lifespan)


def create_health_app(
    service: ServiceRoutes, api_keys: Sequence[ApiKey], *, lifespan: Lifespan[Starlette]
) -> Starlette:
    """A process's health and metrics alone (``icehook worker --port``): ``/healthz``,
    ``/readyz``, and ``/metrics`` behind ``api_keys``."""
    keys = [Middleware(ApiKeys, keys=api_keys, role=Role.METRICS)]
    routes = [
        *service.routes(),
        Route("/metrics", service.metrics, methods=["GET"], middleware=keys),
    ]
    return _app(routes, [], lifespan)


def _app(
    routes: Sequence[BaseRoute], outer: Sequence[Middleware], lifespan: Lifespan[Starlette]
) -> Starlette:
    """Every icehook app: request ids, JSON errors, no trailing-slash redirects; ``outer``
    middleware first (a request's span)."""
    app = Starlette(
        routes=list(routes),
        middleware=[*outer, Middleware(RequestIds), Middleware(errors.Unhandled)],
        lifespan=lifespan,
        exception_handlers=dict.fromkeys(errors.HANDLED, errors.handle_error),
    )
    app.router.redirect_slashes = False
    return app


async def _to_console(request: Request) -> Response:
    return RedirectResponse("/console/", status_code=303)


@contextlib.asynccontextmanager
async def _no_lifespan(app: Starlette) -> Any:
    yield
