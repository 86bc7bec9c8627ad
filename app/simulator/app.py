"""The simulator's Starlette app: ICE's RPC API at ``/`` and the admin routes under ``/_sim/``.

``create_simulator_app(settings)`` builds it. Its lifespan owns the one httpx client that sends
callbacks and, through the dispatcher, every callback timer and delivery task; all are
cancelled at shutdown. Admin routes answer icehook's own error shape
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.core.errors import BadRequest, ConfigError, NotFound, ValidationError
from app.http.errors import HANDLED, handle_error
from app.simulator.callbacks import MAX_IN_FLIGHT, CallbackDispatcher, CallbackLog
from app.simulator.rpc import RpcService
from app.simulator.settings import SimulatorSettings
from app.simulator.state import Clock, Store

MAX_SETTINGS_BODY_BYTES = 64 * 1024


class Simulator:
    """Everything one running simulator holds; ``settings`` is swapped whole on a change."""

    def __init__(
        self,
        settings: SimulatorSettings,
        *,
        clock: Clock = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        rng = rng if rng is not None else random.Random()  # noqa: S311 - simulation, not secrets
        self.store = Store(clock, rng)
        self.callback_log = CallbackLog()
        self.callbacks = CallbackDispatcher(
            settings=self.current_settings, log=self.callback_log, clock=clock, rng=rng
        )
        self.rpc = RpcService(
            settings=self.current_settings,
            store=self.store,
            callbacks=self.callbacks,
            clock=clock,
            rng=rng,
        )

    def current_settings(self) -> SimulatorSettings:
        return self.settings

    def change_settings(self, changes: Mapping[str, object]) -> SimulatorSettings:
        """Apply behaviour changes; raises ConfigError naming a bad one (nothing changes then)."""
        self.settings = self.settings.replace(changes)
        return self.settings


def create_simulator_app(
    settings: SimulatorSettings,
    *,
    clock: Clock = time.time,
    rng: random.Random | None = None,
) -> Starlette:
    """The ICE simulator as an ASGI app; ``app.state.simulator`` is its ``Simulator``."""
    simulator = Simulator(settings, clock=clock, rng=rng)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = httpx.AsyncClient(
            follow_redirects=False,  # ICE counts only a 200 as delivered
            trust_env=False,  # no proxy from the environment between ICE and a receiver
            limits=httpx.Limits(
                max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT
            ),
        )
        server_log = logging.getLogger("uvicorn.error")
        server_log.addFilter(simulator.rpc.cut_offs)
        async with client:
            simulator.callbacks.start(client)
            try:
                yield
            finally:
                await simulator.callbacks.aclose()
                server_log.removeFilter(simulator.rpc.cut_offs)

    async def callbacks(request: Request) -> Response:
        job_id = request.query_params.get("job_id") or None
        since = _since(request.query_params.get("since"))
        entries = simulator.callback_log.entries(job_id=job_id, since=since)
        return JSONResponse({"callbacks": [entry.public() for entry in entries]})

    async def job(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        found = simulator.store.job(job_id) or simulator.store.batch(job_id)
        if found is None:
            raise NotFound(f"the simulator has no job or batch {job_id}")
        return JSONResponse(found.describe(simulator.clock()))

    async def every_job(request: Request) -> Response:
        """Every job (sub-jobs too) and batch the simulator holds, each with its ClientToken
        and UserData: what ICE created, to count from outside."""
        now = simulator.clock()
        jobs = [job.describe(now) for job in simulator.store.every_job()]
        batches = [
            {**batch.describe(now), "sub_jobs": [job.job_id for job in batch.sub_jobs]}
            for batch in simulator.store.every_batch()
        ]
        return JSONResponse({"jobs": jobs, "batches": batches})

    async def stats(request: Request) -> Response:
        calls = simulator.rpc.calls
        return JSONResponse(
            {
                "rpc_calls": {action: calls[action] for action in sorted(calls)},
                "submits_peak_per_second": simulator.rpc.submits_peak(),
                "sts_issued": simulator.rpc.sts.issued,
                "sts_refused": simulator.rpc.sts.refused,
            }
        )

    async def sts(request: Request) -> Response:
        return JSONResponse(simulator.rpc.sts.issue(simulator.settings.sts_seconds))

    async def settings_route(request: Request) -> Response:
        if request.method == "PATCH":
            changes = await _json_object(request)
            try:
                simulator.change_settings(changes)
            except ConfigError as exc:
                message = str(exc).removeprefix(f"{exc.variable}: ")
                raise ValidationError(exc.variable, message) from None
        return JSONResponse(simulator.settings.public())

    app = Starlette(
        routes=[
            Route("/", simulator.rpc.endpoint, methods=["GET", "POST"]),
            Route("/_sim/callbacks", callbacks, methods=["GET"]),
            Route("/_sim/jobs", every_job, methods=["GET"]),
            Route("/_sim/jobs/{job_id}", job, methods=["GET"]),
            Route("/_sim/stats", stats, methods=["GET"]),
            Route("/_sim/sts", sts, methods=["GET"]),
            Route("/_sim/settings", settings_route, methods=["GET", "PATCH"]),
        ],
        lifespan=lifespan,
        # The errors.HANDLED listed on their own so they are answered without being
        # re-raised to the server as unhandled errors (Starlette does that for Exception).
        exception_handlers={**dict.fromkeys(HANDLED, handle_error), Exception: handle_error},
    )
    app.state.simulator = simulator
    app.router.redirect_slashes = False  # a redirect's address would come from the Host header
    return app


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            "since", f"must be an ISO 8601 time like 2024-05-01T08:00:00Z, got {text!r}"
        ) from None
    # A time without an offset is read as UTC, the simulator's only zone.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _json_object(request: Request) -> dict[str, object]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_SETTINGS_BODY_BYTES:
            raise BadRequest("the body is too large for a settings change")
    try:
        value = json.loads(body)
    except ValueError:
        raise BadRequest("the body must be a JSON object of setting names and values") from None
    if not isinstance(value, dict):
        raise ValidationError("body", "must be a JSON object of setting names and values")
    return value
