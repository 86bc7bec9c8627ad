"""The real ``icehook`` command as a process: ``start_icehook`` runs it, ``wait_ready`` and
``stop`` drive it, ``troubles`` reads what went wrong in its log."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.servers import free_port, http_client

ICEHOOK = str(Path(sys.executable).with_name("icehook"))


def icehook_env(
    base: Mapping[str, str],
    *,
    data_dir: Path,
    database_url: str,
    ice_url: str,
    public_url: str,
    access_key: tuple[str, str],
    api_key: str,
    **settings: str,
) -> dict[str, str]:
    """The environment of an ``icehook serve`` or ``worker`` process whose ICE is the
    simulator at ``ice_url``; ``settings``: more ``ICEHOOK_*`` variables."""
    return {
        **base,
        "ICEHOOK_DATA_DIR": str(data_dir),
        "ICEHOOK_DATABASE_URL": database_url,
        "ICEHOOK_ICE_ENDPOINT": ice_url,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": access_key[0],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": access_key[1],
        "ICEHOOK_API_KEYS": api_key,
        "ICEHOOK_PUBLIC_URL": public_url,
        **settings,
    }


def clean_environment() -> dict[str, str]:
    """The environment for an icehook subprocess, without this shell's ICEHOOK_* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("ICEHOOK_", "ALIBABA_CLOUD_"))}


@contextlib.asynccontextmanager
async def serve_simulated(
    database_url: str, data_dir: Path, api_key: str, **variables: str
) -> AsyncIterator[tuple[str, Path]]:
    """The real ``icehook serve --simulate`` on ``database_url``, ready; yields its URL and
    its log file (stdout and stderr). ``variables``: more of its environment."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **clean_environment(),
        "ICEHOOK_DATABASE_URL": database_url,
        "ICEHOOK_DATA_DIR": str(data_dir),
        "ICEHOOK_API_KEYS": api_key,
        "ICEHOOK_PUBLIC_URL": url,
        **variables,
    }
    log = data_dir / "serve.log"
    proc = await start_icehook_logged("serve", "--simulate", "--port", str(port), env=env, log=log)
    try:
        await wait_ready(url)
        yield url, log
    finally:
        await stop(proc)


async def run_icehook(
    *args: str, env: Mapping[str, str], limit_seconds: float = 60
) -> tuple[int, str, str]:
    """Run the real ``icehook`` command to its end: exit status, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        ICEHOOK,
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=limit_seconds)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def start_icehook(*args: str, env: Mapping[str, str]) -> asyncio.subprocess.Process:
    """Start the real ``icehook`` command; its output goes to this test's captured output."""
    return await asyncio.create_subprocess_exec(ICEHOOK, *args, env=dict(env))


async def start_simulator(
    url: str, env: Mapping[str, str], log: Path
) -> asyncio.subprocess.Process:
    """The real ``icehook simulator`` on the port of ``url``, logging to ``log``, ready."""
    proc = await start_icehook_logged(
        "simulator", "--port", url.rsplit(":", 1)[1], env=env, log=log
    )
    await wait_ready(url, "/_sim/settings")
    return proc


async def wait_ready(url: str, path: str = "/readyz") -> None:
    """Poll ``url + path`` until it answers 200 (at most 90 s: a first start runs initdb)."""
    async with asyncio.timeout(90), http_client(base_url=url, timeout=2) as client:
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


def log_record(line: str) -> dict[str, Any] | None:
    """A JSON log line's record (app/telemetry/logs.py); None for any other line."""
    with contextlib.suppress(ValueError):
        record = json.loads(line)
        if isinstance(record, dict) and "level" in record:
            return record
    return None


def troubles(log: Path) -> list[str]:
    """The lines of a process's ``log`` that say something went wrong (JSON or text lines)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        record = log_record(line)
        if record is not None:
            if record["level"] in ("ERROR", "CRITICAL"):
                found.append(line)
        elif " ERROR " in line or line.startswith("Traceback"):
            found.append(line)
    return found


# -- the database after a multi-process run ---------------------------------------------------


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    """The JSON log records written to ``stream``."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]
