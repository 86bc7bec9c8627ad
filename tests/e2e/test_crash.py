"""While callbacks flow, ``icehook serve`` is killed with SIGKILL several times and restarted.

The simulator runs as a process of its own and survives the kills; ``serve`` comes back on
the same port each time, so the NotifyAddress of every job stays valid. Jobs are submitted
all along (a request in flight when ``serve`` dies gets no answer; its job may be left
``submitting``, for the sweeper to settle by resubmitting with the same ClientToken). Then:

- every callback the simulator saw answered 200 is in the ``callbacks`` table (I1 of
  docs/invariants.md);
- every job ends in the simulator's true final status, with one event per transition and
  one outbox message per event;
- no ICE job was created twice for one icehook job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import random
import signal
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from app.core.answers import MediaProducingJob
from app.ice.client import IceClient
from app.settings import Settings
from app.store.engine import create_engine
from app.store.tables import callbacks as callbacks_table
from app.store.tables import jobs
from tests.helpers.history import check_history, rows, wait_until_settled
from tests.helpers.processes import (
    icehook_env,
    kill_all,
    start_icehook_logged,
    stop,
    troubles,
    wait_ready,
)
from tests.helpers.receiver import receiver
from tests.helpers.servers import free_port, http_client

KEY_ID, SECRET, API_KEY = "crash-ak", "crash-secret", "crash-api-key-0123"
OUTPUT = {"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out.mp4"}
JOB_STATUS = {"Success": "succeeded", "Failed": "failed"}
SUBMITTERS = 2


@dataclasses.dataclass
class Submissions:
    answered: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    unanswered: Counter[str] = dataclasses.field(default_factory=Counter)  # by error type


async def test_serve_killed_with_sigkill_again_and_again_loses_nothing(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    print(f"random seed {seed}")  # shown with a failure
    rng = random.Random(seed)
    sim_port, api_port = free_port(), free_port()
    sim_url, api_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{api_port}"
    sim_env = {
        **clean_env,
        "ICEHOOK_SIM_ACCESS_KEYS": f"{KEY_ID}:{SECRET}",
        "ICEHOOK_SIM_JOB_SECONDS": "1.5",
        "ICEHOOK_SIM_FAILURE_RATE": "0.3",
        "ICEHOOK_SIM_CALLBACK_DUPLICATE_RATE": "1",
        "ICEHOOK_SIM_CALLBACK_DELAY_SECONDS": "1",
        # ICE calls take a while, so kills also land during submissions and confirmations.
        "ICEHOOK_SIM_API_LATENCY_MS": "100",
    }
    env = icehook_env(
        clean_env,
        data_dir=tmp_path / "data",
        database_url=database_url,
        ice_url=sim_url,
        public_url=api_url,
        access_key=(KEY_ID, SECRET),
        api_key=API_KEY,
        ICEHOOK_SWEEP_AFTER_SECONDS="2",
        # A killed serve's leases expire after timeout x attempts + 30 s: keep that short.
        ICEHOOK_ICE_TIMEOUT_SECONDS="2",
        ICEHOOK_ICE_MAX_ATTEMPTS="2",
        # A submit killed before ICE got it is sent again only after this grace (default
        # 120 s, as long as the settling bound below): keep it short too.
        ICEHOOK_ICE_LISTING_GRACE_SECONDS="10",
    )
    sim_log, serve_log = tmp_path / "simulator.log", tmp_path / "serve.log"
    procs: list[asyncio.subprocess.Process] = []

    async def start_serve() -> asyncio.subprocess.Process:
        return await start_ready(procs, "serve", api_port, env, serve_log)

    try:
        async with asyncio.timeout(240):  # a hang guard only
            simulator = await start_ready(procs, "simulator", sim_port, sim_env, sim_log)
            serve = await start_serve()

            async with (
                http_client(
                    base_url=api_url, headers={"authorization": f"Bearer {API_KEY}"}, timeout=10
                ) as api,
                http_client(base_url=sim_url, timeout=60) as sim,
            ):
                done = asyncio.Event()
                submissions = Submissions()
                submitters = [
                    asyncio.create_task(submit_until(done, api, submissions, rng))
                    for _ in range(SUBMITTERS)
                ]
                kills = rng.randint(3, 5)
                for _ in range(kills):
                    await asyncio.sleep(rng.uniform(1.0, 4.0))
                    await kill_in_a_stall(serve, database_url, rng.uniform(0.3, 1.5))
                    serve = await start_serve()
                await asyncio.sleep(1.0)  # a few more submissions to the last serve
                done.set()
                await asyncio.gather(*submitters)
                print(
                    f"{kills} kills; "
                    f"{len(submissions.answered)} answered submissions, "
                    f"unanswered: {dict(submissions.unanswered)}"
                )

                stopped = time.monotonic()
                await wait_until_settled(database_url, sim)
                print(f"settled {time.monotonic() - stopped:.0f} s after the submissions stopped")
                await check_outcome(database_url, sim, sim_url, submissions)

            for log in (serve_log, sim_log):
                assert not troubles(log), f"see {log}"
            assert await stop(serve) == 0, f"see {serve_log}"
            assert await stop(simulator) == 0, f"see {sim_log}"
    finally:
        await kill_all(procs)


async def submit_until(
    done: asyncio.Event, api: httpx.AsyncClient, into: Submissions, rng: random.Random
) -> None:
    """Submit jobs one after another until ``done``; a dead serve's silence is tolerated."""
    n = 0
    while not done.is_set():
        n += 1
        body = {"ProjectId": f"p-{n}", "OutputMediaConfig": OUTPUT, "UserData": {"n": n}}
        try:
            answer = await api.post("/v1/jobs", json=body)
        except httpx.TransportError as exc:  # serve is down, or died mid-request
            into.unanswered[type(exc).__name__] += 1
            await asyncio.sleep(0.2)
            continue
        # 202: ICE's answer was not known in time; the job stays submitting for the sweeper.
        assert answer.status_code in (201, 202), answer.text
        into.answered.append(answer.json())
        await asyncio.sleep(rng.uniform(0.05, 0.3))


