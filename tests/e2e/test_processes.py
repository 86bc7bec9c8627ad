"""One ``icehook serve`` and two ``icehook worker`` processes on one database share the work.

The real commands run as processes over real sockets, with the simulator as a process of
its own that fails some jobs, delivers every callback twice and reorders them. Each
icehook process logs every confirmation (``confirm start job=...`` / ``confirm end
job=...``, logger ``app.reconcile``) to its own file; from those lines the test checks that
more than one process did confirmations and that no job was ever confirmed by two processes
at the same time. "confirm end" is logged before the commit that releases the job's lease
(app/reconcile.py), so two confirmations of one job may touch in the logs but never
overlap; with ICE answering slowly (ICE_LATENCY_MS), a real overlap would last about as
long as an ICE call.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from app.store.tables import callbacks as callbacks_table
from app.store.tables import jobs
from tests.helpers.confirmations import confirmations, overlaps
from tests.helpers.history import check_history, rows, wait_until_settled
from tests.helpers.processes import (
    icehook_env,
    kill_all,
    start_icehook_logged,
    start_simulator,
    stop,
    troubles,
    wait_for_line,
    wait_ready,
)
from tests.helpers.servers import free_port, http_client
from tests.helpers.waiting import FINAL, eventually

KEY_ID, SECRET, API_KEY = "procs-ak", "procs-secret", "procs-api-key-0123"
JOBS, BATCHES, PROJECTS_PER_BATCH = 40, 2, 3
OUTPUT = {"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out.mp4"}
BATCH_OUTPUT = {"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out-{index}.mp4"}
ICE_FINAL = {"Success", "Failed", "Finished"}
# ICE's final word -> icehook's status, for a job and for a batch.
JOB_STATUS = {"Success": "succeeded", "Failed": "failed"}
BATCH_STATUS = {"Finished": "finished", "Failed": "failed"}
ICE_LATENCY_MS = 100


async def test_one_serve_and_two_workers_share_the_work(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    sim_url = f"http://127.0.0.1:{free_port()}"
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    sim_env = {
        **clean_env,
        "ICEHOOK_SIM_ACCESS_KEYS": f"{KEY_ID}:{SECRET}",
        "ICEHOOK_SIM_JOB_SECONDS": "5",
        "ICEHOOK_SIM_FAILURE_RATE": "0.3",
        "ICEHOOK_SIM_CALLBACK_DUPLICATE_RATE": "1",
        "ICEHOOK_SIM_CALLBACK_DELAY_SECONDS": "1.5",
        # Every ICE call takes a while, so two confirmations at once overlap by that much.
        "ICEHOOK_SIM_API_LATENCY_MS": str(ICE_LATENCY_MS),
    }
    env = icehook_env(
        clean_env,
        data_dir=tmp_path / "data",
        database_url=database_url,
        ice_url=sim_url,
        public_url=api_url,
        access_key=(KEY_ID, SECRET),
        api_key=API_KEY,
        # Each job is swept several times while it runs, by whichever process claims it first.
        ICEHOOK_SWEEP_AFTER_SECONDS="1",
    )
    logs = {
        name: tmp_path / f"{name}.log" for name in ("simulator", "serve", "worker-1", "worker-2")
    }
    procs: dict[str, asyncio.subprocess.Process] = {}
    try:
        async with asyncio.timeout(240):  # a hang guard only
            procs["simulator"] = await start_simulator(sim_url, sim_env, logs["simulator"])
            # The roles scaled apart: the API and intake alone, the workers with their own
            # health and metrics.
            procs["serve"] = await start_icehook_logged(
                "serve", "--port", str(api_port), "--no-worker", env=env, log=logs["serve"]
            )
            await wait_ready(api_url)
            health = {name: f"http://127.0.0.1:{free_port()}" for name in ("worker-1", "worker-2")}
            for name, url in health.items():
                port = url.rsplit(":", 1)[1]
                procs[name] = await start_icehook_logged(
                    "worker", "--port", port, env=env, log=logs[name]
                )
            for name, url in health.items():
                await wait_for_line(logs[name], "icehook: worker running", procs[name])
                await wait_ready(url)

            async with (
                http_client(
                    base_url=api_url, headers={"authorization": f"Bearer {API_KEY}"}, timeout=60
                ) as api,
                http_client(base_url=sim_url, timeout=60) as sim,
            ):
                submitted = await submit_everything(api)
                # Meanwhile `serve` is asked to confirm random jobs now, competing with the
                # sweepers and the callback processing of all three processes.
                answers: Counter[int] = Counter()
                poking = asyncio.create_task(reconcile_at_random(api, submitted, answers))
                await wait_until_settled(database_url, sim, expected=JOBS + BATCHES)
                poking.cancel()
                (ended,) = await asyncio.gather(poking, return_exceptions=True)
                assert isinstance(ended, asyncio.CancelledError), ended
                assert answers[200], answers
                await check_outcome(database_url, sim, submitted)
                for url in health.values():
                    await check_worker_health(url)

            # Stopped (gracefully) before the logs are read: a confirmation still in flight,
            # e.g. of the last /reconcile, ends in its log before its process exits.
            for name in ("worker-1", "worker-2", "serve", "simulator"):
                assert await stop(procs[name]) == 0, f"{name} exit status; see {logs[name]}"
            found = [
                c for name in procs if name != "simulator" for c in confirmations(name, logs[name])
            ]
            per_process = Counter(c.process for c in found)
            assert len(per_process) > 1, f"only one process confirmed anything: {per_process}"
            confirmed_jobs = {c.job for c in found}
            top_level = {str(s["id"]) for s in submitted}
            assert top_level <= confirmed_jobs, "every job needs a confirmation to become final"
            processes_per_job = Counter(job for job, _ in {(c.job, c.process) for c in found})
            shared = sum(1 for n in processes_per_job.values() if n > 1)
            # Otherwise the next check would have nothing to look at.
            assert shared >= 5, f"too few jobs confirmed by more than one process: {shared}"
            clashes = overlaps(found)
            assert not clashes, f"one job confirmed twice at the same time: {clashes[:5]}"
            print(f"confirmations: {dict(per_process)}")
            for name in procs:
                assert not troubles(logs[name]), f"{name}: see {logs[name]}"
    finally:
        await kill_all(procs.values())


async def check_worker_health(url: str) -> None:
    """A worker's own port: liveness, readiness, and its own metrics behind the API key
    (its ICE calls, not the gauges read from the database, which ``serve`` reports)."""
    async with http_client(base_url=url, timeout=10) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 401
        answer = await client.get("/metrics", headers={"authorization": f"Bearer {API_KEY}"})
        assert answer.status_code == 200
        calls = re.findall(
            r'^icehook_ice_calls_total\{[^}]*outcome="ok"\} (\S+)$', answer.text, re.M
        )
        assert sum(map(float, calls)) > 0, "it asked ICE"
        assert "icehook_jobs{" not in answer.text


async def submit_everything(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Submit the jobs and the batches, a few at a time; return their resources."""
    slots = asyncio.Semaphore(6)

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with slots:
            response = await api.post(path, json=body)
        assert response.status_code in (201, 202), response.text
        return response.json()  # type: ignore[no-any-return]

    bodies = [
        ("/v1/jobs", {"ProjectId": f"p-{n}", "OutputMediaConfig": OUTPUT, "UserData": {"n": n}})
        for n in range(JOBS)
    ]
    projects = [",".join(f"b{b}-{p}" for p in range(PROJECTS_PER_BATCH)) for b in range(BATCHES)]
    bodies += [
        ("/v1/batch-jobs", {"ProjectIds": ids, "OutputConfig": BATCH_OUTPUT}) for ids in projects
    ]
    return list(await asyncio.gather(*(post(path, body) for path, body in bodies)))


