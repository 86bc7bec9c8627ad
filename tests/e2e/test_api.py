"""The HTTP surface that exists at every stage: health, readiness, the error shape."""

from __future__ import annotations

import asyncio
import dataclasses

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.core.health import Health
from app.http.routes.service import ServiceRoutes
from app.settings import Settings
from app.store import schema
from app.wiring import create_app
from tests.helpers.servers import http_client, serve


async def test_healthz_and_readyz_answer_200_at_head(settings: Settings) -> None:
    async with serve(create_app(settings)) as url, http_client(base_url=url) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"


async def test_readyz_is_503_until_the_schema_is_migrated(
    settings: Settings, empty_database_url: str
) -> None:
    unmigrated = dataclasses.replace(settings, database_url=empty_database_url)
    async with serve(create_app(unmigrated)) as url, http_client(base_url=url) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert "schema at nothing" in ready.json()["reason"]
        assert (await client.get("/healthz")).status_code == 200


async def test_readyz_is_503_when_the_database_is_gone(settings: Settings) -> None:
    gone = dataclasses.replace(settings, database_url="postgresql://nobody@127.0.0.1:9/none")
    async with serve(create_app(gone)) as url, http_client(base_url=url) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"].startswith("database unreachable")


async def test_unknown_route_and_method_use_the_error_shape(settings: Settings) -> None:
    async with serve(create_app(settings)) as url, http_client(base_url=url) as client:
        missing = await client.get("/no/such/thing")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        wrong_method = await client.post("/healthz")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"]["code"] == "method_not_allowed"


async def test_losing_the_database_is_503_with_retry_after(settings: Settings) -> None:
    gone = dataclasses.replace(settings, database_url="postgresql://nobody@127.0.0.1:9/none")
    key = settings.api_keys[0].secret
    async with serve(create_app(gone)) as url, http_client(base_url=url) as client:
        callback = await client.post("/callbacks/ice/some-token", content=b"{}")
        listing = await client.get("/v1/jobs", headers={"authorization": f"Bearer {key}"})
    for answer in (callback, listing):
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["error"]["code"] == "unavailable"


async def test_readyz_names_a_part_that_is_wedged(engine: AsyncEngine) -> None:
    health = Health()
    service = ServiceRoutes(engine, health, schema.head_revision(), database_gauges=None)
    app = Starlette(routes=service.routes())
    async with serve(app) as url, http_client(base_url=url) as client:
        assert (await client.get("/readyz")).status_code == 200
        watch = health.watch("the test's part", 0.0)
        with watch.busy():
            await asyncio.sleep(0.01)
            wedged = await client.get("/readyz")
        assert wedged.status_code == 503
        assert wedged.json()["reason"].startswith("the test's part: one step has run for")
        assert (await client.get("/readyz")).status_code == 200
