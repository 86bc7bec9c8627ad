"""What both benchmarks share: a fresh database, logged processes, submitting jobs, results.

Every process a benchmark starts writes its output to a log file of its own (kept in a
temporary directory, whose path is printed), is stopped with SIGTERM at the end, and is
killed if it does not stop within a minute. Nothing talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from tests.helpers.processes import ICEHOOK

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_SERVER_URL = "postgresql://root@127.0.0.1:5432/postgres"
KEY_ID, SECRET, API_KEY = "bench-ak", "bench-secret", "bench-api-key-0123"
OUTPUT = {"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out/bench.mp4"}
FINAL = frozenset({"succeeded", "failed", "finished", "rejected"})
STOP_SECONDS = 60.0


def say(line: str) -> None:
    """A progress line, on stderr (stdout carries the summary)."""
    print(line, file=sys.stderr, flush=True)


def run_main(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run(main)``, where SIGTERM cancels ``main`` like Ctrl-C: every process stops
    and the fresh database is dropped."""

    async def guarded() -> None:
        task = asyncio.ensure_future(main)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await task

    asyncio.run(guarded())


def plain_dsn(url: str) -> str:
    """A ``postgresql://`` DSN (asyncpg's form) from any SQLAlchemy PostgreSQL URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def database(
    server_url: str, given_url: str | None, *, keep: bool = False
) -> AsyncIterator[str]:
    """``given_url`` as it is, or a fresh database on ``server_url``, dropped afterwards
    unless ``keep``."""
    if given_url:
        yield given_url
        return
    name = f"icehook_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(plain_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(plain_dsn(server_url)).set(database=name).render_as_string(False)
    try:
        yield url
    finally:
        if keep:
            print(f"kept: {url} (reuse it with --database-url; drop it when done)", file=sys.stderr)
        else:
            admin = await asyncpg.connect(plain_dsn(server_url))
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


async def query(database_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def status_counts(database_url: str) -> dict[str, int]:
    rows = await query(database_url, "SELECT status, count(*) AS n FROM jobs GROUP BY status")
    return {row["status"]: row["n"] for row in rows}


async def final_count(database_url: str) -> int:
    """How many jobs icehook has in a final status."""
    counts = await status_counts(database_url)
    return sum(n for status, n in counts.items() if status in FINAL)


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, seconds: float, what: str, every: float = 0.5
) -> float:
    """Poll ``check`` until it holds; return how long that took. TimeoutError names ``what``."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > seconds:
            raise TimeoutError(f"not within {seconds:g} s: {what}")
        await asyncio.sleep(every)
    return time.monotonic() - started


async def wait_http(url: str, *, seconds: float = 90.0) -> None:
    """Until ``url`` answers 200 (a first start migrates the database)."""
    async with httpx.AsyncClient(timeout=2, trust_env=False) as client:

        async def up() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return (await client.get(url)).status_code == 200
            return False

        await wait_until(up, seconds=seconds, what=f"{url} answers 200", every=0.2)


@dataclass
class Processes:
    """Processes started by a benchmark, each logging to ``log_dir/<name>.log``."""

    log_dir: Path
    running: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> asyncio.subprocess.Process:
        with (self.log_dir / f"{name}.log").open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                *argv, env=dict(env), cwd=ROOT, stdout=log, stderr=asyncio.subprocess.STDOUT
            )
        self.running.append(proc)
        return proc

    async def stop(self, proc: asyncio.subprocess.Process) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``STOP_SECONDS``."""
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(proc.wait(), timeout=STOP_SECONDS)
        except TimeoutError:
            proc.kill()
            return await proc.wait()
        finally:
            self.running.remove(proc)

    async def stop_all(self) -> None:
        for proc in list(reversed(self.running)):
            await self.stop(proc)


@contextlib.asynccontextmanager
async def processes(prefix: str) -> AsyncIterator[Processes]:
    log_dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    print(f"logs of the processes: {log_dir}", file=sys.stderr)
    procs = Processes(log_dir)
    try:
        yield procs
    finally:
        await procs.stop_all()


def clean_env(**settings: str) -> dict[str, str]:
    """This environment without icehook's or Alibaba's variables, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ICEHOOK_", "ALIBABA_CLOUD_"))}
    return env | settings


