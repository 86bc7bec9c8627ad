"""Helpers shared by tests.

``serve`` runs an ASGI app on a real socket in the current loop; ``start_icehook`` runs the
real ``icehook`` command as a process, ``wait_ready`` and ``stop`` drive it. ``rows``,
``wait_until_settled`` and ``check_history`` look at the database after multi-process runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from starlette.types import ASGIApp

from app.core.statuses import RANK, JobStatus
from app.http.edge import EdgeLimits, server_config
from app.store.engine import create_engine
from app.store.tables import callbacks as callbacks_table
from app.store.tables import job_events, jobs, outbox


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


ICEHOOK = str(Path(sys.executable).with_name("icehook"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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

FINAL = frozenset({"succeeded", "failed", "finished", "rejected"})


async def rows(database_url: str, statement: sa.Executable) -> list[Any]:
    """``statement``'s rows as mappings, on a connection of its own."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(statement)).mappings())
    finally:
        await engine.dispose()


async def unsettled(database_url: str, sim: httpx.AsyncClient, *, expected: int = 0) -> str:
    """What is not settled yet ("" when nothing): fewer than ``expected`` jobs (not counting
    a batch's sub-jobs), jobs not final, callbacks pending, or callbacks the simulator is
    still sending (each is delivered twice, up to three attempts each: a delivery is done
    when it has a last attempt in the simulator's log)."""
    found = await rows(database_url, sa.select(jobs.c.status, jobs.c.ice_job_id, jobs.c.batch_id))
    if sum(1 for j in found if j["batch_id"] is None) < expected:
        return f"only {len(found)} jobs"
    if busy := Counter(j["status"] for j in found if j["status"] not in FINAL):
        return f"jobs not final: {dict(busy)}"
    status = callbacks_table.c.outcome
    if pending := await rows(database_url, sa.select(status).where(status == "pending")):
        return f"{len(pending)} callbacks pending"
    ended = {
        (c["job_id"], c["delivery"])
        for c in (await sim.get("/_sim/callbacks")).json()["callbacks"]
        if c["response_status"] == 200 or c["attempt"] in (0, 3)
    }
    if sending := [
        j["ice_job_id"] for j in found for d in (1, 2) if (j["ice_job_id"], d) not in ended
    ]:
        return f"the simulator is still sending callbacks of {len(sending)} jobs"
    return ""


async def wait_until_settled(
    database_url: str, sim: httpx.AsyncClient, *, expected: int = 0, seconds: float = 120
) -> None:
    """Until ``unsettled`` finds nothing; an AssertionError saying what is left after
    ``seconds``."""
    left = "not looked yet"
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while left:
                await asyncio.sleep(0.5)
                left = await unsettled(database_url, sim, expected=expected)
            return
    raise AssertionError(f"not settled after {seconds} s: {left}")


async def check_history(
    database_url: str, all_jobs: Sequence[Mapping[str, Any]]
) -> dict[uuid.UUID, list[Any]]:
    """The invariants of the job history: one event per transition, in a forward chain that
    starts at ``submitting`` and ends at the job's status, and exactly one outbox message
    per event. Returns each job's chain of events."""
    events = await rows(database_url, sa.select(job_events).order_by(job_events.c.id))
    twice = [k for k, n in Counter((e["job_id"], e["to_status"]) for e in events).items() if n > 1]
    assert not twice, f"a transition recorded twice: {twice}"
    chains: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for event in events:
        chains[event["job_id"]].append(event)
    for job in all_jobs:
        chain = chains[job["id"]]
        assert chain, f"job {job['id']} has no events"
        previous = JobStatus.SUBMITTING  # every job starts there, without an event
        for event in chain:
            assert event["from_status"] == previous, f"job {job['id']}: {chain}"
            assert RANK[JobStatus(event["to_status"])] > RANK[previous], chain
            previous = JobStatus(event["to_status"])
        assert previous == job["status"], chain
    messages = await rows(database_url, sa.select(outbox))
    per_event = Counter(m["job_event_id"] for m in messages)
    assert per_event == Counter(e["id"] for e in events), "exactly one outbox message per event"
    per_type = Counter((m["job_id"], m["event_type"]) for m in messages)
    assert not [k for k, n in per_type.items() if n > 1]
    return chains
