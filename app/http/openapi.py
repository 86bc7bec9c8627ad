"""The OpenAPI 3.1 description of the HTTP API, built from the code itself.

Each endpoint declares what it takes and what it answers with ``@operation(...)``, naming
the shapes of ``http.contracts`` (the same TypedDicts the parsers and serialisers use);
``document(routes)`` walks the routes Starlette serves and turns each declaration into an
operation, with JSON Schema made by pydantic. A route without a declaration is an error, so
the description cannot leave one out.

Each operation that needs a key names its role in ``x-icehook-role`` and its description.
The errors an operation can answer follow from its declaration: 401 unless it is public,
403 too (a key whose role does not grant it),
404 with path parameters, 422 with query parameters or a body, 413 with a body, 503 when it
reads the database. ``/docs`` is Swagger UI, loaded from a CDN at a pinned version with
subresource integrity, so the browser refuses any other code.
"""

from __future__ import annotations

import http
import inspect
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, TypeVar

from pydantic import TypeAdapter
from starlette.routing import BaseRoute, Mount, Route

from app.core.access import Role, role_needed
from app.http.contracts.errors import Error
from app.http.contracts.subscriptions import OperationalEvent, WebhookEvent

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
# The console's pages are for people, not part of the API: left out of its description.
PAGES = "/console"
# Each operation's role: what a key needs for it (docs/api.md, "Keys and roles").
ROLE_EXTENSION = "x-icehook-role"

ERRORS = {
    401: "no valid API key: send Authorization: Bearer <key>",
    403: "the API key's role does not grant this operation",
    404: "there is no such resource",
    409: "not possible now; the message says why",
    413: "the body is too large",
    422: "a parameter or field is wrong; error.field names it",
    503: "the database is unreachable; try again (Retry-After)",
}


SWAGGER_UI = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0"
DOCS_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>icehook API</title>
  <link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css" crossorigin="anonymous"
    integrity="sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I">
</head>
<body>
  <div id="api"></div>
  <script src="{SWAGGER_UI}/swagger-ui-bundle.js" crossorigin="anonymous"
    integrity="sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9"></script>
  <script>SwaggerUIBundle({{url: "openapi.json", dom_id: "#api"}});</script>