async def kill_in_a_stall(
    serve: asyncio.subprocess.Process, database_url: str, seconds: float
) -> None:
    """SIGKILL ``serve`` after ``seconds`` in which the database stalled writes to callbacks.

    Callbacks keep arriving during the stall; serve cannot commit them, so it must not
    answer them either (docs/invariants.md, I1). Killed in the stall, it never commits them: a
    callback answered 200 in the stall is a callback lost. The stall is this test's own
    transaction holding a SHARE lock (reads go on; inserts and updates wait).
    """
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("LOCK TABLE callbacks IN SHARE MODE"))
            await asyncio.sleep(seconds)
            serve.send_signal(signal.SIGKILL)
            assert await serve.wait() == -signal.SIGKILL
    finally:
        await engine.dispose()


async def ice_jobs(sim_url: str) -> list[MediaProducingJob]:
    """Every job the simulated ICE account holds, through ListMediaProducingJobs."""
    settings = Settings(ice_endpoint=sim_url, access_key_id=KEY_ID, access_key_secret=SECRET)
    found: list[MediaProducingJob] = []
    async with http_client() as http:
        ice = IceClient(http, settings)
        token: str | None = None
        while True:
            page = await ice.list_media_producing_jobs({}, token)
            found += page.items
            token = page.next_token
            if not token:
                return found


async def check_outcome(
    database_url: str, sim: httpx.AsyncClient, sim_url: str, submissions: Submissions
) -> None:
    all_jobs = await rows(database_url, sa.select(jobs))
    by_id = {str(j["id"]): j for j in all_jobs}
    assert all(s["id"] in by_id for s in submissions.answered)
    assert all(j["kind"] == "job" and j["batch_id"] is None for j in all_jobs)

    # Invariant 1: every callback answered 200 was committed (same token, JobId and Status).
    stored = await rows(database_url, sa.select(callbacks_table))
    kept = {(c["token_hash"], c["ice_job_id"], c["ice_status"]) for c in stored}
    attempts = (await sim.get("/_sim/callbacks")).json()["callbacks"]
    answered = [c for c in attempts if c["response_status"] == 200]
    assert answered
    lost = [
        c
        for c in answered
        if (
            hashlib.sha256(c["url"].rsplit("/", 1)[1].encode()).digest(),
            c["job_id"],
            c["status_sent"],
        )
        not in kept
    ]
    assert not lost, f"{len(lost)} callbacks answered 200 but not stored: {lost[:3]}"
    failed = Counter(str(c["error"]).split(":")[0] for c in attempts if c["response_status"] != 200)
    print(f"callback attempts: {len(answered)} answered 200; failed: {dict(failed)}")
    cut_off = sum(n for error, n in failed.items() if error in ("RemoteProtocolError", "ReadError"))
    assert cut_off, "no kill hit a callback in flight: the test proved nothing about I1"
    outcomes = Counter(c["outcome"] for c in stored)
    assert set(outcomes) <= {"applied", "duplicate", "stale"}, outcomes

    # Every job, including those whose submission got no answer, ends at ICE's final status.
    truths: dict[uuid.UUID, dict[str, Any]] = {}
    for job in all_jobs:
        assert job["ice_job_id"], f"job {job['id']} never reached ICE: {dict(job)}"
        truth = truths[job["id"]] = (await sim.get(f"/_sim/jobs/{job['ice_job_id']}")).json()
        assert truth["status"] in JOB_STATUS, truth
        assert (job["status"], job["ice_status"]) == (JOB_STATUS[truth["status"]], truth["status"])
        assert truth["client_token"] == job["client_token"] == f"icehook-{job['id'].hex}"

    # One event per transition, forward only, and one outbox message per event.
    chains = await check_history(database_url, all_jobs)

    # No ICE job was created twice for one icehook job: one ICE job per ClientToken and per
    # NotifyAddress (each icehook job has its own), and it is the one icehook knows.
    listed = await ice_jobs(sim_url)
    tokens: Counter[str | None] = Counter()
    addresses: Counter[str | None] = Counter()
    for item in listed:
        truth = (await sim.get(f"/_sim/jobs/{item.job_id}")).json()
        tokens[truth["client_token"]] += 1
        addresses[json.loads(item.user_data or "{}").get("NotifyAddress")] += 1
    assert not [t for t, n in tokens.items() if n > 1], "an icehook job was created twice at ICE"
    assert not [a for a, n in addresses.items() if n > 1], "a NotifyAddress used by two ICE jobs"
    assert set(tokens) == {j["client_token"] for j in all_jobs}
    assert {item.job_id for item in listed} == {j["ice_job_id"] for j in all_jobs}

    # Settled by the sweeper: ICE had the job from the first try already (the resubmission
    # with the same ClientToken returned it), or got it only from the resubmission.
    settled = [j for j in all_jobs if chains[j["id"]][0]["source"] != "submit"]
    first_try = [
        j
        for j in settled
        if datetime.fromisoformat(truths[j["id"]]["created_at"])
        < chains[j["id"]][0]["created_at"] - timedelta(seconds=1)
    ]
    print(
        f"{len(all_jobs)} jobs; {len(settled)} settled after an unknown submission outcome, "
        f"{len(first_try)} of them already at ICE from the first try"
    )


