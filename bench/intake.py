"""Intake benchmark: ICE callbacks answered 200 (durably) per second, and icehook's ack latency.

``python -m bench.intake`` starts, each as its own process on 127.0.0.1 against the same
PostgreSQL (a fresh database, dropped at the end):

- ``bare``: a Starlette route that answers 200 (``bench.baselines.bare_app`` on uvicorn);
- ``naive_orm``: Starlette + SQLAlchemy ORM, one commit per callback (``naive_app``);
- ``icehook``: ``icehook serve`` (API and background worker in one process, as shipped),
  configured through its environment, with an ``icehook simulator`` process as ICE.

It submits ``--tokens`` jobs through ``POST /v1/jobs`` and waits until ICE's callbacks have
finished them, reads each job's callback token off the simulator (``GET /_sim/jobs/{JobId}``),
and posts the three servers the same stream of ``ProduceMediaComplete`` callbacks to those
tokens, every body distinct (``bench.load``). To icehook they are late copies of real
callbacks for jobs that are already final: each is stored durably, and judged a duplicate
as it is stored (the first per job by the worker, without calling ICE).

1. Closed loop (``wrk``): ``--rounds`` runs of ``--seconds`` per server and per number of
   connections (``--connections``), interleaved; a server's maximum is the best of the
   medians over its rounds.
2. Open loop at half of icehook's maximum: p50/p99 latency from each request's due time,
   for icehook and, at the same rate, for the baselines.

Before every run icehook's worker has emptied its backlog of pending callbacks, so no run
pays for another's work. Results: ``bench/results/intake.json`` and ``intake.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bench import common, load
from bench.common import Processes
from bench.load import ClosedLoop, OpenLoop, Target
from tests.helpers.servers import free_port

SERVERS = ("bare", "naive_orm", "icehook")
BASELINE_APPS = {"bare": "bench.baselines:bare_app", "naive_orm": "bench.baselines:naive_app"}
THROUGHPUT_TARGET = 2.0  # icehook's maximum at least this many times the naive ORM's
P99_TARGET_MS = 100.0
FIRST_EVENT = 1_700_000_000  # EventTime of the first callback: 2023-11-14T22:13:20Z
EVENTS_PER_RUN = 10_000_000  # EventTime seconds reserved for one load run
DRAIN_SECONDS = 300.0
JOB_SECONDS = 0.5  # how long the simulator takes per job
EXIT_NO_WRK = 2


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.intake",
        description="Callbacks per second with a durable 200, and icehook's ack latency.",
    )
    parser.add_argument(
        "--server-url",
        default=common.DEFAULT_SERVER_URL,
        help="PostgreSQL server on which a fresh database is made (default: %(default)s)",
    )
    parser.add_argument(
        "--database-url", help="use this existing database instead of a fresh one (kept)"
    )
    parser.add_argument(
        "--connections",
        default="16,64,256",
        help="closed-loop connection counts to try, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="one closed-loop run")
    parser.add_argument("--warmup", type=float, default=2.0, help="before each closed-loop run")
    parser.add_argument("--rounds", type=int, default=3, help="closed-loop runs per setting")
    parser.add_argument("--open-seconds", type=float, default=30.0, help="one open-loop run")
    parser.add_argument("--tokens", type=int, default=32, help="jobs whose tokens are posted to")
    parser.add_argument(
        "--no-record", action="store_true", help="print the results only (no bench/results)"
    )
    args = parser.parse_args(argv)
    try:
        args.connections = [int(part) for part in args.connections.split(",")]
    except ValueError:
        parser.error("--connections must be whole numbers separated by commas")
    if not all(1 <= c <= 1000 for c in args.connections):
        parser.error("--connections must each be from 1 to 1000")
    for name in ("rounds", "tokens"):
        if not 1 <= getattr(args, name) <= 1000:
            parser.error(f"--{name} must be from 1 to 1000")
    for name in ("seconds", "warmup", "open_seconds"):
        if not 0 <= getattr(args, name) <= 600:
            parser.error(f"--{name.replace('_', '-')} must be from 0 to 600 seconds")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if load.wrk_path() is None:
        print(
            "bench.intake needs wrk, the HTTP load generator: apt-get install -y wrk "
            "(Debian/Ubuntu) or brew install wrk (macOS)",
            file=sys.stderr,
        )
        sys.exit(EXIT_NO_WRK)
    common.run_main(run(args))


async def run(args: argparse.Namespace) -> None:
    events: Iterator[int] = itertools.count(FIRST_EVENT, EVENTS_PER_RUN)
    async with (
        common.database(args.server_url, args.database_url) as database_url,
        common.processes("icehook-bench-intake") as procs,
    ):
        facts = await common.machine_facts(database_url, common.command_line("bench.intake"))
        servers = await start_servers(procs, database_url)
        targets = await make_targets(servers, database_url, args.tokens)
        targets_file = procs.log_dir / "targets.tsv"
        load.write_targets(targets, targets_file)
        rows_before = await count_rows(database_url)

        async def quiet() -> float:
            return await common.wait_until(
                lambda: no_pending(database_url),
                seconds=DRAIN_SECONDS,
                what="icehook's worker has judged every stored callback",
            )

        async def closed_loop(name: str, connections: int, seconds: float) -> ClosedLoop:
            await quiet()
            return await load.closed_loop(
                servers[name].url,
                targets_file,
                connections=connections,
                seconds=seconds,
                first_event=next(events),
            )

        closed: dict[str, dict[int, list[ClosedLoop]]] = {
            name: {c: [] for c in args.connections} for name in SERVERS
        }
        ok_200 = dict.fromkeys(SERVERS, 0)
        drains: list[float] = []
        for round_ in range(1, args.rounds + 1):
            for connections in args.connections:
                for name in SERVERS:
                    if args.warmup > 0:
                        warm = await closed_loop(name, connections, args.warmup)
                        ok_200[name] += warm.answered - warm.not_200
                    result = await closed_loop(name, connections, args.seconds)
                    ok_200[name] += result.answered - result.not_200
                    closed[name][connections].append(result)
                    common.say(
                        f"round {round_}, {connections} connections, {name}: "
                        f"{result.ok_per_second:,.0f} 200s/s ({result.not_200} not 200, "
                        f"{result.socket_errors} socket errors)"
                    )
                    if name == "icehook":
                        drains.append(round(await quiet(), 1))
        best = {name: best_of(closed[name]) for name in SERVERS}
        rate = max(1, round(best["icehook"][1] / 2))
        opened: dict[str, OpenLoop] = {}
        for name in ("icehook", "bare", "naive_orm"):
            await quiet()
            server = servers[name]
            o = await load.open_loop(
                server.host,
                server.port,
                targets,
                rate=rate,
                seconds=args.open_seconds,
                first_event=next(events),
            )
            opened[name] = o
            ok_200[name] += o.ok
            common.say(
                f"open loop, {name} at {rate}/s: p50 {o.p50_ms:.1f} ms, p99 {o.p99_ms:.1f} ms, "
                f"{o.failed} failed"
            )
        await quiet()
        rows_after = await count_rows(database_url)
    stored = {name: rows_after[name] - rows_before[name] for name in rows_after}
    data = results(args, facts, closed, best, opened, rate, ok_200, stored, drains)
    markdown = summary(data)
    print(markdown)
    if not args.no_record:
        common.write_results("intake", data, markdown)


def best_of(runs: Mapping[int, Sequence[ClosedLoop]]) -> tuple[int, float]:
    """(connections, 200s/s) of the setting with the best median over its rounds."""
    medians = {c: statistics.median(r.ok_per_second for r in rs) for c, rs in runs.items()}
    connections = max(medians, key=lambda c: medians[c])
    return connections, medians[connections]


async def start_servers(procs: Processes, database_url: str) -> dict[str, Server]:
    """The simulator, icehook and both baselines, each its own process, all ready."""
    servers = {name: Server(name, "127.0.0.1", free_port()) for name in ("simulator", *SERVERS)}
    sim, ice = servers["simulator"], servers["icehook"]
    await procs.start(
        "simulator",
        common.icehook("simulator", "--port", str(sim.port)),
        common.clean_env(
            ALIBABA_CLOUD_ACCESS_KEY_ID=common.KEY_ID,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=common.SECRET,
            ICEHOOK_SIM_JOB_SECONDS=str(JOB_SECONDS),
        ),
    )
    await common.wait_http(f"{sim.url}/_sim/settings")
    await procs.start(
        "icehook",
        common.icehook("serve", "--port", str(ice.port)),
        common.icehook_env(database_url, sim.url),
    )
    await common.wait_http(f"{ice.url}/readyz")
    for name, app in BASELINE_APPS.items():
        port = str(servers[name].port)
        await procs.start(
            name,
            [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", port],
            common.clean_env(BASELINE_DATABASE_URL=database_url),
        )
        await common.wait_http(f"{servers[name].url}/healthz")
    return servers


async def make_targets(
    servers: Mapping[str, Server], database_url: str, count: int
) -> list[Target]:
    """Submit ``count`` jobs, wait until their callbacks finished them, build their callbacks."""
    jobs = await common.submit_jobs(servers["icehook"].url, count)

    async def all_final() -> bool:
        return await common.final_count(database_url) == count

    await common.wait_until(all_final, seconds=120, what=f"{count} jobs final in icehook")
    async with httpx.AsyncClient(
        base_url=servers["simulator"].url, timeout=10, trust_env=False
    ) as sim:
        truths = [await common.truth(sim, job["ice_job_id"]) for job in jobs]
    return [load.target(common.callback_token(truth), truth) for truth in truths]


async def no_pending(database_url: str) -> bool:
    rows = await common.query(
        database_url, "SELECT count(*) AS n FROM callbacks WHERE outcome = 'pending'"
    )
    return bool(rows[0]["n"] == 0)


async def count_rows(database_url: str) -> dict[str, int]:
    rows = await common.query(
        database_url,
        "SELECT (SELECT count(*) FROM callbacks) AS icehook, "
        "(SELECT count(*) FROM bench_naive_callbacks) AS naive_orm",
    )
    return {"icehook": rows[0]["icehook"], "naive_orm": rows[0]["naive_orm"]}


def results(
    args: argparse.Namespace,
    facts: Mapping[str, Any],
    closed: Mapping[str, Mapping[int, Sequence[ClosedLoop]]],
    best: Mapping[str, tuple[int, float]],
    opened: Mapping[str, OpenLoop],
    rate: int,
    ok_200: Mapping[str, int],
    stored: Mapping[str, int],
    drains: Sequence[float],
) -> dict[str, Any]:
    ice = opened["icehook"]
    top = {name: best[name][1] for name in SERVERS}
    vs_naive = top["icehook"] / top["naive_orm"]
    latency_ratios = {
        f"{q}_icehook_vs_{name}": _ratio(getattr(ice, f"{q}_ms"), getattr(o, f"{q}_ms"))
        for name, o in opened.items()
        if name != "icehook"
        for q in ("p50", "p99")
    }
    return {
        "facts": facts,
        "settings": {
            "connections": args.connections,
            "seconds": args.seconds,
            "warmup_seconds": args.warmup,
            "rounds": args.rounds,
            "open_loop_seconds": args.open_seconds,
            "tokens": args.tokens,
            "simulator_job_seconds": JOB_SECONDS,
            "load_generator": "wrk -t1 with bench/callbacks.lua (closed loop); "
            "bench.load.open_loop in the benchmark's own process (open loop)",
        },
        "closed_loop": {
            name: {
                "max_ok_per_second": round(top[name], 1),
                "at_connections": best[name][0],
                "runs": {
                    str(c): [
                        dataclasses.asdict(r) | {"ok_per_second": round(r.ok_per_second, 1)}
                        for r in rs
                    ]
                    for c, rs in closed[name].items()
                },
            }
            for name in SERVERS
        },
        "icehook_backlog_drain_seconds": list(drains),
        "open_loop": {"rate": rate} | {n: dataclasses.asdict(o) for n, o in opened.items()},
        "ratios": {
            "throughput_icehook_vs_bare": round(top["icehook"] / top["bare"], 3),
            "throughput_icehook_vs_naive_orm": round(vs_naive, 3),
            "throughput_naive_orm_vs_bare": round(top["naive_orm"] / top["bare"], 3),
            **latency_ratios,
        },
        "targets": {
            "throughput_icehook_vs_naive_orm_at_least_2": {
                "value": round(vs_naive, 2),
                "met": vs_naive >= THROUGHPUT_TARGET,
            },
            "icehook_p99_ms_under_100_at_half_max": {
                "value": round(ice.p99_ms, 1),
                "met": ice.p99_ms < P99_TARGET_MS and ice.failed == 0,
            },
        },
        "durability": {
            name: {"answered_200": ok_200[name], "rows_stored": stored[name]}
            for name in ("naive_orm", "icehook")
        },
    }


def _ratio(a: float, b: float) -> float | None:
    finite = a != float("inf") and b not in (0.0, float("inf"))
    return round(a / b, 3) if finite else None


def summary(data: Mapping[str, Any]) -> str:
    """The Markdown summary (also printed)."""
    closed, opened, settings = data["closed_loop"], data["open_loop"], data["settings"]
    top = {name: closed[name]["max_ok_per_second"] for name in SERVERS}
    medians = {
        name: {
            c: statistics.median(r["ok_per_second"] for r in runs)
            for c, runs in closed[name]["runs"].items()
        }
        for name in SERVERS
    }
    throughput = common.table(
        [
            "server",
            "max 200s/s",
            *(f"median at {c} conn." for c in settings["connections"]),
            "vs bare",
            "vs naive ORM",
        ],
        [
            [
                name,
                f"**{top[name]:,.0f}**",
                *(f"{medians[name][str(c)]:,.0f}" for c in settings["connections"]),
                f"{top[name] / top['bare']:.2f}",
                f"{top[name] / top['naive_orm']:.2f}",
            ]
            for name in SERVERS
        ],
    )
    ratios = data["ratios"]
    latency = common.table(
        [
            "server",
            "p50 ms",
            "p99 ms",
            "max ms",
            "failed",
            "icehook p50 / p50",
            "icehook p99 / p99",
        ],
        [
            [
                name,
                f"{opened[name]['p50_ms']:.1f}",
                f"{opened[name]['p99_ms']:.1f}",
                f"{opened[name]['max_ms']:.1f}",
                f"{opened[name]['failed']} of {opened[name]['sent']}",
                _shown(ratios.get(f"p50_icehook_vs_{name}", 1.0)),
                _shown(ratios.get(f"p99_icehook_vs_{name}", 1.0)),
            ]
            for name in ("icehook", "bare", "naive_orm")
        ],
    )
    throughput_target = data["targets"]["throughput_icehook_vs_naive_orm_at_least_2"]
    p99_target = data["targets"]["icehook_p99_ms_under_100_at_half_max"]
    met = {True: "met", False: "NOT met"}
    durability = "\n".join(
        f"- {name}: {d['answered_200']:,} answered 200, {d['rows_stored']:,} rows stored"
        for name, d in data["durability"].items()
    )
    drains = ", ".join(f"{s:g}" for s in data["icehook_backlog_drain_seconds"])
    return f"""# Intake benchmark