</body>
</html>
"""


@dataclass(frozen=True)
class Text:
    """A response that is not JSON."""

    media_type: str


@dataclass(frozen=True)
class Operation:
    responses: Mapping[int, Any]  # status -> a contract's shape, a Text, or None (no body)
    query: type[Any] | None = None  # TypedDicts of parameters
    headers: type[Any] | None = None
    body: type[Any] | None = None
    path: Mapping[str, Any] = field(default_factory=dict)  # a path parameter's type (else str)
    public: bool = False  # served without an API key
    database: bool = True  # reads or writes the database (so may answer 503)
    errors: tuple[int, ...] = ()  # more error statuses than the declaration implies
    role: Role | None = None  # the role it needs; None: access.role_needed by its method


OPERATIONS: dict[Callable[..., Any], Operation] = {}


def operation(
    responses: Mapping[int, Any],
    *,
    query: type[Any] | None = None,
    headers: type[Any] | None = None,
    body: type[Any] | None = None,
    path: Mapping[str, Any] | None = None,
    public: bool = False,
    database: bool = True,
    errors: tuple[int, ...] = (),
    role: Role | None = None,
) -> Callable[[Endpoint], Endpoint]:
    """Declares what an endpoint takes and answers, for ``document``."""

    def declare(endpoint: Endpoint) -> Endpoint:
        OPERATIONS[endpoint] = Operation(
            responses, query, headers, body, dict(path or {}), public, database, errors, role
        )
        return endpoint

    return declare


def document(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    schemas_of = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for path, method, endpoint in _walk(routes):
        declared = OPERATIONS.get(getattr(endpoint, "__func__", endpoint))  # a method's function
        if declared is None:
            raise LookupError(f"{method} {path} ({endpoint.__name__}) has no @operation")
        paths.setdefault(path, {})[method.lower()] = _operation(
            path, method, endpoint, declared, schemas_of
        )
    signed = (
        "Headers webhook-id (the same on every retry), webhook-timestamp and "
        "webhook-signature (v1,<base64 HMAC-SHA256>, or v1a,<base64 ed25519> for a "
        "subscription with signature_scheme v1a; two entries while a rotated secret "
        "overlaps), and the subscription's static headers. Any 2xx counts as delivered; "
        "410 Gone disables the subscription; anything else is retried."
    )
    webhooks = {
        name: {
            "post": {
                "summary": summary,
                "description": signed,
                "requestBody": {
                    "required": True,
                    "content": _json(schemas_of.ref(shape, "serialization")),
                },
                "responses": {"2XX": {"description": "delivered"}},
            }
        }
        for name, shape, summary in (
            ("event", WebhookEvent, "A job's event, to each subscription that wants it"),
            (
                "operational-event",
                OperationalEvent,
                "subscription.disabled / subscription.enabled, to the subscriptions that name them",
            ),
        )
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "icehook",
            "version": metadata.version("icehook"),
            "description": "Submits Alibaba Cloud ICE media-editing jobs, confirms their "
            "callbacks and tells downstream systems with signed webhooks. Job submissions "
            "use ICE's own parameter names; icehook's own resources are snake_case.",
        },
        "paths": paths,
        "webhooks": webhooks,
        "components": {
            "schemas": schemas_of.definitions(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _walk(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    for route in routes:
        if isinstance(route, Mount | Route) and (prefix + route.path).startswith(PAGES):
            continue
        if isinstance(route, Mount):
            yield from _walk(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield prefix + route.path, method, route.endpoint


def _operation(
    path: str,
    method: str,
    endpoint: Callable[..., Any],
    declared: Operation,
    schemas_of: _Schemas,
) -> dict[str, Any]:
    summary, _, description = (inspect.getdoc(endpoint) or endpoint.__name__).partition("\n")
    names = re.findall(r"{(\w+)}", path)
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": schemas_of.ref(declared.path.get(name, str), "validation"),
        }
        for name in names
    ]
    if declared.query is not None:
        parameters += schemas_of.parameters(declared.query, "query")
    if declared.headers is not None:
        parameters += schemas_of.parameters(declared.headers, "header")
    result: dict[str, Any] = {
        "operationId": endpoint.__name__,
        "summary": summary.strip(),
        "tags": [_tag(path)],
        "security": [] if declared.public else [{"bearer": []}],
    }
    if not declared.public:
        role = role_needed(method, declared.role)
        result[ROLE_EXTENSION] = role.value
        needs = "`admin`" if role is Role.ADMIN else f"`{role}` or `admin`"
        description = f"{description.strip()}\n\nRole: {needs}."
    if description.strip():
        result["description"] = description.strip()
    if parameters:
        result["parameters"] = parameters
    if declared.body is not None:
        body = schemas_of.ref(declared.body, "validation")
        result["requestBody"] = {"required": True, "content": _json(body)}
    responses: dict[str, Any] = {}
    for status, shape in sorted(declared.responses.items()):
        responses[str(status)] = _response(status, shape, schemas_of)
    implied = {
        401: not declared.public,
        403: not declared.public,
        404: bool(names),
        413: declared.body is not None,
        422: any(p is not None for p in (declared.query, declared.headers, declared.body)),
        503: declared.database,
    }
    error = schemas_of.ref(Error, "serialization")
    for status in sorted({s for s, applies in implied.items() if applies} | set(declared.errors)):
        responses.setdefault(str(status), {"description": ERRORS[status], "content": _json(error)})
    result["responses"] = responses
    return result


def _response(status: int, shape: Any, schemas_of: _Schemas) -> dict[str, Any]:
    described: dict[str, Any] = {"description": http.HTTPStatus(status).phrase}
    if isinstance(shape, Text):
        described["content"] = {shape.media_type: {"schema": {"type": "string"}}}
    elif shape is not None:
        described["content"] = _json(schemas_of.ref(shape, "serialization"))
    return described


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _tag(path: str) -> str:
    parts = [p for p in path.split("/") if p and p != "v1"]
    return parts[0] if parts else "service"


class _Schemas:
    """JSON Schemas of the shapes one document uses; named ones become components."""

    REF = "#/components/schemas/{model}"

    def __init__(self) -> None:
        self._definitions: dict[str, Any] = {}

    def ref(self, shape: Any, mode: str) -> dict[str, Any]:
        """``shape``'s schema (a $ref for a named shape, whose definition is kept)."""
        schema, definitions = self._generate(shape, mode)
        self._definitions.update(definitions)
        return schema

    def parameters(self, shape: type[Any], location: str) -> list[dict[str, Any]]:
        """One parameter in ``location`` (query, header) per key of ``shape`` (a TypedDict)."""
        _, definitions = self._generate(shape, "validation")
        whole = definitions.pop(shape.__name__)  # its keys become parameters, not a component
        self._definitions.update(definitions)
        required = set(whole.get("required", ()))
        parameters = []
        for name, property_schema in whole["properties"].items():
            schema = {k: v for k, v in property_schema.items() if k not in ("title", "description")}
            parameter = {"name": name, "in": location, "required": name in required}
            if "description" in property_schema:
                parameter["description"] = property_schema["description"]
            parameters.append(parameter | {"schema": schema})
        return parameters

    def definitions(self) -> dict[str, Any]:
        return dict(sorted(self._definitions.items()))

    def _generate(self, shape: Any, mode: str) -> tuple[dict[str, Any], dict[str, Any]]:
        key_map, top = TypeAdapter.json_schemas(
            [(0, mode, TypeAdapter(shape))],  # type: ignore[list-item]
            ref_template=self.REF,
        )
        return key_map[(0, mode)], top.get("$defs", {})  # type: ignore[index]
