"""The demo's requests to the service and the simulator: any failure is one clear line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from app.cli.demo.setup import DemoError


async def call(
    client: httpx.AsyncClient, method: str, path: str, body: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One request; ``DemoError`` with a clear line for any failure."""
    try:
        response = await client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        raise DemoError(f"{method} {client.base_url}{path} failed: {exc!r}") from None
    if response.status_code == 204:
        return {}
    if not response.is_success:
        raise DemoError(
            f"{method} {client.base_url}{path} answered {response.status_code}: "
            f"{response.text[:300]}"
        )
    answer = response.json()
    return answer if isinstance(answer, dict) else {"items": answer}


async def get(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    return await call(client, "GET", path)
