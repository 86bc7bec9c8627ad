"""Misbehaving peers for fault-injection tests, each a real socket.

- ``TcpProxy``: forwards TCP connections to a server (a host and port, or a Unix socket),
  and can stop forwarding (``pause``): connections stay open and nothing moves, as when a
  host vanishes from the network without closing anything.
- ``TricklingServer``: an HTTP server that reads a whole request and then sends its answer
  one byte at a time; it records when each connection opened and closed, and how many were
  open at once per request key (a webhook's id).
- ``open_raw``: a raw client connection, for trickling a request's head or body.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.engine import make_url


@dataclass
class TcpProxy:
    """A TCP proxy on 127.0.0.1 to ``connect`` (a function opening the upstream stream)."""

    connect: Callable[[], asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
    port: int = 0
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def pause(self) -> None:
        """Stop moving bytes, in both directions, on every connection (new ones too)."""
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    async def start(self) -> None:
        self.flowing.set()
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        await self.flowing.wait()
        try:
            up_reader, up_writer = await self.connect()
        except OSError:
            writer.close()
            return
        self._writers.append(up_writer)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while chunk := await source.read(65536):
                await self.flowing.wait()  # held here while paused
                sink.write(chunk)
                await sink.drain()
        sink.close()


@contextlib.asynccontextmanager
async def database_proxy(database_url: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A ``TcpProxy`` in front of the server of ``database_url`` (TCP or, as the embedded
    server, a Unix socket), and the URL of the same database through it."""
    url = make_url(database_url)
    socket_dir = parse_qs(urlsplit(database_url).query).get("host", [""])[0]
    if socket_dir.startswith("/"):
        path = f"{socket_dir}/.s.PGSQL.{url.port or 5432}"

        def connect() -> asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
            return asyncio.ensure_future(asyncio.open_unix_connection(path))
    else:
        host, port = url.host or "127.0.0.1", url.port or 5432

        def connect() -> asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
            return asyncio.ensure_future(asyncio.open_connection(host, port))

    proxy = TcpProxy(connect)
    await proxy.start()
    through = url.set(host="127.0.0.1", port=proxy.port, query={})
    try:
        yield proxy, through.render_as_string(hide_password=False)
    finally:
        await proxy.close()


@dataclass
class Visit:
    """One connection to a ``TricklingServer``."""

    key: str
    opened: float
    closed: float | None = None


@dataclass
class TricklingServer:
    """Answers every request with ``answer``, one byte every ``interval`` seconds (the
    first only after ``first_byte_after``). ``key_header`` names the request header whose
    value identifies a request (a webhook's ``webhook-id``)."""

    answer: bytes
    interval: float = 0.5
    key_header: bytes = b"webhook-id"
    url: str = ""
    visits: list[Visit] = field(default_factory=list)
    most_at_once: Counter[str] = field(default_factory=Counter)
    _open: Counter[str] = field(default_factory=Counter)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        visit = Visit("", time.monotonic())
        self.visits.append(visit)
        counted = False
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                if name.strip().lower() == self.key_header:
                    visit.key = value.strip().decode()
            await reader.readexactly(length)
            self._open[visit.key] += 1
            counted = True
            self.most_at_once[visit.key] = max(self.most_at_once[visit.key], self._open[visit.key])
            for byte in self.answer:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(self.interval)
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._open[visit.key] -= counted
            visit.closed = time.monotonic()
            writer.close()
            self._tasks.discard(task)


@contextlib.asynccontextmanager
async def trickling(answer: bytes, interval: float = 0.5) -> AsyncIterator[TricklingServer]:
    server = TricklingServer(answer, interval)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def open_raw(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection, which it must do within
    ``seconds`` (else ``TimeoutError``). A server that closes with our bytes unread resets
    the connection, and what it sent may be lost: then b"" comes back."""
    chunks = []
    async with asyncio.timeout(seconds):
        with contextlib.suppress(ConnectionError):  # reset, or a broken pipe
            while chunk := await reader.read(65536):
                chunks.append(chunk)
    return b"".join(chunks)


async def trickle(writer: asyncio.StreamWriter, data: bytes, interval: float = 0.1) -> None:
    """Send ``data`` a byte every ``interval`` seconds."""
    for byte in data:
        send(writer, bytes([byte]))
        await asyncio.sleep(interval)


def send(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write, as a client that does not know yet that the server has closed."""
    with contextlib.suppress(OSError, RuntimeError):
        writer.write(data)
