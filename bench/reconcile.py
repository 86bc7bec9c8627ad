"""Reconciliation benchmark: how many ICE calls icehook makes per job, counted by ICE.

``python -m bench.reconcile`` runs two scenarios, each on a fresh database, with icehook as
real processes (``icehook serve``, ``icehook worker``) and the ICE simulator as ICE. The
simulator counts every RPC call it accepted (``GET /_sim/stats``): the honest count of what
ICE received. Submits are not reconciliation: only ``Get*`` and ``List*`` calls count.

1. Happy path: ``--jobs`` jobs submitted through ``POST /v1/jobs``, every completion callback
   delivered three times (``callback_copies=3``, spread by up to 1 s), ``icehook serve``
   confirming them. Reported: Get*/List* calls per job (target: at most 1.05).
2. Backlog sweep: ``--sweep-jobs`` jobs submitted through ``icehook serve`` while the
   simulator drops every callback (``callback_drop_rate=1``); ``serve`` is stopped once all
   are submitted, and when every job has finished at ICE and is past its sweep time
   (``ICEHOOK_SWEEP_AFTER_SECONDS``), ``icehook worker`` is started and sweeps them all.
   Reported: Get*+List* calls per stale job (target: at most 0.05).

In both, every job must end in the simulator's true final status; 10 % of jobs fail.

The simulator runs in this process, with its submit limit raised from ICE's 30 a second to
``--submit-qps`` (and icehook's ``ICEHOOK_ICE_SUBMIT_QPS`` set to match) so that thousands
of submissions take seconds, not minutes; nothing else about it differs from
``icehook simulator``. Results: ``bench/results/reconcile.json`` and ``reconcile.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from app.simulator import SimulatorSettings, create_simulator_app
from bench import common
from bench.common import Processes
from tests.helpers.servers import free_port, serve

HAPPY_TARGET = 1.05  # Get*/List* calls per job with every callback delivered three times
SWEEP_TARGET = 0.05  # Get*+List* calls per stale job in a backlog sweep
FAILURE_RATE = 0.1
FINAL_WAIT_SECONDS = 600.0
ICE_STATUS = {"Success": "succeeded", "Failed": "failed"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reconcile",
        description="ICE calls per reconciled job (three callback copies) and per swept job.",
    )
    parser.add_argument(
        "--server-url",
        default=common.DEFAULT_SERVER_URL,
        help="PostgreSQL server on which fresh databases are made (default: %(default)s)",
    )
    parser.add_argument("--jobs", type=int, default=300, help="happy-path jobs")
    parser.add_argument("--sweep-jobs", type=int, default=5000, help="jobs swept at once")
    parser.add_argument(
        "--sweep-after",
        type=float,
        default=120.0,
        help="ICEHOOK_SWEEP_AFTER_SECONDS of the sweep scenario, longer than submitting "
        "all its jobs takes (default: %(default)s)",
    )
    parser.add_argument(
        "--submit-qps",
        type=float,
        default=1000.0,
        help="submit limit of the simulator and of icehook (ICE's is 30; default: %(default)s)",
    )
    parser.add_argument("--no-record", action="store_true", help="print the results only")
    args = parser.parse_args(argv)
    for name in ("jobs", "sweep_jobs"):
        if not 1 <= getattr(args, name) <= 20_000:
            parser.error(f"--{name.replace('_', '-')} must be from 1 to 20000")
    if not 1 <= args.sweep_after <= 3600:
        parser.error("--sweep-after must be from 1 to 3600 seconds")
    if not 1 <= args.submit_qps <= 10_000:
        parser.error("--submit-qps must be from 1 to 10000")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    common.run_main(run(parse_args(argv)))


@dataclass
class Stack:
    """A fresh database, an in-process simulator and the environment for icehook."""

    database_url: str
    sim: httpx.AsyncClient
    port: int  # where icehook serve listens (its callback URLs point there)
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def stack(
    args: argparse.Namespace, icehook: Mapping[str, str], **behaviour: Any
) -> AsyncIterator[Stack]:
    settings = SimulatorSettings(
        access_keys={common.KEY_ID: common.SECRET}, submit_qps=args.submit_qps, **behaviour
    )
    async with (
        common.database(args.server_url, None) as database_url,
        serve(create_simulator_app(settings)) as sim_url,
        httpx.AsyncClient(base_url=sim_url, timeout=30, trust_env=False) as sim,
    ):
        env = common.icehook_env(
            database_url,
            sim_url,
            ICEHOOK_ICE_SUBMIT_QPS=f"{args.submit_qps:g}",
            **icehook,
        )
        yield Stack(database_url, sim, free_port(), env)


async def run(args: argparse.Namespace) -> None:
    async with common.processes("icehook-bench-reconcile") as procs:
        async with common.database(args.server_url, None) as url:
            facts = await common.machine_facts(url, common.command_line("bench.reconcile"))
        happy = await happy_path(args, procs)
        common.say(f"happy path: {happy['per_job']} Get*/List* calls per job")
        swept = await backlog_sweep(args, procs)
        common.say(f"sweep: {swept['per_job']} Get*+List* calls per stale job")
    data = {
        "facts": facts,
        "settings": {
            "submit_qps": args.submit_qps,
            "failure_rate": FAILURE_RATE,
            "icehook_sweep_qps": "default (10)",
        },
        "happy_path": happy,
        "sweep": swept,
    }
    markdown = summary(data)
    print(markdown)
    if not args.no_record:
        common.write_results("reconcile", data, markdown)


async def happy_path(args: argparse.Namespace, procs: Processes) -> dict[str, Any]:
    sweep_after = 60.0  # icehook's default: a job that calls back in seconds is never swept
    behaviour = {
        "job_seconds": 2.0,
        "callback_copies": 3,
        "callback_delay_seconds": 1.0,
        "failure_rate": FAILURE_RATE,
    }
    icehook = {"ICEHOOK_SWEEP_AFTER_SECONDS": f"{sweep_after:g}"}
    async with stack(args, icehook, **behaviour) as s:
        server = await procs.start("serve-happy", serve_argv(s), s.env)
        await common.wait_http(f"{s.url}/readyz")
        before = await common.rpc_calls(s.sim)
        started = time.monotonic()
        jobs = await common.submit_jobs(s.url, args.jobs, concurrency=32)
        await wait_final(s.database_url, len(jobs))
        settled = time.monotonic() - started

        async def delivered() -> bool:
            log = (await s.sim.get("/_sim/callbacks")).json()["callbacks"]
            return len(log) >= 3 * len(jobs) and await no_pending(s.database_url)

        await common.wait_until(delivered, seconds=60, what="every callback copy delivered")
        calls = diff(await common.rpc_calls(s.sim), before)
        log = (await s.sim.get("/_sim/callbacks")).json()["callbacks"]
        answered_200 = sum(1 for attempt in log if attempt["response_status"] == 200)
        await procs.stop(server)
        check = await final_status_check(s, jobs)
        outcomes = await counts(s.database_url, "callbacks", "outcome")
        sources = await counts(s.database_url, "job_events", "source")
    reconciling = sum(n for action, n in calls.items() if action.startswith(("Get", "List")))
    per_job = round(reconciling / len(jobs), 3)
    return {
        "jobs": len(jobs),
        "simulator": behaviour,
        "icehook": icehook,
        "callback_deliveries": 3 * len(jobs),
        "callback_attempts_answered_200": answered_200,
        "rpc_calls": calls,
        "get_and_list_calls": reconciling,
        "per_job": per_job,
        "target": {"at_most": HAPPY_TARGET, "met": per_job <= HAPPY_TARGET},
        "seconds_from_first_submit_to_all_final": round(settled, 1),
        "callbacks_stored_by_outcome": outcomes,
        "job_events_by_source": sources,
        "final_status_check": check,
    }


async def backlog_sweep(args: argparse.Namespace, procs: Processes) -> dict[str, Any]:
    behaviour = {"job_seconds": 1.0, "callback_drop_rate": 1.0, "failure_rate": FAILURE_RATE}
    icehook = {"ICEHOOK_SWEEP_AFTER_SECONDS": f"{args.sweep_after:g}"}
    async with stack(args, icehook, **behaviour) as s:
        server = await procs.start("serve-sweep", serve_argv(s), s.env)
        await common.wait_http(f"{s.url}/readyz")
        started = time.monotonic()
        jobs = await common.submit_jobs(s.url, args.sweep_jobs, concurrency=32)
        submit_seconds = time.monotonic() - started
        await procs.stop(server)
        common.say(f"sweep: {len(jobs)} jobs submitted in {submit_seconds:.0f} s; serve stopped")
        during_submission = await common.rpc_calls(s.sim)
        before_sweep = await common.status_counts(s.database_url)
        rows = await common.query(
            s.database_url,
            "SELECT coalesce(extract(epoch FROM max(check_at) - now()), 0) AS wait FROM jobs "
            "WHERE status IN ('submitting', 'submitted', 'queuing', 'processing')",
        )
        wait = max(0.0, float(rows[0]["wait"])) + 1.0
        common.say(f"sweep: waiting {wait:.0f} s until every job is due")
        await asyncio.sleep(wait)
        swept_from = time.monotonic()
        worker = await procs.start("worker-sweep", common.icehook("worker"), s.env)
        await wait_final(s.database_url, len(jobs))
        sweep_seconds = time.monotonic() - swept_from
        await procs.stop(worker)
        calls = diff(await common.rpc_calls(s.sim), during_submission)
        check = await final_status_check(s, jobs)
        sources = await counts(s.database_url, "job_events", "source")
    stale = sum(n for status, n in before_sweep.items() if status not in common.FINAL)
    if stale < len(jobs):
        common.say(
            f"warning: serve settled {len(jobs) - stale} jobs before the sweep: raise --sweep-after"
        )
    sweeping = sum(n for action, n in calls.items() if action.startswith(("Get", "List")))
    per_job = round(sweeping / stale, 4) if stale else None
    return {
        "jobs": len(jobs),
        "simulator": behaviour,
        "icehook": icehook,
        "submit_seconds": round(submit_seconds, 1),
        "rpc_calls_while_submitting": during_submission,
        "statuses_when_the_worker_started": before_sweep,
        "stale_jobs": stale,
        "rpc_calls_by_the_sweep": calls,
        "get_and_list_calls": sweeping,
        "per_job": per_job,
        "target": {"at_most": SWEEP_TARGET, "met": per_job is not None and per_job <= SWEEP_TARGET},
        "sweep_seconds": round(sweep_seconds, 1),
        "job_events_by_source": sources,
        "final_status_check": check,
    }


def serve_argv(s: Stack) -> list[str]:
    return common.icehook("serve", "--port", str(s.port))


def diff(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    changed = {action: n - before.get(action, 0) for action, n in after.items()}
    return {action: n for action, n in sorted(changed.items()) if n}


async def wait_final(database_url: str, count: int) -> None:
    async def all_final() -> bool:
        return await common.final_count(database_url) >= count

    await common.wait_until(
        all_final, seconds=FINAL_WAIT_SECONDS, what=f"{count} jobs final in icehook", every=1.0
    )


async def no_pending(database_url: str) -> bool:
    rows = await common.query(
        database_url, "SELECT count(*) AS n FROM callbacks WHERE outcome = 'pending'"
    )
    return bool(rows[0]["n"] == 0)


async def counts(database_url: str, table: str, column: str) -> dict[str, int]:
    rows = await common.query(
        database_url,
        f"SELECT {column} AS key, count(*) AS n FROM {table} GROUP BY {column} ORDER BY 1",  # noqa: S608 (fixed names)
    )
    return {row["key"]: row["n"] for row in rows}


async def final_status_check(s: Stack, jobs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every job's status in icehook against the simulator's truth (its final status)."""
    rows = await common.query(s.database_url, "SELECT ice_job_id, status FROM jobs")
    ours = {row["ice_job_id"]: row["status"] for row in rows}
    slots = asyncio.Semaphore(16)

    async def truth(ice_job_id: str) -> str:
        async with slots:
            return str((await common.truth(s.sim, ice_job_id))["final_status"])

    ids = [job["ice_job_id"] for job in jobs]
    finals = await asyncio.gather(*(truth(i) for i in ids))
    wrong = [
        {"ice_job_id": i, "icehook": ours.get(i), "simulator": final}
        for i, final in zip(ids, finals, strict=True)
        if ours.get(i) != ICE_STATUS[final]
    ]
    return {
        "jobs": len(ids),
        "matching": len(ids) - len(wrong),
        "failed_at_ice": sum(1 for final in finals if final == "Failed"),
        "mismatches": wrong[:20],
    }


