"""Real servers on real sockets in this process: an ASGI app behind icehook's edge, free ports."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from app.http.edge import EdgeLimits, server_config

# Below the server's idle keep-alive (``EdgeLimits().keepalive_seconds``, 5 s). httpx's own
# default is also 5 s, so a request sent just as the server closes the idle connection
# meets a closed socket (``httpx.ReadError``); a client must give up idle connections first.
CLIENT_KEEPALIVE_SECONDS = 1.0


def http_client(**options: Any) -> httpx.AsyncClient:
    """An HTTP client for a server on a socket: httpx's, dropping idle connections before
    the server does."""
    limits = httpx.Limits(keepalive_expiry=CLIENT_KEEPALIVE_SECONDS)
    return httpx.AsyncClient(limits=limits, **options)


@contextlib.asynccontextmanager
async def serve(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0, limits: EdgeLimits | None = None
) -> AsyncIterator[str]:
    """Serve ``app`` (lifespan on) on ``port`` (default: a free one) behind icehook's edge
    (``limits``, default ``EdgeLimits()``); yield its base URL."""
    # Bound here, before uvicorn starts, so the port is ours: no race for a "free" port.
    # IPPROTO_TCP given, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
    # without it every small answer can wait 40 ms for a delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    config = server_config(
        app, limits or EdgeLimits(), lifespan="on", log_level="warning", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)

    async def run() -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit:  # uvicorn's answer to a failed lifespan startup
            raise RuntimeError("the app failed to start (see its log)") from None

    task = asyncio.create_task(run())
    try:
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("the server stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
