"""Outbound HTTP: the client that icehook calls ICE and webhook subscribers with.

httpx's API (requests, responses, timeouts, ``MockTransport`` in unit tests) over aiohttp's
connections, through the ``httpx-aiohttp`` transport: httpx's own connection pool (httpcore
on anyio) costs several times more CPU per request (``python -m bench.http_client``), and
with an ICE call and a webhook for every callback that was most of a worker's time.

aiohttp may write the query string with fewer escapes than httpx built it with (``/`` and
``*`` for ``%2F`` and ``%2A``): the same parameters, as ICE (and the simulator) decode them
before checking a signature.

The transport turns aiohttp's errors into httpx's loosely (a connection that the peer
dropped after the request went out becomes ``httpx.ConnectTimeout``) and keeps aiohttp's
as the cause: ``nothing_sent`` and ``describe`` look at the cause.
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

# What sending may raise when the peer or the network fails: httpx's errors, and the
# aiohttp errors that the transport lets through untranslated.
FAILURES = (httpx.HTTPError, aiohttp.ClientError)


KEEPALIVE_SECONDS = 5.0  # an idle connection is closed after this long (httpx's default)


def client(*, max_connections: int, trust_env: bool) -> httpx.AsyncClient:
    """A client that never follows redirects; with ``trust_env``, proxies from the
    environment (``HTTPS_PROXY``...) are used."""

    def session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=max_connections,
                keepalive_timeout=KEEPALIVE_SECONDS,
                ssl=httpx.create_ssl_context(),  # the CAs httpx trusts
            ),
            # As httpx does: no Content-Type that the request did not set (aiohttp would
            # add one to a POST without a body, and ICE's signatures must list it).
            skip_auto_headers=("Content-Type",),
        )

    return httpx.AsyncClient(
        transport=AiohttpTransport(client=session),
        follow_redirects=False,
        trust_env=trust_env,
    )


def _origin(exc: BaseException) -> BaseException:
    cause = exc.__cause__
    return cause if isinstance(cause, aiohttp.ClientError) else exc


def nothing_sent(exc: BaseException) -> bool:
    """Whether a failed send never reached the peer (no connection was made), so that
    sending again cannot do anything twice."""
    return isinstance(
        _origin(exc),
        (
            aiohttp.ClientConnectorError,  # refused, unreachable, or the TLS handshake failed
            aiohttp.ConnectionTimeoutError,  # no connection (from the pool) in time
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.PoolTimeout,
        ),
    )


def describe(exc: BaseException) -> str:
    """The failure as ``Type: message``, with aiohttp's own type where it has one."""
    origin = _origin(exc)
    return f"{type(origin).__name__}: {origin}"
