"""The HTTP edge (app/edge.py) over real sockets: every limit a client may hit, and that
well-behaved requests (pipelined ones too) are untouched by them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.http.edge import MAX_HEADERS, EdgeLimits
from tests.helpers.faults import closed_within, open_raw, send, trickle
from tests.helpers.servers import http_client, serve

LIMITS = EdgeLimits(
    max_connections=20,
    max_head_bytes=4096,
    head_seconds=1.0,
    body_seconds=1.5,
    keepalive_seconds=0.5,
)
SLACK = 2.0  # for a loaded machine; the bounds under test are seconds apart


class Echo:
    """An app that answers how many body bytes it read, and remembers every request."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def handle(self, request: Request) -> PlainTextResponse:
        self.seen.append(request.url.path)
        body = await request.body()
        return PlainTextResponse(f"{len(body)}")


@pytest.fixture
async def echo() -> AsyncIterator[tuple[str, Echo]]:
    app_state = Echo()
    app = Starlette(routes=[Route("/{path:path}", app_state.handle, methods=["GET", "POST"])])
    async with serve(app, limits=LIMITS) as url:
        yield url, app_state


async def test_ordinary_requests_pass_keep_alive_and_pipelined(echo: tuple[str, Echo]) -> None:
    url, app = echo
    async with http_client(base_url=url) as client:
        for n in range(3):  # one connection, kept alive
            answer = await client.post(f"/r{n}", content=b"x" * 100_000)
            assert answer.text == "100000"
    reader, writer = await open_raw(url)
    writer.write(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\n")
    answers = b""
    async with asyncio.timeout(10):
        while answers.count(b"HTTP/1.1 200") < 2:
            answers += await reader.read(4096)
    writer.close()
    assert app.seen[-2:] == ["/a", "/b"]


async def test_a_head_too_large_is_431_before_the_app_sees_it(echo: tuple[str, Echo]) -> None:
    url, app = echo
    reader, writer = await open_raw(url)
    send(writer, b"GET /big HTTP/1.1\r\nhost: x\r\nx-flood: " + b"y" * 8000)
    assert (await closed_within(reader, 5)).startswith(b"HTTP/1.1 431 ")
    reader, writer = await open_raw(url)  # far more than it reads: it may reset instead
    send(writer, b"GET /big HTTP/1.1\r\nhost: x\r\nx-flood: " + b"y" * 1_000_000 + b"\r\n\r\n")
    answer = await closed_within(reader, 5)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    many = b"".join(b"x-%d: 1\r\n" % n for n in range(MAX_HEADERS + 1))
    reader, writer = await open_raw(url)
    send(writer, b"GET /many HTTP/1.1\r\nhost: x\r\n" + many + b"\r\n")
    assert (await closed_within(reader, 5)).startswith(b"HTTP/1.1 431 ")
    assert app.seen == []


async def test_a_trickled_head_is_408_at_its_deadline(echo: tuple[str, Echo]) -> None:
    url, app = echo
    reader, writer = await open_raw(url)
    started = time.monotonic()
    task = asyncio.create_task(trickle(writer, b"GET /slow HTTP/1.1\r\nhost: x\r\n" * 10))
    try:
        answer = await closed_within(reader, LIMITS.head_seconds + SLACK)
    finally:
        task.cancel()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < LIMITS.head_seconds + SLACK
    assert app.seen == []


async def test_a_trickled_body_is_408_at_its_deadline(echo: tuple[str, Echo]) -> None:
    url, _ = echo
    reader, writer = await open_raw(url)
    writer.write(b"POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n")
    started = time.monotonic()
    task = asyncio.create_task(trickle(writer, b"x" * 1000))
    try:
        answer = await closed_within(reader, LIMITS.body_seconds + SLACK)
    finally:
        task.cancel()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started >= LIMITS.body_seconds - 0.1


async def test_held_connections_are_closed_and_capped(echo: tuple[str, Echo]) -> None:
    url, _ = echo
    held = [await open_raw(url) for _ in range(LIMITS.max_connections)]
    await asyncio.sleep(0.1)
    reader, _ = await open_raw(url)
    assert (await closed_within(reader, 2)).startswith(b"HTTP/1.1 503 "), "one too many"
    started = time.monotonic()
    for reader, _ in held:  # silent connections end at the head deadline
        await closed_within(reader, LIMITS.head_seconds + SLACK)
    assert time.monotonic() - started < LIMITS.head_seconds + SLACK
    async with http_client(base_url=url) as client:  # room again
        assert (await client.get("/after")).status_code == 200


async def test_an_idle_kept_alive_connection_is_closed(echo: tuple[str, Echo]) -> None:
    url, _ = echo
    reader, writer = await open_raw(url)
    writer.write(b"GET /once HTTP/1.1\r\nhost: x\r\n\r\n")
    answer = await closed_within(reader, LIMITS.keepalive_seconds + SLACK)
    assert answer.startswith(b"HTTP/1.1 200 ")


async def test_deadlines_move_with_each_request_of_a_kept_alive_connection(
    echo: tuple[str, Echo],
) -> None:
    """A connection busy for longer than any one deadline is not cut at the first one; once
    idle, a head it begins still has one (the deadline moved along with its requests)."""
    url, app = echo
    reader, writer = await open_raw(url)
    began = time.monotonic()
    answered = 0
    while time.monotonic() - began < 2 * LIMITS.body_seconds:
        writer.write(b"GET /busy HTTP/1.1\r\nhost: x\r\n\r\n")
        answer = b""
        async with asyncio.timeout(5):
            while b"\r\n\r\n1" not in answer and not answer.endswith(b"\r\n\r\n0"):
                chunk = await reader.read(4096)
                assert chunk, f"closed after {answered} requests"
                answer += chunk
        answered += 1
        last_answer = time.monotonic()  # idle from here: the next head's time starts
        await asyncio.sleep(LIMITS.keepalive_seconds / 4)
    assert answered >= 4
    assert app.seen.count("/busy") == answered
    task = asyncio.create_task(trickle(writer, b"GET /slow HTTP/1.1\r\nhost: x\r\n" * 10))
    try:
        answer = await closed_within(reader, LIMITS.head_seconds + SLACK)
    finally:
        task.cancel()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - last_answer >= LIMITS.head_seconds - 0.1
