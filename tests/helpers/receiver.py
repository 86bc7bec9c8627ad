"""A webhook subscriber for tests: a real HTTP server that verifies what it receives with the
``standardwebhooks`` library's own verifier (``v1``, HMAC) or, as the Standard Webhooks
specification says, with ``cryptography``'s ed25519 (``v1a``: the library has no asymmetric
verifier), and answers as the test tells it to."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
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
    verified_with: tuple[str, ...]  # the secrets, then the public keys, that accepted it


@dataclasses.dataclass
class Receiver:
    url: str = ""
    secrets: list[str] = dataclasses.field(default_factory=list)  # verifiers to try
    public_keys: list[str] = dataclasses.field(default_factory=list)  # whpk_ ones, for v1a
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
        verified += [key for key in self.public_keys if verify_v1a(key, body, headers)]
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


TOLERANCE_SECONDS = 5 * 60  # the standardwebhooks library's: older or newer is refused


def verify_v1a(
    public_key: str, body: str, headers: dict[str, str], now: float | None = None
) -> bool:
    """Whether one of the ``v1a,`` signatures in ``webhook-signature`` is ed25519 by
    ``public_key`` (``whpk_`` + base64 of its 32 bytes) over ``{id}.{timestamp}.{body}``, with
    the timestamp within ``TOLERANCE_SECONDS`` of ``now``; other schemes' are ignored."""
    headers = {name.lower(): value for name, value in headers.items()}
    message_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature")
    if not (message_id and timestamp.isascii() and timestamp.isdigit() and signatures):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    if not public_key.startswith("whpk_"):
        return False
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    for entry in signatures.split(" "):
        scheme, _, signature = entry.partition(",")
        if scheme != "v1a":
            continue
        try:
            key.verify(base64.b64decode(signature, validate=True), signed)
        except (binascii.Error, InvalidSignature):
            continue
        return True
    return False


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
