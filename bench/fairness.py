"""Fairness benchmark: a fast subscriber's webhooks beside a saturated slow one.

``python -m bench.fairness`` runs ``icehook serve`` as a real process on a fresh database
(``ICEHOOK_DELIVERY_CONCURRENCY=4``, as in issue 19's example), the ICE simulator (jobs end
after ``--job-seconds``, callbacks sent) and two receivers in this process, which verify
every webhook with the ``standardwebhooks`` library:

1. alone (the baseline, measured in the same run): one fast subscription wants ``job.*``;
   jobs are submitted at ``--rate`` a second, open loop, for ``--seconds``;
2. beside a neighbour: a second subscription, also ``job.*``, whose receiver answers each
   webhook after ``--slow-seconds`` (6 s): it gets the same events, far more than it can
   take, so it is saturated for the whole phase; the same jobs at the same rate.

For every webhook the fast receiver gets, the latency is from its event being recorded
(``outbox.created_at``, the recording transaction's start) to its arrival; webhooks that
have not arrived when a phase's jobs have all ended (a starved subscriber) are counted.
Target (issue 19): the fast subscriber's p99 beside the neighbour within 1.5x of its p99
alone, and none of its webhooks missing. Results:
``bench/results/fairness.json`` and ``fairness.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import httpx
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.simulator import SimulatorSettings, create_simulator_app
from bench import common
from tests.helpers.servers import free_port, serve

RATIO_TARGET = 1.5
CONCURRENCY = 4
WARM_UP_SECONDS = 5.0  # of jobs first, unmeasured: connections, caches, plans


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fairness",
        description="A fast subscriber's webhook latency alone and beside a saturated one.",
    )
    parser.add_argument("--server-url", default=common.DEFAULT_SERVER_URL)
    parser.add_argument("--database-url", help="use this (migrated or empty) database as is")
    parser.add_argument("--rate", type=float, default=10.0, help="jobs submitted a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="of each phase")
    parser.add_argument("--job-seconds", type=float, default=1.0, help="at the simulator")
    parser.add_argument("--slow-seconds", type=float, default=6.0, help="the slow one's answer")
    parser.add_argument("--no-record", action="store_true", help="print the results only")
    args = parser.parse_args(argv)
    if not (1 <= args.rate <= 100 and 5 <= args.seconds <= 300):
        parser.error("--rate 1-100, --seconds 5-300")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    common.run_main(run(parse_args(argv)))


class Receiver:
    """Verifies each webhook, answers after ``delay`` seconds, and notes when each event
    (``webhook-id``) first arrived, on the wall clock (the database's is compared with it)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.verifier: Webhook | None = None
        self.arrived: dict[str, float] = {}
        self.refused = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.done = asyncio.Event()  # set at the end: answer what is held at once

    async def webhook(self, request: Request) -> Response:
        body = await request.body()
        arrived = time.time()
        assert self.verifier is not None
        try:
            self.verifier.verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.refused += 1
            return PlainTextResponse("bad signature", status_code=400)
        self.arrived.setdefault(request.headers["webhook-id"], arrived)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), self.delay)
        finally:
            self.in_flight -= 1
        return PlainTextResponse("ok")


async def run(args: argparse.Namespace) -> None:
    data = await measure(args)
    markdown = summary(data)
    print(markdown)
    if not args.no_record:
        common.write_results("fairness", data, markdown)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    fast, slow = Receiver(), Receiver(args.slow_seconds)
    receiving = Starlette(
        routes=[
            Route("/fast", fast.webhook, methods=["POST"]),
            Route("/slow", slow.webhook, methods=["POST"]),
        ]
    )
    sim_settings = SimulatorSettings(
        access_keys={common.KEY_ID: common.SECRET},
        submit_qps=1000.0,
        job_seconds=args.job_seconds,
    )
    async with (
        common.database(args.server_url, args.database_url) as database_url,
        common.processes("icehook-bench-fairness") as procs,
        serve(create_simulator_app(sim_settings)) as sim_url,
        serve(receiving) as receiver_url,
    ):
        facts = await common.machine_facts(database_url, common.command_line("bench.fairness"))
        port = free_port()
        api_url = f"http://127.0.0.1:{port}"
        env = common.icehook_env(
            database_url,
            sim_url,
            ICEHOOK_PUBLIC_URL=api_url,
            ICEHOOK_ICE_SUBMIT_QPS="1000",
            ICEHOOK_ALLOWED_WEBHOOK_NETS="127.0.0.0/8",
            ICEHOOK_DELIVERY_CONCURRENCY=str(CONCURRENCY),
        )
        await procs.start("serve", common.icehook("serve", "--port", str(port)), env)
        await common.wait_http(f"{api_url}/readyz")
        headers = {"authorization": f"Bearer {common.API_KEY}"}
        async with httpx.AsyncClient(
            base_url=api_url, headers=headers, timeout=60, trust_env=False
        ) as api:
            fast.verifier = await subscribe(api, f"{receiver_url}/fast")
            common.say("warming up (not measured)")
            await phase(api, args, "warm-up", seconds=WARM_UP_SECONDS)
            common.say(f"alone: {args.rate:g} jobs a second for {args.seconds:g} s")
            alone = await phase(api, args, "alone")
            slow.verifier = await subscribe(api, f"{receiver_url}/slow")
            common.say(f"beside a neighbour answering after {args.slow_seconds:g} s")
            beside = await phase(api, args, "beside")
        slow_count = len(slow.arrived)  # by the end of the phase, before it is let go
        latencies = await fast_latencies(database_url, fast, {"alone": alone, "beside": beside})
        slow.done.set()
    return results(args, facts, latencies, fast, slow, slow_count)


