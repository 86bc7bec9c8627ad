"""API keys with roles: every operation the API describes, asked with a key of each role,
is refused with 403 exactly when the role it declares (``x-icehook-role``) is not granted."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from app.core.access import ApiKey, Role
from app.settings import Settings
from app.wiring import create_app
from tests.helpers.servers import http_client, serve

KEYS = {
    Role.ADMIN: "admin-key-0123456789",
    Role.READ: "read-key-0123456789",
    Role.METRICS: "metrics-key-0123456789",
}
# What a path parameter is replaced with: well formed, and naming nothing.
PLACEHOLDERS = {"id": "00000000-0000-4000-8000-000000000000"}
NUMERIC = {"/v1/deliveries/{id}", "/v1/deliveries/{id}/retry"}


@pytest.fixture
def role_settings(settings: Settings) -> Settings:
    keys = tuple(ApiKey(role, secret) for role, secret in KEYS.items())
    return dataclasses.replace(settings, api_keys=keys)


def _operations(document: dict[str, Any]) -> list[tuple[str, str, Role]]:
    found = []
    for path, methods in document["paths"].items():
        for method, described in methods.items():
            if "x-icehook-role" in described:
                found.append((method.upper(), path, Role(described["x-icehook-role"])))
    return found


def _address(path: str) -> str:
    value = "1" if path in NUMERIC else PLACEHOLDERS["id"]
    return re.sub(r"{\w+}", value, path)


async def test_each_role_reaches_exactly_the_operations_it_is_granted(
    role_settings: Settings,
) -> None:
    async with serve(create_app(role_settings)) as url, http_client(base_url=url) as client:
        document = (await client.get("/openapi.json")).json()
        operations = _operations(document)
        needed = {(method, path): role for method, path, role in operations}
        # The description covers the whole keyed surface, with each role at least once.
        assert needed[("GET", "/metrics")] is Role.METRICS
        assert needed[("GET", "/v1/jobs")] is Role.READ
        assert needed[("POST", "/v1/jobs")] is Role.ADMIN
        assert needed[("DELETE", "/v1/subscriptions/{id}")] is Role.ADMIN
        assert all(
            role is (Role.READ if method == "GET" else Role.ADMIN)
            for (method, path), role in needed.items()
            if path.startswith("/v1/")
        )
        refused = []
        for method, path, role in operations:
            for held, secret in KEYS.items():
                answer = await client.request(
                    method,
                    _address(path),
                    headers={"authorization": f"Bearer {secret}"},
                    json={} if method in ("POST", "PATCH", "PUT") else None,
                )
                granted = held is Role.ADMIN or held is role
                assert answer.status_code != 401, (method, path, held)
                assert (answer.status_code == 403) is not granted, (method, path, held, answer)
                if not granted:
                    error = answer.json()["error"]
                    assert error["code"] == "forbidden"
                    assert error["message"] == f"this key's role is {held}; this needs {role}"
                    refused.append((method, path, held))
                    described = document["paths"][path][method.lower()]
                    assert "403" in described["responses"], (method, path)
        assert ("GET", "/metrics", Role.READ) in refused
        assert ("GET", "/v1/jobs", Role.METRICS) in refused
        assert ("POST", "/v1/subscriptions", Role.READ) in refused


async def test_no_key_or_an_unknown_key_is_401_whatever_the_role_needed(
    role_settings: Settings,
) -> None:
    async with serve(create_app(role_settings)) as url, http_client(base_url=url) as client:
        for path in ("/metrics", "/v1/jobs"):
            assert (await client.get(path)).status_code == 401
            wrong = await client.get(path, headers={"authorization": "Bearer read:" + "x" * 20})
            assert wrong.status_code == 401
            # The role prefix belongs to the configuration, never to what a client sends.
            prefixed = await client.get(
                path, headers={"authorization": f"Bearer read:{KEYS[Role.READ]}"}
            )
            assert prefixed.status_code == 401
