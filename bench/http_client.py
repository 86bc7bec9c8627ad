"""HTTP client benchmark: CPU per request of httpx's own transport against the client that
icehook calls ICE and subscribers with (``app.outbound``: httpx over aiohttp's connections).

``python -m bench.http_client`` starts a small Starlette server as its own process, then,
in this process, sends ``--requests`` POSTs with each client, ``--concurrency`` at a time
(a worker pass asks ICE about up to 32 jobs at once), and measures this process's CPU time
per request (``time.process_time``: the server's CPU is not counted). Baseline: httpx's
default transport in the same run. Results: ``bench/results/http-client.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app import outbound
from bench import common
from tests.helpers.servers import free_port


async def answer(request: Request) -> Response:
    await request.body()
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/", answer, methods=["POST"])])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.http_client", description=__doc__)
    parser.add_argument("--server-url", default=common.DEFAULT_SERVER_URL, help="for the facts")
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-record", action="store_true", help="print the results only")
    args = parser.parse_args(argv)
    if not (100 <= args.requests <= 100_000 and 1 <= args.concurrency <= 256):
        parser.error("--requests 100-100000, --concurrency 1-256")
    return args


async def cpu_per_request(client: httpx.AsyncClient, url: str, requests: int, wave: int) -> float:
    """Milliseconds of this process's CPU per request, after a warm-up."""

    async def send_wave() -> None:
        answers = await asyncio.gather(*(client.post(url, content=b"x" * 300) for _ in range(wave)))
        assert all(a.status_code == 200 for a in answers)

    for _ in range(20):
        await send_wave()
    waves = max(1, requests // wave)
    started = time.process_time()
    for _ in range(waves):
        await send_wave()
    return (time.process_time() - started) / (waves * wave) * 1000


async def run(args: argparse.Namespace) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = ["-m", "uvicorn", "bench.http_client:app", "--port", str(port)]
    server = await asyncio.create_subprocess_exec(
        sys.executable, *command, "--log-level", "warning", "--no-access-log"
    )
    try:
        await common.wait_until(lambda: _answers(url), seconds=30, what=f"{url} answers")
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        async with httpx.AsyncClient(limits=limits, trust_env=False) as plain:
            baseline = await cpu_per_request(plain, url, args.requests, args.concurrency)
        async with outbound.client(max_connections=64, trust_env=False) as client:
            measured = await cpu_per_request(client, url, args.requests, args.concurrency)
    finally:
        server.terminate()
        await server.wait()
    facts = await common.machine_facts(args.server_url, common.command_line("bench.http_client"))
    data: dict[str, Any] = {
        "facts": facts,
        "settings": {"requests": args.requests, "concurrency": args.concurrency},
        "cpu_ms_per_request": {
            "httpx_default_transport": round(baseline, 3),
            "outbound_client": round(measured, 3),
            "outbound_vs_baseline": round(measured / baseline, 2),
        },
    }
    cpu = data["cpu_ms_per_request"]
    rows = [
        ["baseline: httpx's default transport", cpu["httpx_default_transport"], 1.0],
        ["icehook: app.outbound", cpu["outbound_client"], cpu["outbound_vs_baseline"]],
    ]
    markdown = f"""# HTTP client benchmark

CPU of the sending process per POST to a local server, {args.requests:,} requests,
{args.concurrency} at a time. See `bench/http_client.py`.

{common.facts_markdown(facts)}

{common.table(["client", "CPU ms per request", "vs baseline"], rows)}
"""
    print(markdown)
    if not args.no_record:
        common.write_results("http-client", data, markdown)


async def _answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            return (await client.post(url, content=b"x")).status_code == 200
    except httpx.HTTPError:
        return False


def main(argv: Sequence[str] | None = None) -> None:
    common.run_main(run(parse_args(argv)))


if __name__ == "__main__":
    main()
