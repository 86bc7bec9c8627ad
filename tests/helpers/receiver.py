"""A webhook subscriber for tests: a real HTTP server that verifies what it receives with the
``standardwebhooks`` library's own verifier, and answers as the test tells it to."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.helpers.servers import serve


@dataclasses.dataclass
class Delivery:
    """One request the receiver got, and what it answered."""

    webhook_id: str
    headers: dict[str, str]
    body: str
    answered: int
    verified_with: tuple[str, ...]  # the secrets whose verifier accepted it


@dataclasses.dataclass
class Receiver:
    url: str = ""
    secrets: list[str] = dataclasses.field(default_factory=list)  # verifiers to try
    status: int = 200  # what it answers next
    hold: bool = False  # keep requests open until ``release`` is set
    release: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    arrivals: list[str] = dataclasses.field(default_factory=list)  # webhook-ids, as they came
    first_arrival: dict[str, float] = dataclasses.field(default_factory=dict)  # id -> time.time()
    requests: list[Delivery] = dataclasses.field(default_factory=list)  # as they were answered

    async def handle(self, request: Request) -> Response:
        body = (await request.body()).decode()
        headers = dict(request.headers)
        verified = []
        for secret in self.secrets:
            with contextlib.suppress(WebhookVerificationError):
                Webhook(secret).verify(body, headers)
                verified.append(secret)
        self.arrivals.append(headers.get("webhook-id", ""))
        self.first_arrival.setdefault(headers.get("webhook-id", ""), time.time())
        self.arrived.set()
        if self.hold:
            await self.release.wait()
        status = self.status if verified else 401
        self.requests.append(
            Delivery(headers.get("webhook-id", ""), headers, body, status, tuple(verified))
        )
        return PlainTextResponse(f"answered {status}", status_code=status)

    def delivered(self) -> list[dict[str, Any]]:
        """The events answered 2xx, in the order they arrived (each ``webhook-id`` once)."""
        seen: dict[str, dict[str, Any]] = {}
        for r in self.requests:
            if 200 <= r.answered < 300 and r.webhook_id not in seen:
                seen[r.webhook_id] = json.loads(r.body) | {"webhook_id": r.webhook_id}
        return list(seen.values())


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = Starlette(routes=[Route("/hook", r.handle, methods=["POST"])])
    async with serve(app) as url:
        r.url = f"{url}/hook"
        try:
            yield r
        finally:
            r.release.set()
