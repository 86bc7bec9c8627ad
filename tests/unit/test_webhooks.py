"""Webhooks without a database: the retry policy, the address checks, signing and sending
(the subscriber faked with ``httpx.MockTransport``)."""

from __future__ import annotations

import base64
import ipaddress
import random
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import pytest
from standardwebhooks import Webhook

from app.core.delivery import next_delay, parse_retry_after
from app.core.shaping import header_problem, masked
from app.settings import Settings
from app.webhooks import addresses
from app.webhooks.sender import send
from app.webhooks.signing import signing_secrets


def test_the_retry_schedule_has_jitter_and_honours_retry_after() -> None:
    rng = random.Random(7)
    schedule = (5.0, 30.0, 120.0)
    delays = [next_delay(schedule, n, None, rng) for n in (1, 2, 3)]
    for delay, step in zip(delays, schedule, strict=True):
        assert delay is not None
        assert step * 0.8 <= delay <= step * 1.2
    assert next_delay(schedule, 4, None, rng) is None, "after the schedule: dead"
    delay = next_delay(schedule, 1, 90.0, rng)
    assert delay == 90.0, "never sooner than Retry-After"
    assert next_delay(schedule, 1, 10**9, rng) == 120.0, "but not past the schedule"


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Mon, 30 Nov 2026 12:01:00 GMT", now) == 60.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address under test, not a bind)
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("fd00::1", "private"),
        ("100.64.0.1", "public"),
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str, reason: str) -> None:
    refused = addresses.refusal(ipaddress.ip_address(address), ())
    assert refused is not None
    assert reason in refused


def test_an_allowed_network_admits_its_addresses() -> None:
    allowed = (ipaddress.ip_network("127.0.0.0/8"),)
    assert addresses.refusal(ipaddress.ip_address("127.0.0.5"), allowed) is None
    assert addresses.refusal(ipaddress.ip_address("10.0.0.1"), allowed) is not None
    assert addresses.refusal(ipaddress.ip_address("93.184.216.34"), ()) is None


async def test_the_request_goes_to_the_checked_address_and_keeps_its_host() -> None:
    allowed = (ipaddress.ip_network("127.0.0.0/8"),)
    plain = await addresses.resolve("http://localhost:8080/hook?x=1", allowed)
    assert plain == addresses.Target("http://127.0.0.1:8080/hook?x=1", "localhost:8080", None)
    tls = await addresses.resolve("https://localhost/hook", allowed)
    assert tls == addresses.Target("https://127.0.0.1:443/hook", "localhost", "localhost")
    with pytest.raises(addresses.Refused, match="loopback"):
        await addresses.resolve("http://localhost/hook", ())


SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def a_delivery(url: str = "http://localhost:8080/hook") -> dict[str, Any]:
    return {
        "id": 1,
        "attempts": 0,
        "subscription_id": uuid.uuid4(),
        "event_id": "msg_1",
        "payload": {"type": "job.succeeded", "timestamp": "t", "data": {"id": "j"}},
        "url": url,
        "secret": SECRET,
        "previous_secret": None,
        "previous_secret_until": None,
        "headers": None,
        "signature_scheme": "v1",
    }


LOOPBACK = Settings(allowed_webhook_nets=(ipaddress.ip_network("127.0.0.0/8"),))


