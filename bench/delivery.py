"""Delivery benchmark: from ICE's callback arriving to the subscriber holding the webhook.

``python -m bench.delivery`` runs ``icehook serve`` as a real process on a fresh database,
with the ICE simulator and a webhook receiver in this process (the receiver checks every
signature with the ``standardwebhooks`` library, as a subscriber would):

1. ``--rate`` x ``--seconds`` jobs are submitted through ``POST /v1/jobs`` while the
   simulator drops every callback, and run to their end at ICE; icehook does not know yet
   (its sweeper waits an hour);
2. one subscription wants ``job.succeeded`` and ``job.failed``;
3. this process posts each job's real completion callback (built from the simulator's
   truth) at ``--rate`` a second, open loop: each at its due time whatever happens;
4. for each job, the latency is from the callback's due time to the moment the receiver
   has the verified ``job.succeeded``/``job.failed`` webhook: storing the callback, the
   worker's ``GetMediaProducingJob``, the transition with its outbox and delivery rows,
   and the signed POST.

Also reported, from the database's timestamps: how long a callback waited from being
stored to its transition being applied (the worker's next pass and its ICE call), and from
then to its webhook being sent (the commit and the deliverer's next claim).

Baseline, measured in the same run at the same rate: the same open loop posting straight
to the receiver (one HTTP hop, what a webhook costs at the least). Targets (issue 5):
p50 under 100 ms and p99 under 500 ms at 200 callbacks a second. Results:
``bench/results/delivery.json`` and ``delivery.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.simulator import SimulatorSettings, create_simulator_app
from bench import common, load
from tests.helpers.servers import free_port, serve

P50_TARGET_MS = 100.0
P99_TARGET_MS = 500.0
FIRST_EVENT = 1_800_000_000
FINAL_EVENTS = ["job.succeeded", "job.failed"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.delivery",
        description="Latency from an ICE callback to the webhook it causes, at a fixed rate.",
    )
    parser.add_argument("--server-url", default=common.DEFAULT_SERVER_URL)
    parser.add_argument(
        "--database-url", help="use this (migrated or empty) database as is, and keep it"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="callbacks a second")
    parser.add_argument("--seconds", type=float, default=20.0, help="of the open loop")
    parser.add_argument("--submit-qps", type=float, default=1000.0, help="ICE's is 30")
    parser.add_argument(
        "--workers", type=int, default=0, help="icehook worker processes beside serve"
    )
    parser.add_argument("--no-record", action="store_true", help="print the results only")
    args = parser.parse_args(argv)
    if not (1 <= args.rate <= 2000 and 1 <= args.seconds <= 300 and 0 <= args.workers <= 8):
        parser.error("--rate 1-2000, --seconds 1-300, --workers 0-8")
    if args.rate * args.seconds > 50_000:
        parser.error("--rate x --seconds (jobs submitted) at most 50000")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    common.run_main(run(parse_args(argv)))


class Receiver:
    """Verifies each webhook and notes, on the event loop's clock, when each job's arrived."""

    def __init__(self) -> None:
        self.verifier: Webhook | None = None
        self.arrived: dict[str, float] = {}  # ICE JobId -> loop time
        self.refused = 0

    async def webhook(self, request: Request) -> Response:
        body = (await request.body()).decode()
        assert self.verifier is not None
        try:
            event = self.verifier.verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.refused += 1
            return PlainTextResponse("bad signature", status_code=400)
        self.arrived.setdefault(event["data"]["ice_job_id"], asyncio.get_running_loop().time())
        return PlainTextResponse("ok")

    async def hop(self, request: Request) -> Response:
        await request.body()
        return PlainTextResponse("ok")


async def run(args: argparse.Namespace) -> None:
    data = await measure(args)
    markdown = summary(data)
    print(markdown)
    if not args.no_record:
        common.write_results("delivery", data, markdown)


async def measure(
    args: argparse.Namespace,
    *,
    serves: int = 1,
    apart: bool = False,
    during: Callable[[], AbstractAsyncContextManager[None]] | None = None,
) -> dict[str, Any]:
    """One run at ``args.rate``: ``serves`` ``serve`` processes share the callbacks (each
    its share of the rate), without their own workers if ``apart``, beside
    ``args.workers`` worker processes; ``during`` wraps the callbacks' open loop and the
    wait for their webhooks (``bench.scale`` measures CPU in it)."""
    count = round(args.rate * args.seconds)
    if count % serves:
        raise ValueError(f"{count} jobs do not divide among {serves} serve processes")
    receiver = Receiver()
    receiving = Starlette(
        routes=[
            Route("/webhook", receiver.webhook, methods=["POST"]),
            Route("/callbacks/ice/{token}", receiver.hop, methods=["POST"]),
        ]
    )
    sim_settings = SimulatorSettings(
        access_keys={common.KEY_ID: common.SECRET},
        submit_qps=args.submit_qps,
        job_seconds=1.0,
        failure_rate=0.1,
        callback_drop_rate=1.0,
    )
    async with (
        common.database(args.server_url, args.database_url) as database_url,
        common.processes("icehook-bench-delivery") as procs,
        serve(create_simulator_app(sim_settings)) as sim_url,
        serve(receiving) as receiver_url,
        httpx.AsyncClient(base_url=sim_url, timeout=30, trust_env=False) as sim,
    ):
        facts = await common.machine_facts(database_url, common.command_line("bench.delivery"))
        ports = [free_port() for _ in range(serves)]
        api_url = f"http://127.0.0.1:{ports[0]}"
        env = common.icehook_env(
            database_url,
            sim_url,
            ICEHOOK_PUBLIC_URL=api_url,
            ICEHOOK_ICE_SUBMIT_QPS=f"{args.submit_qps:g}",
            ICEHOOK_SWEEP_AFTER_SECONDS="3600",
            ICEHOOK_ALLOWED_WEBHOOK_NETS="127.0.0.0/8",
        )
        for n, port in enumerate(ports):
            argv = common.icehook("serve", "--port", str(port), *(["--no-worker"] * apart))
            await procs.start(f"serve-{n + 1}", argv, env)
            await common.wait_http(f"http://127.0.0.1:{port}/readyz")
        for n in range(args.workers):
            await procs.start(f"worker-{n + 1}", common.icehook("worker"), env)
        async with httpx.AsyncClient(
            base_url=api_url,
            headers={"authorization": f"Bearer {common.API_KEY}"},
            timeout=30,
            trust_env=False,
        ) as api:
            created = await api.post(
                "/v1/subscriptions",
                json={
                    "url": f"{receiver_url}/webhook",
                    "event_types": ["job.succeeded", "job.failed"],
                },
            )
            created.raise_for_status()
            receiver.verifier = Webhook(created.json()["secret"])
        common.say(f"submitting {count:,} jobs")
        jobs = await common.submit_jobs(api_url, count)
        await asyncio.sleep(sim_settings.job_seconds + 1)
        slots = asyncio.Semaphore(16)

        async def truth(ice_job_id: str) -> dict[str, Any]:
            async with slots:
                return await common.truth(sim, ice_job_id)

        truths = await asyncio.gather(*(truth(job["ice_job_id"]) for job in jobs))
        assert all(t["final_status"] in ("Success", "Failed") for t in truths)
        targets = [load.target(common.callback_token(t), t) for t in truths]

        common.say(f"baseline: {count:,} posts straight to the receiver at {args.rate:g}/s")
        host, _, hop_port = receiver_url.removeprefix("http://").partition(":")
        hop = await load.open_loop(
            host,
            int(hop_port),
            targets,
            rate=args.rate,
            seconds=args.seconds,
            first_event=FIRST_EVENT,
        )
        common.say(
            f"icehook: {count:,} callbacks at {args.rate:g}/s over {serves} serve process(es)"
        )
        # Serve n gets every serves-th callback, at its share of the rate.
        shares = [targets[n::serves] for n in range(serves)]
        dues: list[list[float]] = [[] for _ in range(serves)]
        async with during() if during else contextlib.nullcontext():
            loops = await asyncio.gather(
                *(
                    load.open_loop(
                        "127.0.0.1",
                        port,
                        shares[n],
                        rate=args.rate / serves,
                        seconds=args.seconds,
                        first_event=FIRST_EVENT,
                        due_times=dues[n],
                    )
                    for n, port in enumerate(ports)
                )
            )
            await common.wait_until(
                lambda: _all_arrived(receiver, count), seconds=120, what="every webhook arrived"
            )
        due = [0.0] * count
        for n in range(serves):
            due[n::serves] = dues[n][: len(due[n::serves])]
        latencies = [receiver.arrived[t["job_id"]] - due[n] for n, t in enumerate(truths)]
        waits = await pieces(database_url)
    acks = loops[0] if serves == 1 else load.worst_of(loops)
    return results(args, facts, count, hop, acks, latencies, receiver) | {"pieces": waits}


# Where the time went, from the database's own timestamps (each the start of the
# transaction that wrote it): the callback stored; the job's final event applied, after the
# worker's pass asked ICE; the webhook's attempt recorded, less the request itself.
PIECES = """
SELECT extract(epoch FROM e.created_at - c.received_at) * 1000 AS stored_to_applied,
       extract(epoch FROM a.attempted_at - e.created_at) * 1000 - a.latency_ms
           AS applied_to_sent
