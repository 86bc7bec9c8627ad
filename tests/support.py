"""Helpers shared by tests.

``serve`` runs an ASGI app on a real socket in the current loop; ``start_icehook`` runs the
real ``icehook`` command as a process, ``wait_ready`` and ``stop`` drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` (lifespan on) on ``port`` (default: a free one); yield its base URL."""
    # Bound here, before uvicorn starts, so the port is ours: no race for a "free" port.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", timeout_graceful_shutdown=5)
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


ICEHOOK = str(Path(sys.executable).with_name("icehook"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start_icehook(*args: str, env: Mapping[str, str]) -> asyncio.subprocess.Process:
    """Start the real ``icehook`` command; its output goes to this test's captured output."""
    return await asyncio.create_subprocess_exec(ICEHOOK, *args, env=dict(env))


async def wait_ready(url: str, path: str = "/readyz") -> None:
    """Poll ``url + path`` until it answers 200 (at most 90 s: a first start runs initdb)."""
    async with asyncio.timeout(90), httpx.AsyncClient(base_url=url, timeout=2) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(path)).status_code == 200:
                    return
            await asyncio.sleep(0.2)


async def stop(proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> int:
    """Send ``sig`` and wait for the exit status."""
    if proc.returncode is None:
        proc.send_signal(sig)
    return await asyncio.wait_for(proc.wait(), timeout=60)


async def start_icehook_logged(
    *args: str, env: Mapping[str, str], log: Path
) -> asyncio.subprocess.Process:
    """Like ``start_icehook``, with the process's stdout and stderr appended to ``log``."""
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            ICEHOOK, *args, env=dict(env), stdout=out, stderr=asyncio.subprocess.STDOUT
        )


async def wait_for_line(
    log: Path, text: str, proc: asyncio.subprocess.Process, seconds: float = 90
) -> None:
    """Wait until ``log`` holds a line containing ``text`` (fails early if ``proc`` exits)."""
    async with asyncio.timeout(seconds):
        while not _holds(log, text):
            if proc.returncode is not None:
                raise RuntimeError(f"exited with {proc.returncode} before {text!r}: see {log}")
            await asyncio.sleep(0.1)


def _holds(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text(errors="replace")


async def kill_all(procs: Iterable[asyncio.subprocess.Process]) -> None:
    """SIGKILL whichever of ``procs`` still run and reap them (cleanup after a failed test)."""
    for proc in procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def troubles(log: Path) -> list[str]:
    """The lines of a process's ``log`` that say something went wrong."""
    return [
        line
        for line in log.read_text(errors="replace").splitlines()
        if " ERROR " in line or line.startswith("Traceback")
    ]