async def subscribe(api: httpx.AsyncClient, url: str) -> Webhook:
    created = await api.post("/v1/subscriptions", json={"url": url, "event_types": ["job.*"]})
    created.raise_for_status()
    return Webhook(created.json()["secret"])


async def phase(
    api: httpx.AsyncClient,
    args: argparse.Namespace,
    name: str,
    seconds: float | None = None,
) -> list[str]:
    """Submit jobs at ``args.rate`` (open loop) for ``seconds`` (default ``args.seconds``)
    and wait until they have ended; returns their ids."""
    count = round(args.rate * (seconds or args.seconds))
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(n: int) -> str:
        await asyncio.sleep(max(0.0, start + n / args.rate - loop.time()))
        body = {"ProjectId": f"fairness-{name}-{n}", "OutputMediaConfig": common.OUTPUT}
        answer = await api.post("/v1/jobs", json=body)
        if answer.status_code not in (201, 202):
            raise RuntimeError(f"POST /v1/jobs answered {answer.status_code}: {answer.text}")
        return str(answer.json()["id"])

    job_ids = list(await asyncio.gather(*(one(n) for n in range(count))))

    async def all_final() -> bool:
        statuses = [await api.get(f"/v1/jobs/{job_id}") for job_id in job_ids[-5:]]
        return all(s.json()["status"] in ("succeeded", "failed") for s in statuses)

    await common.wait_until(all_final, seconds=120, what=f"the {name} jobs ended")
    await asyncio.sleep(1.0)
    return job_ids


# Each event of the given jobs: its webhook-id and when it was recorded.
EVENTS = """
SELECT event_id, extract(epoch FROM created_at) AS recorded
FROM outbox WHERE job_id = ANY($1::uuid[])
"""


async def fast_latencies(
    database_url: str, fast: Receiver, phases: dict[str, list[str]]
) -> dict[str, tuple[list[float], int]]:
    """Each phase's latencies of the fast subscriber's webhooks, and how many of its events'
    webhooks had not arrived by the end of the phase (none, unless it was starved)."""
    found = {}
    for name, job_ids in phases.items():
        rows = await common.query(database_url, EVENTS, job_ids)
        arrived = [r for r in rows if r["event_id"] in fast.arrived]
        latencies = [fast.arrived[r["event_id"]] - float(r["recorded"]) for r in arrived]
        found[name] = (latencies, len(rows) - len(arrived))
    return found


def results(
    args: argparse.Namespace,
    facts: dict[str, Any],
    latencies: dict[str, tuple[list[float], int]],
    fast: Receiver,
    slow: Receiver,
    slow_count: int,
) -> dict[str, Any]:
    def shape(measured: tuple[list[float], int]) -> dict[str, Any]:
        values, missing = measured
        if not values:
            raise RuntimeError("no webhook of the fast subscriber arrived in a phase")
        return {
            "webhooks": len(values),
            "not_arrived": missing,
            "p50_ms": round(common.percentile(values, 50) * 1000, 1),
            "p99_ms": round(common.percentile(values, 99) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
        }

    alone, beside = shape(latencies["alone"]), shape(latencies["beside"])
    ratio = round(beside["p99_ms"] / alone["p99_ms"], 2)
    return {
        "facts": facts,
        "settings": {
            "rate": args.rate,
            "seconds": args.seconds,
            "job_seconds": args.job_seconds,
            "slow_seconds": args.slow_seconds,
            "delivery_concurrency": CONCURRENCY,
        },
        "fast_alone": alone,
        "fast_beside_slow": beside,
        "p99_beside_vs_alone": ratio,
        "slow": {
            "webhooks_received": slow_count,
            "most_in_flight": slow.most_in_flight,
        },
        "bad_signatures": fast.refused + slow.refused,
        "target": {
            "p99_ratio": RATIO_TARGET,
            "met": ratio <= RATIO_TARGET and not alone["not_arrived"] + beside["not_arrived"],
        },
    }


def summary(data: dict[str, Any]) -> str:
    alone, beside, settings = data["fast_alone"], data["fast_beside_slow"], data["settings"]
    rows = [
        [
            "fast subscriber alone (baseline)",
            alone["webhooks"],
            alone["not_arrived"],
            alone["p50_ms"],
            alone["p99_ms"],
        ],
        [
            f"fast subscriber beside one answering after {settings['slow_seconds']:g} s",
            beside["webhooks"],
            beside["not_arrived"],
            beside["p50_ms"],
            beside["p99_ms"],
        ],
    ]
    met = "met" if data["target"]["met"] else "NOT met"
    return "\n".join(
        [
            "# Fairness benchmark",
            "",
            "A fast subscriber's webhook latency (event recorded to webhook arrived), alone and "
            "beside a saturated subscriber that answers each webhook after "
            f"{settings['slow_seconds']:g} s, at {settings['rate']:g} jobs a second for "
            f"{settings['seconds']:g} s each, `ICEHOOK_DELIVERY_CONCURRENCY="
            f"{settings['delivery_concurrency']}`; `icehook serve` as a process. See "
            "`bench/README.md`.",
            "",
            common.facts_markdown(data["facts"]),
            "",
            common.table(["what", "webhooks", "not arrived", "p50 ms", "p99 ms"], rows),
            "",
            f"- p99 beside / p99 alone: **{data['p99_beside_vs_alone']}** "
            f"(target at most {RATIO_TARGET}: {met})",
            f"- the slow subscriber received {data['slow']['webhooks_received']} webhooks in "
            "the phase, "
            f"at most {data['slow']['most_in_flight']} at once (its share of the worker's "
            f"{settings['delivery_concurrency']} slots)",
            f"- bad signatures: {data['bad_signatures']}",
        ]
    )


if __name__ == "__main__":
    main()