FROM callbacks c
JOIN job_events e ON e.job_id = c.job_id AND e.to_status IN ('succeeded', 'failed')
JOIN deliveries d ON d.job_id = c.job_id
JOIN delivery_attempts a ON a.delivery_id = d.id
WHERE c.outcome = 'applied'
"""


async def pieces(database_url: str) -> dict[str, dict[str, float]]:
    rows = await common.query(database_url, PIECES)
    found = {}
    for name in ("stored_to_applied", "applied_to_sent"):
        values = [float(r[name]) for r in rows]
        found[name] = {
            "p50_ms": round(common.percentile(values, 50), 1),
            "p99_ms": round(common.percentile(values, 99), 1),
        }
    return found


async def _all_arrived(receiver: Receiver, count: int) -> bool:
    return len(receiver.arrived) >= count


def results(
    args: argparse.Namespace,
    facts: dict[str, Any],
    count: int,
    hop: load.OpenLoop,
    acks: load.OpenLoop,
    latencies: Sequence[float],
    receiver: Receiver,
) -> dict[str, Any]:
    p50 = common.percentile(latencies, 50) * 1000
    p99 = common.percentile(latencies, 99) * 1000
    return {
        "facts": facts,
        "settings": {
            "rate": args.rate,
            "seconds": args.seconds,
            "jobs": count,
            "worker_processes": args.workers,
        },
        "baseline_one_hop": {
            "p50_ms": round(hop.p50_ms, 1),
            "p99_ms": round(hop.p99_ms, 1),
            "failed": hop.failed,
        },
        "callback_ack": {
            "p50_ms": round(acks.p50_ms, 1),
            "p99_ms": round(acks.p99_ms, 1),
            "failed": acks.failed,
        },
        "callback_to_webhook": {
            "p50_ms": round(p50, 1),
            "p99_ms": round(p99, 1),
            "max_ms": round(max(latencies) * 1000, 1),
            "delivered": len(latencies),
            "bad_signatures": receiver.refused,
            "p50_vs_baseline": round(p50 / hop.p50_ms, 1),
            "p99_vs_baseline": round(p99 / hop.p99_ms, 1),
        },
        "targets": {
            "p50_ms": {"target": P50_TARGET_MS, "met": p50 < P50_TARGET_MS},
            "p99_ms": {"target": P99_TARGET_MS, "met": p99 < P99_TARGET_MS},
        },
    }


def _latencies(o: load.OpenLoop) -> dict[str, Any]:
    return {"p50_ms": round(o.p50_ms, 1), "p99_ms": round(o.p99_ms, 1), "failed": o.failed}


def summary(data: dict[str, Any]) -> str:
    met = {True: "met", False: "NOT met"}
    hop, ack, hook = data["baseline_one_hop"], data["callback_ack"], data["callback_to_webhook"]
    rate = data["settings"]["rate"]
    rows = [
        ["baseline: one POST straight to the receiver", hop["p50_ms"], hop["p99_ms"], "", ""],
        ["icehook: callback answered 200 (stored)", ack["p50_ms"], ack["p99_ms"], "", ""],
        [
            "icehook: callback to verified webhook",
            hook["p50_ms"],
            hook["p99_ms"],
            hook["p50_vs_baseline"],
            hook["p99_vs_baseline"],
        ],
    ]
    labels = {
        "stored_to_applied": "of which: stored to applied (next worker pass, ICE asked)",
        "applied_to_sent": "of which: applied to sent (commit, next delivery claim)",
    }
    for name, label in labels.items():
        piece = data["pieces"][name]
        rows.append([label, piece["p50_ms"], piece["p99_ms"], "", ""])
    targets = data["targets"]
    return f"""# Delivery benchmark

Latency from an ICE completion callback to the subscriber holding the verified webhook it
causes, at {rate:g} callbacks a second (open loop, from each callback's due time), for
{data["settings"]["jobs"]:,} jobs; `icehook serve` as a process, the simulator and the
receiver in the benchmark's process. See `bench/README.md`.

{common.facts_markdown(data["facts"])}

{common.table(["what", "p50 ms", "p99 ms", "p50 / baseline", "p99 / baseline"], rows)}

- webhooks delivered and verified: {hook["delivered"]:,} of {data["settings"]["jobs"]:,}
  (bad signatures: {hook["bad_signatures"]}); slowest {hook["max_ms"]} ms
- callbacks not answered 200: {ack["failed"]}

## Targets

- p50 under {P50_TARGET_MS:g} ms: {hook["p50_ms"]} ms, **{met[targets["p50_ms"]["met"]]}**
- p99 under {P99_TARGET_MS:g} ms: {hook["p99_ms"]} ms, **{met[targets["p99_ms"]["met"]]}**
"""


if __name__ == "__main__":
    main()