def icehook_env(database_url: str, ice_endpoint: str, **settings: str) -> dict[str, str]:
    """``icehook serve``/``worker`` configured as in production, with the simulator as ICE.
    The simulator limits no reads, so neither does icehook here: the benchmarks measure
    icehook, not the read budget a real ICE account needs (``ICEHOOK_ICE_READ_QPS``)."""
    return clean_env(
        ICEHOOK_DATABASE_URL=database_url,
        ICEHOOK_API_KEYS=API_KEY,
        ICEHOOK_ICE_ENDPOINT=ice_endpoint,
        ALIBABA_CLOUD_ACCESS_KEY_ID=KEY_ID,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=SECRET,
        ICEHOOK_ICE_READ_QPS="100000",
        **settings,
    )


def icehook(*args: str) -> list[str]:
    return [ICEHOOK, *args]


async def submit_jobs(api_url: str, count: int, *, concurrency: int = 16) -> list[dict[str, Any]]:
    """Submit ``count`` jobs through ``POST /v1/jobs``; return the job resources."""
    slots = asyncio.Semaphore(concurrency)
    headers = {"authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(
        base_url=api_url, headers=headers, timeout=120, trust_env=False
    ) as client:

        async def one(n: int) -> dict[str, Any]:
            async with slots:
                body = {"ProjectId": f"bench-{n}", "OutputMediaConfig": OUTPUT}
                response = await client.post("/v1/jobs", json=body)
            if response.status_code not in (201, 202):
                raise RuntimeError(
                    f"POST /v1/jobs answered {response.status_code}: {response.text}"
                )
            job: dict[str, Any] = response.json()
            return job

        return list(await asyncio.gather(*(one(n) for n in range(count))))


async def truth(sim: httpx.AsyncClient, ice_job_id: str) -> dict[str, Any]:
    """The simulator's truth about a job (``GET /_sim/jobs/{JobId}``)."""
    response = await sim.get(f"/_sim/jobs/{ice_job_id}")
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def callback_token(job_truth: Mapping[str, Any]) -> str:
    """The callback token: the last path segment of the NotifyAddress ICE was given."""
    return str(json.loads(job_truth["user_data"])["NotifyAddress"]).rsplit("/", 1)[1]


async def rpc_calls(sim: httpx.AsyncClient) -> dict[str, int]:
    response = await sim.get("/_sim/stats")
    response.raise_for_status()
    calls: dict[str, int] = response.json()["rpc_calls"]
    return calls


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of unsorted ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def command_line(module: str) -> str:
    """How this benchmark was started, as one would type it."""
    return " ".join(shlex.quote(a) for a in ["python", "-m", module, *sys.argv[1:]])


async def machine_facts(database_url: str, command: str) -> dict[str, Any]:
    """What the numbers depend on: this machine, PostgreSQL and its durability settings."""
    rows = await query(
        database_url,
        "SELECT version() AS version, current_setting('fsync') AS fsync, "
        "current_setting('synchronous_commit') AS synchronous_commit, "
        "current_setting('max_connections') AS max_connections",
    )
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--", "app", "migrations"))
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "postgresql": rows[0]["version"],
        "postgresql_fsync": rows[0]["fsync"],
        "postgresql_synchronous_commit": rows[0]["synchronous_commit"],
        "git_commit": f"{commit}{' + uncommitted changes in app/' if dirty else ''}",
        "packages": {
            name: metadata.version(name)
            for name in ("starlette", "uvicorn", "sqlalchemy", "asyncpg", "httpx")
        },
    }


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return models[0] if models else platform.processor()


def _git(*args: str) -> str:
    try:
        done = subprocess.run(  # noqa: S603 (fixed program, no shell)
            ["git", *args],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (also readable as plain text)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def facts_markdown(facts: Mapping[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in facts["packages"].items())
    return "\n".join(
        [
            f"- date: {facts['date']}",
            f"- command: `{facts['command']}`",
            f"- machine: {facts['nproc']} CPUs ({facts['cpu']}), load average at start "
            f"{facts['load_average_at_start']}; shared and noisy",
            f"- PostgreSQL: {facts['postgresql']} (fsync={facts['postgresql_fsync']}, "
            f"synchronous_commit={facts['postgresql_synchronous_commit']})",
            f"- Python {facts['python']}; {packages}",
            f"- icehook at git {facts['git_commit']}",
        ]
    )


def write_results(name: str, data: Mapping[str, Any], markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + "\n")
    print(f"results: {RESULTS / name}.json and .md", file=sys.stderr)