async def test_a_delivery_is_signed_sent_to_the_checked_address_and_not_redirected() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = b"\x00" + b"x" * 5000  # any bytes at all; text without NUL is kept
        return httpx.Response(302, headers={"location": "http://10.0.0.1/"}, content=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        attempt = await send(client, a_delivery(), LOOPBACK, datetime.now(UTC))
    (request,) = seen
    assert (request.url.host, request.headers["host"]) == ("127.0.0.1", "localhost:8080")
    payload = Webhook(SECRET).verify(request.content.decode(), dict(request.headers))
    assert payload["type"] == "job.succeeded"
    assert request.headers["webhook-id"] == "msg_1"
    assert (attempt.status_code, attempt.delivered) == (302, False)
    assert attempt.excerpt == "\ufffd" + "x" * 1023


async def test_static_headers_go_with_the_webhook_and_never_replace_its_own() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    delivery = a_delivery() | {
        # Refused when set (core.shaping); were one stored anyway, icehook's own still win.
        "headers": {"x-gateway-token": "t0ken", "webhook-signature": "v1,forged", "host": "evil"}
    }
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        attempt = await send(client, delivery, LOOPBACK, datetime.now(UTC))
    (request,) = seen
    assert attempt.delivered
    assert request.headers["x-gateway-token"] == "t0ken"
    assert request.headers["host"] == "localhost:8080"
    assert "forged" not in request.headers["webhook-signature"]
    Webhook(SECRET).verify(request.content.decode(), dict(request.headers))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Webhook-Signature", "v1,x"),
        ("webhook_signature", "v1,x"),
        ("Content-MD5", "x"),
        ("webhook-anything", "x"),
        ("Content-Length", "1"),
        ("Host", "example.com"),
        ("Transfer-Encoding", "chunked"),
        ("Proxy-Authorization", "x"),
        ("X-Token", "a\r\nInjected: 1"),
        ("X-Token", "a\nb"),
        ("X-Token", ""),
        ("Bad Name", "x"),
        ("X-Token", "caf\u00e9"),
    ],
)
def test_a_header_that_would_replace_icehooks_own_or_split_the_request_is_refused(
    name: str, value: str
) -> None:
    assert header_problem(name, value) is not None


def test_a_gateway_header_is_accepted_and_shown_masked() -> None:
    assert header_problem("X-Gateway-Token", "Bearer abc.def") is None
    assert masked({"x-gateway-token": "Bearer abc.def"}) == {"x-gateway-token": "********"}


async def test_a_failed_request_is_an_attempt_with_its_error() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    def dropped(request: httpx.Request) -> httpx.Response:
        raise aiohttp.ServerDisconnectedError()  # one the transport lets through

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        attempt = await send(client, a_delivery(), LOOPBACK, datetime.now(UTC))
        refused = await send(client, a_delivery(), Settings(), datetime.now(UTC))
    async with httpx.AsyncClient(transport=httpx.MockTransport(dropped)) as client:
        lost = await send(client, a_delivery(), LOOPBACK, datetime.now(UTC))
    assert lost.error is not None
    assert lost.error.startswith("ServerDisconnectedError")
    assert attempt.status_code is None
    assert attempt.error is not None
    assert attempt.error.startswith("ConnectTimeout")
    assert refused.error is not None
    assert refused.error.startswith("refused: localhost")


def test_a_rotated_out_secret_signs_only_during_its_overlap() -> None:
    now = datetime.now(UTC)
    row = {"secret": "new", "previous_secret": "old", "previous_secret_until": now}
    assert signing_secrets(row, now - timedelta(seconds=1)) == ["new", "old"]
    assert signing_secrets(row, now + timedelta(seconds=1)) == ["new"]


@pytest.mark.parametrize(
    ("address", "leads_to"),
    [
        ("2002:a9fe:a9fe::", "169.254.169.254"),  # 6to4 around the metadata service
        ("2002:7f00:1::", "127.0.0.1"),
        ("64:ff9b::a00:1", "10.0.0.1"),  # NAT64
        ("2001:0:5ef5:79fb::f5ff:fffe", "10.0.0.1"),  # Teredo (client address inverted)
        ("::a9fe:a9fe", "169.254.169.254"),  # IPv4-compatible
    ],
)
def test_an_ipv6_address_carrying_a_private_ipv4_one_is_refused(
    address: str, leads_to: str
) -> None:
    reason = addresses.refusal(ipaddress.ip_address(address), ())
    assert reason is not None
    assert leads_to in reason


def test_site_local_is_refused_and_public_6to4_is_not() -> None:
    assert "site-local" in str(addresses.refusal(ipaddress.ip_address("fec0::1"), ()))
    assert addresses.refusal(ipaddress.ip_address("2002:5db8:d822::1"), ()) is None


async def test_a_host_lookup_that_never_answers_is_given_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def stuck(*_: Any, **__: Any) -> Any:
        time.sleep(3)
        raise socket.gaierror("never")

    monkeypatch.setattr(addresses, "RESOLVE_SECONDS", 0.5)
    monkeypatch.setattr(socket, "getaddrinfo", stuck)
    started = time.monotonic()
    with pytest.raises(addresses.Refused, match=r"no answer in 0\.5 s"):
        await addresses.resolve("http://hooks.example.com/", ())
    assert time.monotonic() - started < 2.5
