"""The outbound client over real sockets: what reaches the peer, and how failures read."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app import outbound
from tests.helpers.servers import free_port, serve


async def test_the_request_arrives_as_httpx_built_it() -> None:
    """Host header, query parameters, body, and no Content-Type that was not set."""
    seen: list[tuple[str, list[tuple[str, str]], bytes, str | None]] = []

    async def record(request: Request) -> Response:
        seen.append(
            (
                request.headers["host"],
                list(request.query_params.multi_items()),
                await request.body(),
                request.headers.get("content-type"),
            )
        )
        return PlainTextResponse("ok", headers={"x-answer": "1"})

    app = Starlette(routes=[Route("/", record, methods=["POST"])])
    params = {"Signature": "a+b/c=", "Text": "x y*~%", "Name": "é"}
    async with serve(app) as url, outbound.client(max_connections=4, trust_env=False) as client:
        request = client.build_request(
            "POST", f"{url}/", params=params, content=b"body", headers={"host": "ice.example:80"}
        )
        response = await client.send(request)
        await client.post(f"{url}/", params=params)
    assert (response.status_code, response.text, response.headers["x-answer"]) == (200, "ok", "1")
    assert seen == [
        ("ice.example:80", list(params.items()), b"body", None),
        (url.removeprefix("http://"), list(params.items()), b"", None),
    ]


async def test_a_refused_connection_is_nothing_sent() -> None:
    async with outbound.client(max_connections=4, trust_env=False) as client:
        with pytest.raises(outbound.FAILURES) as caught:
            await client.post(f"http://127.0.0.1:{free_port()}/", content=b"x", timeout=5)
    assert outbound.nothing_sent(caught.value)
    assert outbound.describe(caught.value).startswith("ClientConnectorError: ")


@contextlib.asynccontextmanager
async def hanging_up() -> AsyncIterator[str]:
    """A server that reads a request and closes the connection without answering."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/"


async def test_a_connection_dropped_after_the_request_is_not_nothing_sent() -> None:
    async with hanging_up() as url, outbound.client(max_connections=4, trust_env=False) as client:
        with pytest.raises(outbound.FAILURES) as caught:
            await client.post(url, content=b"x", timeout=5)
    assert not outbound.nothing_sent(caught.value), "it may have been acted on"
    assert outbound.describe(caught.value).startswith("ServerDisconnectedError")


def test_httpx_errors_keep_their_meaning() -> None:
    request = httpx.Request("POST", "http://ice.example/")
    assert outbound.nothing_sent(httpx.ConnectError("refused", request=request))
    assert outbound.nothing_sent(httpx.PoolTimeout("busy", request=request))
    assert not outbound.nothing_sent(httpx.ReadTimeout("slow", request=request))
    assert outbound.describe(httpx.ReadTimeout("slow", request=request)) == "ReadTimeout: slow"
