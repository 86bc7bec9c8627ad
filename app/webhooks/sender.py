"""Sending one webhook: signed, to the checked address, within its deadline, never following
redirects, never raising for the subscriber's faults (``send`` answers an ``Attempt``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from app import outbound
from app.core.delivery import EXCERPT_BYTES, Attempt, parse_retry_after
from app.settings import Settings
from app.webhooks.addresses import Refused, resolve
from app.webhooks.signing import signing_secrets, webhook_headers

USER_AGENT = "icehook-webhooks"


async def send(
    client: httpx.AsyncClient, delivery: Mapping[Any, Any], settings: Settings, now: datetime
) -> Attempt:
    """POST ``delivery`` to its subscriber, once; never raises for the subscriber's faults.

    The whole attempt (looking the host up, connecting, sending, reading the answer's head
    and its first ``EXCERPT_BYTES``) ends within ``ICEHOOK_DELIVERY_TIMEOUT_SECONDS``: httpx's
    own timeouts bound each read, and a subscriber trickling its answer would hold the
    request, and a slot, for ever.
    """
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    seconds = settings.delivery_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            return await _post(client, delivery, settings, now, elapsed)
    except TimeoutError:
        return Attempt(latency_ms=elapsed(), error=f"no complete answer within {seconds:g} s")
    except Refused as exc:
        return Attempt(error=f"refused: {exc}")
    except outbound.FAILURES as exc:
        return Attempt(latency_ms=elapsed(), error=outbound.describe(exc)[:500])
    except Exception as exc:  # the request could not even be made (a URL httpx refuses)
        return Attempt(latency_ms=elapsed(), error=f"{type(exc).__name__}: {exc}"[:500])


async def _post(
    client: httpx.AsyncClient,
    delivery: Mapping[Any, Any],
    settings: Settings,
    now: datetime,
    elapsed: Callable[[], float],
) -> Attempt:
    target = await resolve(delivery["url"], settings.allowed_webhook_nets)
    body = json.dumps(delivery["payload"], separators=(",", ":"), ensure_ascii=False)
    # The subscription's static headers first, so that nothing of its own could replace the
    # signature or the framing (they are checked when set: core.shaping.header_problem).
    headers = (
        dict(delivery["headers"] or {})
        | webhook_headers(
            message_id=delivery["event_id"],
            body=body,
            secrets=signing_secrets(delivery, now),
            now=now,
            scheme=delivery["signature_scheme"],
        )
        | {"host": target.host_header, "content-type": "application/json", "user-agent": USER_AGENT}
    )
    extensions = {"sni_hostname": target.server_name} if target.server_name else {}
    async with client.stream(
        "POST",
        target.url,
        content=body.encode(),
        headers=headers,
        extensions=extensions,
        timeout=settings.delivery_timeout_seconds,
    ) as response:
        excerpt = bytearray()
        async for chunk in response.aiter_bytes():
            excerpt += chunk
            if len(excerpt) >= EXCERPT_BYTES:
                break
    return Attempt(
        status_code=response.status_code,
        latency_ms=elapsed(),
        # As text PostgreSQL can hold: a subscriber may answer anything, NUL bytes included.
        excerpt=bytes(excerpt[:EXCERPT_BYTES]).decode("utf-8", "replace").replace("\x00", "\ufffd"),
        retry_after=parse_retry_after(response.headers.get("retry-after"), now),
    )
