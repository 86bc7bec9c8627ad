"""Intake cost: CPU instructions per callback, counted by valgrind's callgrind.

Throughput on a shared machine swings by a third between runs of one commit
(``bench/results/restructure.md``), which hides a regression of that size. Instructions are
counted, not timed: for the same code, load and inputs the count repeats within a few per
cent, whatever else the machine does. ``python -m bench.intake_cost`` starts, each under
``valgrind --tool=callgrind`` with counting off while it starts:

- ``bare`` and ``naive_orm`` (``bench.baselines``, as in ``bench.intake``);
- ``icehook``: ``icehook serve`` (API and worker), with an ``icehook simulator`` as ICE.

It makes ``--tokens`` final jobs in icehook, warms each server up with ``--warmup``
callbacks, then counts the instructions each server runs from its first to its last
answer to ``--callbacks`` more (``--concurrency`` at a time; for icehook also until its
worker has judged every pending one) and divides by the callbacks. The same stream of
distinct ``ProduceMediaComplete`` bodies goes to each (``bench.load``). Results:
``bench/results/intake-cost.json`` and ``.md``; the figure to watch is icehook's count
relative to the naive ORM's, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import common, intake
from bench.common import Processes
from bench.intake import BASELINE_APPS, FIRST_EVENT, Server
from bench.load import Target
from tests.helpers.servers import free_port

SERVERS = ("bare", "naive_orm", "icehook")
START_SECONDS = 300.0  # a start under valgrind is several times slower than without
EXIT_NO_VALGRIND = 2


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.intake_cost",
        description="CPU instructions per callback (callgrind), icehook against two baselines.",
    )
    parser.add_argument(
        "--server-url",
        default=common.DEFAULT_SERVER_URL,
        help="PostgreSQL server on which a fresh database is made (default: %(default)s)",
    )
    parser.add_argument("--callbacks", type=int, default=2000, help="counted, per server")
    parser.add_argument("--warmup", type=int, default=300, help="not counted, per server")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--tokens", type=int, default=16, help="jobs whose tokens are posted to")
    parser.add_argument(
        "--no-record", action="store_true", help="print the results only (no bench/results)"
    )
    args = parser.parse_args(argv)
    for name, low, high in (
        ("callbacks", 100, 100_000),
        ("warmup", 0, 100_000),
        ("concurrency", 1, 256),
        ("tokens", 1, 1000),
    ):
        if not low <= getattr(args, name) <= high:
            parser.error(f"--{name} must be from {low} to {high}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print(
            "bench.intake_cost needs valgrind: apt-get install -y valgrind (Debian/Ubuntu)",
            file=sys.stderr,
        )
        sys.exit(EXIT_NO_VALGRIND)
    common.run_main(run(args))


def under_callgrind(out: Path, argv: Sequence[str]) -> list[str]:
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",  # counting starts with ``callgrind_control -i on``
        f"--callgrind-out-file={out}",
        *argv,
    ]


def callgrind(pid: int, *command: str) -> None:
    subprocess.run(  # noqa: S603 (fixed program, no shell)
        ["callgrind_control", *command, str(pid)],  # noqa: S607
        check=True,
        capture_output=True,
    )


def instructions(out: Path) -> int:
    """The instructions counted in ``out`` and the parts callgrind dumped beside it."""
    total = 0
    for part in out.parent.glob(f"{out.name}*"):
        for line in part.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
    return total


async def run(args: argparse.Namespace) -> None:
    events: Iterator[int] = itertools.count(FIRST_EVENT)
    async with (
        common.database(args.server_url, None) as database_url,
        common.processes("icehook-bench-intake-cost") as procs,
    ):
        facts = await common.machine_facts(database_url, common.command_line("bench.intake_cost"))
        servers, pids = await start_servers(procs, database_url)
        targets = await intake.make_targets(servers, database_url, args.tokens)
        counts: dict[str, int] = {}
        async with httpx.AsyncClient(timeout=120, trust_env=False) as client:
            for name in SERVERS:
                server = servers[name]
                await post(client, server, targets, events, args.warmup, args.concurrency)
                await drained(database_url)
                callgrind(pids[name], "-i", "on")
                await post(client, server, targets, events, args.callbacks, args.concurrency)
                await drained(database_url)
                callgrind(pids[name], "-i", "off")
                callgrind(pids[name], "-d")
                counts[name] = instructions(procs.log_dir / f"{name}.callgrind")
                common.say(
                    f"{name}: {counts[name] / args.callbacks:,.0f} instructions per callback"
                )
    data = results(args, facts, counts)
    markdown = summary(data)
    print(markdown)
    if not args.no_record:
        common.write_results("intake-cost", data, markdown)


async def start_servers(
    procs: Processes, database_url: str
) -> tuple[dict[str, Server], dict[str, int]]:
    """The simulator, and each server under callgrind; all ready."""
    servers = {name: Server(name, "127.0.0.1", free_port()) for name in ("simulator", *SERVERS)}
    sim, ice = servers["simulator"], servers["icehook"]
    await procs.start(
        "simulator",
        common.icehook("simulator", "--port", str(sim.port)),
        common.clean_env(
            ALIBABA_CLOUD_ACCESS_KEY_ID=common.KEY_ID,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=common.SECRET,
            ICEHOOK_SIM_JOB_SECONDS=str(intake.JOB_SECONDS),
        ),
    )
    await common.wait_http(f"{sim.url}/_sim/settings")
    argvs: dict[str, list[str]] = {"icehook": common.icehook("serve", "--port", str(ice.port))}
    envs: dict[str, dict[str, str]] = {"icehook": common.icehook_env(database_url, sim.url)}
    for name, app in BASELINE_APPS.items():
        port = str(servers[name].port)
        argvs[name] = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", port]
        envs[name] = common.clean_env(BASELINE_DATABASE_URL=database_url)
    pids: dict[str, int] = {}
    for name in SERVERS:
        out = procs.log_dir / f"{name}.callgrind"
        proc = await procs.start(name, under_callgrind(out, argvs[name]), envs[name])
        pids[name] = proc.pid
        health = "/readyz" if name == "icehook" else "/healthz"
        await common.wait_http(f"{servers[name].url}{health}", seconds=START_SECONDS)
    return servers, pids


async def post(
    client: httpx.AsyncClient,
    server: Server,
    targets: Sequence[Target],
    events: Iterator[int],
    count: int,
    concurrency: int,
) -> None:
    """``count`` callbacks, ``concurrency`` at a time; every one must be answered 200."""
    numbers = iter(range(count))

    async def sender() -> None:
        for n in numbers:
            target = targets[n % len(targets)]
            answer = await client.post(
                f"{server.url}{target.path}", content=target.body(next(events))
            )
            if answer.status_code != 200:
                raise RuntimeError(f"{server.name} answered {answer.status_code}: {answer.text}")

    await asyncio.gather(*(sender() for _ in range(concurrency)))


async def drained(database_url: str) -> None:
    await common.wait_until(
        lambda: intake.no_pending(database_url),
        seconds=intake.DRAIN_SECONDS,
        what="icehook's worker has judged every stored callback",
    )


def results(
    args: argparse.Namespace, facts: Mapping[str, Any], counts: Mapping[str, int]
) -> dict[str, Any]:
    per_callback = {name: round(counts[name] / args.callbacks) for name in SERVERS}
    return {
        "benchmark": "intake_cost",
        **facts,
        "callbacks": args.callbacks,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "instructions_per_callback": per_callback,
        "icehook_vs_naive_orm": round(per_callback["icehook"] / per_callback["naive_orm"], 3),
        "icehook_vs_bare": round(per_callback["icehook"] / per_callback["bare"], 3),
    }


def summary(data: Mapping[str, Any]) -> str:
    rows = [[name, f"{n:,}"] for name, n in data["instructions_per_callback"].items()]
    return "\n\n".join(
        [
            "# Intake cost: instructions per callback (callgrind)",
            common.facts_markdown(data),
            f"{data['callbacks']:,} callbacks per server after {data['warmup']:,} uncounted, "
            f"{data['concurrency']} in flight; icehook's count includes its worker judging "
            "them. Counts repeat within a few per cent; compare the ratios.",
            common.table(["server", "instructions per callback"], rows),
            f"icehook / naive ORM: **{data['icehook_vs_naive_orm']}**; "
            f"icehook / bare: {data['icehook_vs_bare']}",
        ]
    )


if __name__ == "__main__":
    main()
