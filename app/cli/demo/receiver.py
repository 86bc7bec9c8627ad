"""The demo's webhook receiver: verifies every delivery with the ``standardwebhooks`` library."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.cli.demo.setup import (
    RECEIVER_PATH,
)


@dataclass(frozen=True)
class Arrival:
    """One webhook request the receiver got."""

    webhook_id: str
    event_type: str
    job_id: str
    verified: bool
    error: str | None


class Receiver:
    """The demo's subscriber: verifies each request with the subscription's secret, answers
    200 when it passes and 401 when not, and remembers every ``webhook-id`` it saw."""

    def __init__(self) -> None:
        self.secret: str | None = None  # known once the subscription exists
        self.arrivals: dict[str, Arrival] = {}  # by webhook-id; a verified copy wins
        self.copies: Counter[str] = Counter()  # requests per webhook-id
        self.unshown: list[tuple[Arrival, int]] = []  # each request and its copy number

    def verified(self, webhook_id: str) -> Arrival | None:
        arrival = self.arrivals.get(webhook_id)
        return arrival if arrival is not None and arrival.verified else None

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        webhook_id = headers.get("webhook-id", "")
        error: str | None = None
        payload: Any = None
        if self.secret is None:
            error = "no subscription yet"
        else:
            try:
                payload = Webhook(self.secret).verify(body, headers)
            except (WebhookVerificationError, ValueError) as exc:
                error = f"verification failed: {exc}"
        data = payload.get("data") if isinstance(payload, dict) else None
        arrival = Arrival(
            webhook_id=webhook_id,
            event_type=str(payload.get("type", "?")) if isinstance(payload, dict) else "?",
            job_id=str(data.get("id", "?")) if isinstance(data, dict) else "?",
            verified=error is None,
            error=error,
        )
        self.copies[webhook_id] += 1
        if webhook_id not in self.arrivals or arrival.verified:
            self.arrivals[webhook_id] = arrival
        self.unshown.append((arrival, self.copies[webhook_id]))
        if error is not None:
            return PlainTextResponse(error, status_code=401)
        return PlainTextResponse("verified")


def create_receiver_app(receiver: Receiver) -> Starlette:
    return Starlette(routes=[Route(RECEIVER_PATH, receiver.handle, methods=["POST"])])
