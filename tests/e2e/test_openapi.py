"""The API description: complete, true to the key check, and true to what the service answers.

The last test is a schemathesis run against the real ``icehook serve --simulate`` process:
for every operation it sends generated requests (valid and invalid ones) and fails on any
5xx, any status the description does not list, and any response body that contradicts its
schema.
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import BaseRoute, Mount, Route

from app.core.errors import ValidationError
from app.http import openapi
from app.http.contracts.callbacks import parse_callback_query
from app.http.contracts.common import encode_cursor, encode_id_cursor
from app.http.contracts.deliveries import parse_delivery_query
from app.http.contracts.events import parse_event_query
from app.http.contracts.jobs import parse_job_query
from app.settings import Settings
from app.wiring import create_app
from tests.conftest import _admin, with_database
from tests.helpers.processes import clean_environment, serve_simulated, troubles
from tests.helpers.servers import http_client, serve

API_KEY = "schema-api-key-0123"


def _served_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _served_routes(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":
                    yield prefix + route.path, method.lower()


@pytest.fixture
def routes(settings: Settings) -> list[BaseRoute]:
    """The routes ``serve`` serves (the app is built, not started: nothing connects)."""
    return create_app(settings).routes


def test_every_route_is_described(routes: list[BaseRoute]) -> None:
    document = openapi.document(routes)
    served = set(_served_routes(routes))
    # The console's pages are for people: served, and left out of the API's description.
    pages = {(path, method) for path, method in served if path.startswith(openapi.PAGES)}
    assert ("/console/jobs", "get") in pages
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served - pages == described
    assert document["openapi"].startswith("3.1")
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], (method, path)
            assert operation["responses"], (method, path)


def test_a_route_without_a_declaration_fails_the_description(routes: list[BaseRoute]) -> None:
    async def undeclared(request: Any) -> None:
        raise AssertionError

    with pytest.raises(LookupError, match=r"GET /v1/new .*has no @operation"):
        openapi.document([*routes, Mount("/v1", routes=[Route("/new", undeclared)])])


LIST_PARSERS = {
    "/v1/jobs": (parse_job_query, encode_cursor(datetime.now(UTC), uuid.uuid4())),
    "/v1/callbacks": (parse_callback_query, encode_id_cursor(7)),
    "/v1/deliveries": (parse_delivery_query, encode_id_cursor(7)),
    # Its query's pairs as given: ``type`` may be repeated.
    "/v1/events": (lambda params: parse_event_query(params.items()), encode_id_cursor(7)),
}


def _sample(schema: dict[str, Any], components: dict[str, Any]) -> str:
    """A valid query value for ``schema``."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if "enum" in schema:
        return str(schema["enum"][0])
    if schema.get("type") == "array":  # a repeatable parameter: one of its values
        return _sample(schema["items"], components)
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    if schema.get("format") == "date-time":
        return datetime.now(UTC).isoformat()
    if schema.get("type") == "integer":
        return str(schema.get("minimum", 1))
    return "x"


@pytest.mark.parametrize("path", sorted(LIST_PARSERS))
def test_each_described_query_parameter_is_one_the_parser_takes(
    path: str, routes: list[BaseRoute]
) -> None:
    """A valid value of every parameter the description lists passes the parser, and a
    parameter it does not list is refused."""
    document = openapi.document(routes)
    components = document["components"]["schemas"]
    parse, cursor = LIST_PARSERS[path]
    listed = document["paths"][path]["get"]["parameters"]
    assert len(listed) > 2
    for parameter in listed:
        name = parameter["name"]
        value = cursor if name == "cursor" else _sample(parameter["schema"], components)
        parse({name: value})
    with pytest.raises(ValidationError, match="is not a filter"):
        parse({"colour": "red"})


def test_resources_list_every_field_as_required(routes: list[BaseRoute]) -> None:
    """Every key of a resource is always present (null when unknown)."""
    components = openapi.document(routes)["components"]["schemas"]
    for name in (
        "Job",
        "Event",
        "Callback",
        "Subscription",
        "Delivery",
        "DeliveryAttempt",
        "RecordedEvent",
    ):
        assert set(components[name]["properties"]) == set(components[name]["required"]), name


async def test_public_and_keyed_operations_are_as_described(settings: Settings) -> None:
    """Without a key, every operation the description secures is refused by the key check
    (401 with WWW-Authenticate: Bearer), and no other."""
    app = create_app(settings)
    document = openapi.document(app.routes)
    async with serve(app) as url, http_client(base_url=url) as client:
        for path, item in document["paths"].items():
            concrete = re.sub(r"{\w+}", "1", path)
            for method, operation in item.items():
                answer = await client.request(method, concrete)
                refused = answer.headers.get("www-authenticate") == "Bearer"
                keyed = operation["security"] != []
                assert refused == keyed, (method, path, answer.status_code)


async def test_openapi_json_and_docs_are_served(settings: Settings) -> None:
    app = create_app(settings)
    async with serve(app) as url, http_client(base_url=url) as client:
        served = await client.get("/openapi.json")
        docs = await client.get("/docs")
    assert served.status_code == 200
    assert served.json() == openapi.document(app.routes)
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert 'url: "openapi.json"' in docs.text
    assert 'integrity="sha384-' in docs.text


# -- schemathesis against the real service -------------------------------------------------


@pytest.fixture(scope="module")
async def served(
    server_url: str, template_name: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """``icehook serve --simulate`` on a database of its own, for the module."""
    name = f"icehook_test_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    database_url = with_database(server_url, name)
    try:
        data_dir = tmp_path_factory.mktemp("schema")
        async with serve_simulated(database_url, data_dir, API_KEY) as (url, log):
            yield url
        assert troubles(log) == [], log.read_text()
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)


async def test_the_service_keeps_to_its_description(served: str, tmp_path: Path) -> None:
    """``schemathesis run``: every operation, valid and invalid requests; its report on failure."""
    run = await asyncio.create_subprocess_exec(
        SCHEMATHESIS,
        "run",
        f"{served}/openapi.json",
        "--header",
        f"Authorization: Bearer {API_KEY}",
        "--checks",
        CHECKS,
        "--max-examples",
        "30",
        "--seed",
        "20261130",
        "--request-timeout",
        "30",
        env={**clean_environment(), "NO_COLOR": "1"},
        cwd=tmp_path,  # where it keeps its example database
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(run.communicate(), timeout=600)
    assert run.returncode == 0, output.decode(errors="replace")