async def reconcile_at_random(
    api: httpx.AsyncClient, submitted: list[dict[str, Any]], answers: Counter[int]
) -> None:
    """``POST /v1/jobs/{id}/reconcile`` on random jobs until cancelled."""
    while True:
        job = random.choice(submitted)
        answer = await api.post(f"/v1/jobs/{job['id']}/reconcile")
        # 409: another process holds the job's lease right now.
        assert answer.status_code in (200, 409), answer.text
        answers[answer.status_code] += 1
        await asyncio.sleep(0.02)


async def check_outcome(
    database_url: str, sim: httpx.AsyncClient, submitted: list[dict[str, Any]]
) -> None:
    all_jobs = await rows(database_url, sa.select(jobs))
    batches = [j for j in all_jobs if j["kind"] == "batch"]
    sub_jobs = [j for j in all_jobs if j["batch_id"] is not None]
    assert {str(j["id"]) for j in all_jobs if j["batch_id"] is None} == {s["id"] for s in submitted}
    assert len(batches) == BATCHES
    assert len(sub_jobs) == BATCHES * PROJECTS_PER_BATCH

    # Every job and sub-job is at the simulator's true final status.
    for job in all_jobs:
        assert job["ice_job_id"], f"job {job['id']} has no ICE JobId"
        truth = (await sim.get(f"/_sim/jobs/{job['ice_job_id']}")).json()
        assert truth["status"] in ICE_FINAL, truth
        mapping = BATCH_STATUS if job["kind"] == "batch" else JOB_STATUS
        assert (job["status"], job["ice_status"]) == (mapping[truth["status"]], truth["status"])
        if job["kind"] == "batch":
            known = {j["ice_job_id"] for j in sub_jobs if j["batch_id"] == job["id"]}
            assert known == {s["job_id"] for s in truth["sub_jobs"]}

    # One event per transition, in a forward chain ending at the job's status, and one
    # outbox message per event.
    await check_history(database_url, all_jobs)

    # Every stored callback was judged; an honest ICE's callbacks are never rejected. Each
    # callback the simulator saw answered 200 is stored (docs/invariants.md, I1).
    stored = await rows(database_url, sa.select(callbacks_table))
    outcomes = Counter(c["outcome"] for c in stored)
    assert set(outcomes) <= {"applied", "duplicate", "stale"}, outcomes
    applied = Counter(
        (c["ice_job_id"], c["ice_status"]) for c in stored if c["outcome"] == "applied"
    )
    assert all(n == 1 for n in applied.values()), applied
    kept = {(c["token_hash"], c["ice_job_id"], c["ice_status"]) for c in stored}
    answered = [
        c
        for c in (await sim.get("/_sim/callbacks")).json()["callbacks"]
        if c["response_status"] == 200
    ]
    assert answered
    for c in answered:
        token_hash = hashlib.sha256(c["url"].rsplit("/", 1)[1].encode()).digest()
        assert (token_hash, c["job_id"], c["status_sent"]) in kept, c


