"""Running servers: several uvicorn servers in one event loop (the service, the simulator, the
demo's receiver), each behind icehook's edge (``http.edge``), with icehook, not uvicorn,
owning SIGTERM and SIGINT, so that every server stops within the shutdown's bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import uvicorn
from starlette.types import ASGIApp

from app.core.errors import ConfigError
from app.flows.lifecycle import Shutdown
from app.http import edge

EXIT_STARTUP_FAILED = 3
# ICE's requests carry every parameter but Timeline in the query string (icehook allows
# 32 KiB of it), so the simulator takes longer request heads than icehook's own API.
SIMULATOR_LIMITS = edge.EdgeLimits(max_head_bytes=64 * 1024)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Served:
    """An app, the socket it listens on, and what a connection to it may take."""

    app: ASGIApp
    socket: socket.socket
    limits: edge.EdgeLimits


def freeze_heap() -> None:
    """Leave what start-up loaded (modules, metadata, caches) out of garbage collection.

    A full collection walks every tracked object: icehook's imports alone leave ~90,000,
    and under load such collections stalled the event loop for 60-80 ms every few seconds
    (every request waiting meanwhile paid for it). ``gc.freeze`` moves them to a
    generation that is never walked; what is created afterwards is collected as usual.
    """
    gc.collect()
    gc.freeze()


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop where it exists (not on Windows), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def bind(host: str, port: int, flag: str = "--port") -> socket.socket:
    """Listen before anything else starts, so a taken port is a clear error at once."""
    # IPPROTO_TCP given, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP (uvloop
    # always does); without it a small answer can wait 40 ms for the peer's delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(flag, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return url_of_host(host, port)


def url_of_host(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to icehook (several servers share one process)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run_servers(
    apps: Sequence[Served],
    shutdown: Shutdown,
    main: Callable[[], Coroutine[Any, Any, int]] | None = None,
) -> int | None:
    """Serve every app until SIGTERM/SIGINT or one fails. The first signal begins
    ``shutdown``: requests in flight have until its deadline to be answered; the second
    forces it (``Shutdown.force``).

    With ``main``, also run it once every server is started and stop them all when it
    returns; return what it returned, or None when it did not finish (a signal came first).
    """
    servers = [
        _Server(
            edge.server_config(
                served.app,
                served.limits,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=max(1, round(shutdown.seconds)),
            )
        )
        for served in apps
    ]

    async def serve_all() -> tuple[bool, int | None]:
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            shutdown.signal()
            for server in servers:
                server.should_exit = True
                server.force_exit = shutdown.forced.is_set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        tasks = [
            asyncio.create_task(server.serve(sockets=[served.socket]))
            for server, served in zip(servers, apps, strict=True)
        ]
        stopping = asyncio.create_task(shutdown.begun.wait())

        async def when_started() -> None:
            while not all(server.started for server in servers):
                await asyncio.sleep(0.05)

        async def freeze_when_started() -> None:
            await when_started()
            freeze_heap()

        async def main_when_started() -> int:
            assert main is not None
            await when_started()
            return await main()

        freezing = asyncio.create_task(freeze_when_started())
        driving = asyncio.create_task(main_when_started()) if main else None
        await asyncio.wait(
            [stopping, *tasks, *([driving] if driving else [])],
            return_when=asyncio.FIRST_COMPLETED,
        )
        freezing.cancel()
        if driving is not None and not driving.done():
            driving.cancel()  # a signal, or a server stopped: the servers still run meanwhile
            await asyncio.gather(driving, return_exceptions=True)
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        stopping.cancel()
        started = all(server.started for server in servers)
        if driving is None or driving.cancelled():
            return started, None
        return started, driving.result()

    started, result = run(serve_all())
    if not started:
        print("icehook: a server failed to start (see the log above)", file=sys.stderr)
        sys.exit(EXIT_STARTUP_FAILED)
    return result