def summary(data: Mapping[str, Any]) -> str:
    happy, swept, settings = data["happy_path"], data["sweep"], data["settings"]
    met = {True: "met", False: "NOT met"}

    def calls(table: Mapping[str, int]) -> str:
        return ", ".join(f"{action} {n:,}" for action, n in table.items()) or "none"

    results = common.table(
        ["scenario", "jobs", "Get*/List* calls", "per job", "target", "", "final status = ICE's"],
        [
            [
                "happy path, 3 copies of every callback",
                happy["jobs"],
                happy["get_and_list_calls"],
                happy["per_job"],
                f"<= {HAPPY_TARGET}",
                f"**{met[happy['target']['met']]}**",
                f"{happy['final_status_check']['matching']} of {happy['jobs']}",
            ],
            [
                "backlog sweep, every callback dropped",
                swept["stale_jobs"],
                swept["get_and_list_calls"],
                swept["per_job"],
                f"<= {SWEEP_TARGET}",
                f"**{met[swept['target']['met']]}**",
                f"{swept['final_status_check']['matching']} of {swept['jobs']}",
            ],
        ],
    )
    return f"""# Reconciliation benchmark

ICE calls that icehook makes per job, counted by the ICE simulator (every RPC call it
accepted, by action); submits are not counted as reconciliation. icehook runs as real
processes (`icehook serve`, `icehook worker`) on a fresh database per scenario.
See `bench/README.md`.

{common.facts_markdown(data["facts"])}
- the simulator's submit limit is raised from ICE's 30/s to {settings["submit_qps"]:g}/s,
  and icehook's `ICEHOOK_ICE_SUBMIT_QPS` set to match; {settings["failure_rate"]:.0%} of jobs fail

{results}

## Happy path

{happy["jobs"]} jobs through `POST /v1/jobs` to `icehook serve`; the simulator ran each for
{happy["simulator"]["job_seconds"]:g} s and delivered every callback 3 times, each copy after a
random delay of up to {happy["simulator"]["callback_delay_seconds"]:g} s
(`ICEHOOK_SWEEP_AFTER_SECONDS={happy["icehook"]["ICEHOOK_SWEEP_AFTER_SECONDS"]}`).

- ICE calls: {calls(happy["rpc_calls"])}
- all final in icehook {happy["seconds_from_first_submit_to_all_final"]:g} s after the first submit
- {happy["callback_attempts_answered_200"]:,} callback deliveries answered 200; rows stored
  (identical copies are one row), by outcome: {happy["callbacks_stored_by_outcome"]}
- job events, by source: {happy["job_events_by_source"]}
- final status equal to the simulator's: {happy["final_status_check"]["matching"]} of
  {happy["jobs"]} ({happy["final_status_check"]["failed_at_ice"]} failed at ICE)

## Backlog sweep

{swept["jobs"]} jobs submitted to `icehook serve` in {swept["submit_seconds"]:g} s while the
simulator dropped every callback (each job ran {swept["simulator"]["job_seconds"]:g} s);
`serve` was then stopped. Once every job was past its sweep time
(`ICEHOOK_SWEEP_AFTER_SECONDS={swept["icehook"]["ICEHOOK_SWEEP_AFTER_SECONDS"]}`), `icehook worker`
started and swept them all, in {swept["sweep_seconds"]:g} s.

- ICE calls while submitting: {calls(swept["rpc_calls_while_submitting"])}
- statuses when the worker started: {swept["statuses_when_the_worker_started"]}
- ICE calls by the sweep: {calls(swept["rpc_calls_by_the_sweep"])}
- job events, by source: {swept["job_events_by_source"]}
- final status equal to the simulator's: {swept["final_status_check"]["matching"]} of
  {swept["jobs"]} ({swept["final_status_check"]["failed_at_ice"]} failed at ICE)
"""


if __name__ == "__main__":
    main()