async def test_processes_together_keep_within_ices_submit_limit(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """ICE limits an account, not a process: two ``serve`` and two ``worker`` processes on
    one database, 600 submissions from 16 clients at once, stay within 30 submits in any
    second, and ICE is asked hardly more often than there are jobs (a throttled call is
    tried again, so every extra call is a throttle)."""
    total = 600
    sim_url = f"http://127.0.0.1:{free_port()}"
    ports = [free_port(), free_port()]
    sim_env = {
        **clean_env,
        "ICEHOOK_SIM_ACCESS_KEYS": f"{KEY_ID}:{SECRET}",
        "ICEHOOK_SIM_JOB_SECONDS": "1",
    }
    procs: dict[str, asyncio.subprocess.Process] = {}
    logs = {
        name: tmp_path / f"{name}.log"
        for name in ("simulator", "serve-1", "serve-2", "worker-1", "worker-2")
    }
    try:
        async with asyncio.timeout(240):  # a hang guard only
            procs["simulator"] = await start_simulator(sim_url, sim_env, logs["simulator"])
            for n, port in enumerate(ports, 1):
                url = f"http://127.0.0.1:{port}"
                env = icehook_env(
                    clean_env,
                    data_dir=tmp_path / f"data-{n}",
                    database_url=database_url,
                    ice_url=sim_url,
                    public_url=url,
                    access_key=(KEY_ID, SECRET),
                    api_key=API_KEY,
                )
                procs[f"serve-{n}"] = await start_icehook_logged(
                    "serve", "--port", str(port), env=env, log=logs[f"serve-{n}"]
                )
                await wait_ready(url)
                procs[f"worker-{n}"] = await start_icehook_logged(
                    "worker", env=env, log=logs[f"worker-{n}"]
                )
            clients = asyncio.Semaphore(16)
            headers = {"authorization": f"Bearer {API_KEY}"}
            apis = [
                http_client(base_url=f"http://127.0.0.1:{p}", headers=headers, timeout=60)
                for p in ports
            ]

            async def post(n: int) -> dict[str, Any]:
                body = {"ProjectId": f"p-{n}", "OutputMediaConfig": OUTPUT}
                async with clients:
                    response = await apis[n % 2].post("/v1/jobs", json=body)
                assert response.status_code in (201, 202), response.text
                return response.json()  # type: ignore[no-any-return]

            async def all_final() -> bool:
                found = await rows(database_url, sa.select(jobs.c.status))
                return len(found) == total and all(j["status"] in FINAL for j in found)

            async with http_client(base_url=sim_url, timeout=60) as sim:
                submitted = await asyncio.gather(*(post(n) for n in range(total)))
                await eventually(all_final, seconds=120, every=0.5)
                stats = (await sim.get("/_sim/stats")).json()
            for api in apis:
                await api.aclose()
            assert len({s["id"] for s in submitted}) == total
            assert stats["submits_peak_per_second"] <= 30, stats
            calls = stats["rpc_calls"]["SubmitMediaProducingJob"]
            assert total <= calls <= total * 1.05, stats
            print(f"submit calls: {calls} for {total} jobs; {stats}")
            for name in procs:
                assert await stop(procs[name]) == 0, f"{name} exit status; see {logs[name]}"
                assert not troubles(logs[name]), f"{name}: see {logs[name]}"
    finally:
        await kill_all(procs.values())
