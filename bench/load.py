"""Load for the intake benchmark: distinct ICE callbacks, closed loop (wrk) and open loop.

Every request carries a ``ProduceMediaComplete`` envelope (docs/ice.md, Callbacks) built from the
simulator's truth about a real job, to that job's callback URL. Its ``EventTime`` counts up
one second per request from a number the caller gives, so no two bodies of a benchmark are
alike and every accepted callback is a new row (icehook deduplicates on token and body).

- ``closed_loop`` runs ``wrk`` (one thread, ``connections`` connections, each sending its
  next request as soon as the last is answered): the most a server can answer.
- ``open_loop`` sends at a fixed rate whatever happens, from this process, and measures
  each latency from the moment the request was *due*, not when it was sent, so a server
  that stalls is charged for the requests that queued behind the stall (no coordinated
  omission).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.simulator.state import ice_time
from bench.common import percentile

LUA = Path(__file__).with_name("callbacks.lua")
PLACEHOLDER = "@@EVENT_TIME@@"
USER_ID = 1234567890123456
REQUEST_TIMEOUT = 30.0
IDLE_SECONDS = 2.0  # keep-alive connections idle longer than this are not reused


@dataclass(frozen=True)
class Target:
    """One callback URL path and its envelope, split around ``EventTime``."""

    path: str
    before: str
    after: str

    def body(self, event_time: int) -> bytes:
        return f"{self.before}{ice_time(event_time)}{self.after}".encode()


def target(token: str, job: Mapping[str, Any]) -> Target:
    """The callback ICE sends for ``job`` (the simulator's truth), to ``token``'s URL."""
    message: dict[str, Any] = {
        "Status": job["final_status"],
        "JobId": job["job_id"],
        "MediaId": job["media_id"],
        "ProjectId": job["project_id"],
        "ErrorCode": job["code"],
        "ErrorMessage": job["message"],
    }
    if job["final_status"] == "Success":
        message["MediaURL"] = job["media_url"]
    message["UserData"] = job["user_data"]
    envelope = {
        "EventType": "ProduceMediaComplete",
        "UserId": USER_ID,
        "EventTime": PLACEHOLDER,
        "MessageBody": message,
    }
    text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    before, after = text.split(PLACEHOLDER)
    return Target(f"/callbacks/ice/{token}", before, after)


def write_targets(targets: Sequence[Target], path: Path) -> None:
    """The file ``callbacks.lua`` reads (JSON escapes tabs and newlines, so they separate)."""
    path.write_text("".join(f"{t.path}\t{t.before}\t{t.after}\n" for t in targets))


def wrk_path() -> str | None:
    return shutil.which("wrk")


@dataclass(frozen=True)
class ClosedLoop:
    connections: int
    seconds: float
    answered: int  # responses of any status
    not_200: int  # non-2xx/3xx answers
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def ok_per_second(self) -> float:
        return (self.answered - self.not_200) / self.seconds


async def closed_loop(
    base_url: str, targets_file: Path, *, connections: int, seconds: float, first_event: int
) -> ClosedLoop:
    """``wrk`` against ``base_url`` for ``seconds``; callbacks from ``targets_file``."""
    wrk = wrk_path()
    assert wrk is not None
    proc = await asyncio.create_subprocess_exec(
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base_url,
        "--",
        str(targets_file),
        str(first_event),
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=seconds + 60)
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()}{out.decode()}")
    summary = json.loads(lines[-1])
    return ClosedLoop(
        connections=connections,
        seconds=summary["duration_us"] / 1e6,
        answered=summary["requests"],
        not_200=summary["status_errors"],
        socket_errors=summary["socket_errors"],
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
    )


@dataclass(frozen=True)
class OpenLoop:
    rate: float
    seconds: float
    sent: int
    ok: int  # answered 200
    failed: int  # another status, a socket error or no answer within REQUEST_TIMEOUT
    p50_ms: float  # over every request; a failed one counts as infinitely slow
    p99_ms: float
    max_ms: float  # of the requests answered 200
    connections_opened: int


class _Connections:
    """Keep-alive HTTP/1.1 connections to one server, opened as needed, at most ``limit``."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port = host, port
        self.slots = asyncio.Semaphore(limit)
        # (reader, writer, when it was last used): the most recently used last.
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.opened = 0

    async def exchange(self, request: bytes) -> int:
        """Send one request, read the whole answer; return its status."""
        loop = asyncio.get_running_loop()
        async with self.slots:
            # A connection idle for longer than the server keeps it may be closed under us
            # (uvicorn: 5 s); such a failure would be the client's, not the server's.
            while self.idle and loop.time() - self.idle[-1][2] > IDLE_SECONDS:
                self.idle.pop()[1].close()
            if self.idle:
                reader, writer, _ = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self.opened += 1
            try:
                writer.write(request)
                status, keep = await _read_response(reader)
            except BaseException:
                writer.close()
                raise
            if keep:
                self.idle.append((reader, writer, loop.time()))
            else:
                writer.close()
            return status

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(
        (name.strip().lower(), value.strip())
        for name, _, value in (line.partition(":") for line in header_lines if line)
    )
    await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers.get("connection", "").lower() != "close"


async def open_loop(
    host: str,
    port: int,
    targets: Sequence[Target],
    *,
    rate: float,
    seconds: float,
    first_event: int,
    max_connections: int = 512,
    due_times: list[float] | None = None,
) -> OpenLoop:
    """Send ``rate`` callbacks a second for ``seconds``; latency counted from each due time.

    Request ``n`` goes to ``targets[n % len(targets)]``; with ``due_times`` given, its due
    time (the event loop's clock) is appended there as the ``n``-th.
    """
    loop = asyncio.get_running_loop()
    connections = _Connections(host, port, max_connections)
    latencies: list[float] = []
    failed = 0

    async def one(n: int, due: float) -> None:
        nonlocal failed
        chosen = targets[n % len(targets)]
        body = chosen.body(first_event + n)
        request = (
            f"POST {chosen.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                status = await connections.exchange(request)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, KeyError):
            status = 0
        if status == 200:
            latencies.append(loop.time() - due)
        else:
            failed += 1

    total = round(rate * seconds)
    start = loop.time() + 0.05
    tasks: set[asyncio.Task[None]] = set()
    try:
        for n in range(total):
            due = start + n / rate
            if due_times is not None:
                due_times.append(due)
            await asyncio.sleep(max(0.0, due - loop.time()))
            task = asyncio.create_task(one(n, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
    finally:
        connections.close()
    everything = latencies + [float("inf")] * failed
    return OpenLoop(
        rate=rate,
        seconds=seconds,
        sent=total,
        ok=len(latencies),
        failed=failed,
        p50_ms=percentile(everything, 50) * 1000,
        p99_ms=percentile(everything, 99) * 1000,
        max_ms=max(latencies, default=0.0) * 1000,
        connections_opened=connections.opened,
    )


def worst_of(loops: Sequence[OpenLoop]) -> OpenLoop:
    """Open loops run side by side (one per server) as one: their requests added up, and
    each latency figure the worst of theirs (without their raw latencies, a pooled
    percentile cannot be had; the worst is an upper bound of it)."""
    return OpenLoop(
        rate=sum(o.rate for o in loops),
        seconds=max(o.seconds for o in loops),
        sent=sum(o.sent for o in loops),
        ok=sum(o.ok for o in loops),
        failed=sum(o.failed for o in loops),
        p50_ms=max(o.p50_ms for o in loops),
        p99_ms=max(o.p99_ms for o in loops),
        max_ms=max(o.max_ms for o in loops),
        connections_opened=sum(o.connections_opened for o in loops),
    )