ICE callbacks (`ProduceMediaComplete`, every body distinct) answered 200 after a durable
commit, per second, and the ack latency. Three servers, each one uvicorn process on
127.0.0.1 against the same PostgreSQL: `bare` (Starlette, answers 200, stores nothing),
`naive_orm` (Starlette + SQLAlchemy ORM, `session.add` + `commit` per callback) and
`icehook serve` (API and worker in one process, as shipped), posting to the callback
tokens of {settings["tokens"]} real jobs. See `bench/README.md`.

{common.facts_markdown(data["facts"])}

## Maximum throughput (closed loop)

wrk, 1 thread; {settings["rounds"]} runs of {settings["seconds"]:g} s per server and number of
connections, interleaved, each after {settings["warmup_seconds"]:g} s of warm-up and after
icehook's worker had emptied its backlog. A server's maximum is its best median.

{throughput}

## Ack latency at half of icehook's maximum (open loop)

{opened["rate"]} callbacks/s for {settings["open_loop_seconds"]:g} s to each server, latency
from each request's due time (no coordinated omission); a failed request counts as
infinitely slow.

{latency}

## Targets

- icehook's maximum at least 2x the naive ORM's: {throughput_target["value"]}x,
  **{met[throughput_target["met"]]}**
- icehook's p99 ack under 100 ms at half its maximum: {p99_target["value"]} ms,
  **{met[p99_target["met"]]}**

## Durability check

Every 200 is a stored row (a few more rows than 200s: requests in flight when wrk stopped).

{durability}

icehook's worker (in the same process) took {drains} s after each of its closed-loop runs
to judge the callbacks it had stored.
"""


def _shown(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}"


if __name__ == "__main__":
    main()