async def test_a_delivery_cut_off_by_sigkill_is_sent_again_after_the_restart(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """``serve`` is killed while a subscriber holds a webhook request open; the restarted
    ``serve`` sends it again (same ``webhook-id``) once its lease has expired, and every
    event of the job reaches the subscriber."""
    sim_port, api_port = free_port(), free_port()
    sim_url, api_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{api_port}"
    sim_env = {
        **clean_env,
        "ICEHOOK_SIM_ACCESS_KEYS": f"{KEY_ID}:{SECRET}",
        "ICEHOOK_SIM_JOB_SECONDS": "0.5",
    }
    env = icehook_env(
        clean_env,
        data_dir=tmp_path / "data",
        database_url=database_url,
        ice_url=sim_url,
        public_url=api_url,
        access_key=(KEY_ID, SECRET),
        api_key=API_KEY,
        ICEHOOK_ALLOWED_WEBHOOK_NETS="127.0.0.0/8",
        ICEHOOK_DELIVERY_TIMEOUT_SECONDS="2",  # the lease: this + 5 s
    )
    sim_log, serve_log = tmp_path / "simulator.log", tmp_path / "serve.log"
    procs: list[asyncio.subprocess.Process] = []

    async def start_serve() -> asyncio.subprocess.Process:
        return await start_ready(procs, "serve", api_port, env, serve_log)

    try:
        async with asyncio.timeout(120), receiver() as r:
            await start_ready(procs, "simulator", sim_port, sim_env, sim_log)
            serve = await start_serve()
            async with http_client(
                base_url=api_url, headers={"authorization": f"Bearer {API_KEY}"}, timeout=10
            ) as api:
                created = await api.post(
                    "/v1/subscriptions", json={"url": r.url, "event_types": ["*"]}
                )
                assert created.status_code == 201, created.text
                r.secrets.append(created.json()["secret"])
                r.hold = True  # the first request stays open until serve is dead
                job = (
                    await api.post(
                        "/v1/jobs", json={"ProjectId": "p-kill", "OutputMediaConfig": OUTPUT}
                    )
                ).json()
                await asyncio.wait_for(r.arrived.wait(), 30)
                serve.send_signal(signal.SIGKILL)
                assert await serve.wait() == -signal.SIGKILL
                r.hold = False
                serve = await start_serve()

                async def all_delivered() -> bool:
                    detail = (await api.get(f"/v1/jobs/{job['id']}")).json()
                    if detail["status"] not in ("succeeded", "failed"):
                        return False
                    events = [f"job.{e['to_status']}" for e in detail["events"]]
                    return [e["type"] for e in r.delivered()] == events

                async with asyncio.timeout(60):
                    while not await all_delivered():
                        await asyncio.sleep(0.2)
                cut_off = r.arrivals[0]
                assert r.arrivals.count(cut_off) == 2, "sent again, with the same webhook-id"
                assert r.delivered()[0]["webhook_id"] == cut_off
            assert await stop(serve) == 0, f"see {serve_log}"
    finally:
        await kill_all(procs)


async def start_ready(
    procs: list[asyncio.subprocess.Process],
    command: str,
    port: int,
    env: dict[str, str],
    log: Path,
) -> asyncio.subprocess.Process:
    """Start ``icehook <command> --port <port>`` (kept in ``procs``), once it answers."""
    proc = await start_icehook_logged(command, "--port", str(port), env=env, log=log)
    procs.append(proc)
    ready = "/_sim/settings" if command == "simulator" else "/readyz"
    await wait_ready(f"http://127.0.0.1:{port}", ready)
    return proc
