"""What the routes share: reading a body within a limit."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from app.core.errors import PayloadTooLarge
from app.core.parsing import natural
from app.http.contracts.common import parse_json_body

JSON_BODY_MAX = 64 * 1024  # of a body other than a submission or a callback


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = natural(request.headers.get("content-length", ""))
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, limit: int = JSON_BODY_MAX) -> dict[str, Any]:
    return parse_json_body(await read_body(request, limit))
