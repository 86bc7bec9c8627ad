"""The core flow end to end: the real service and the real ICE simulator over sockets.

Submit -> ICE -> callback -> confirm with ICE -> job events, and the sweeper when callbacks
are lost. Each test runs icehook (API and worker) and the simulator in this process, on
real sockets, against a database of its own.
"""

from __future__ import annotations

import asyncio
import json

import sqlalchemy as sa

from app.flows.sweep import Sweeper
from app.store.tables import callbacks as callbacks_table
from app.store.tables import job_events, jobs, outbox
from tests.helpers.stack import OUTPUT, Stack, envelope, stack
from tests.helpers.waiting import FINAL, eventually

BATCH_URL = "https://bucket.oss-cn-shanghai.aliyuncs.com/out-{index}.mp4"


async def test_a_job_goes_from_submit_to_succeeded_through_its_callback(
    database_url: str,
) -> None:
    async with stack(database_url, job_seconds=0.5) as s:
        job = await s.submit(ProjectId="p-1", UserData={"order": 42})
        assert job["status"] == "submitted"
        assert job["user_data"] == {"order": 42}, "the client's UserData, without NotifyAddress"

        async def done() -> bool:
            return bool((await s.job(job["id"]))["status"] == "succeeded")

        await eventually(done)
        final = await s.job(job["ice_job_id"])  # by ICE's JobId too
        assert final["media_url"] == OUTPUT["MediaURL"]
        assert [(e["from_status"], e["to_status"], e["source"]) for e in final["events"]] == [
            ("submitting", "submitted", "submit"),
            ("submitted", "succeeded", "callback"),
        ]
        stored = await s.rows(sa.select(callbacks_table))
        assert [c["outcome"] for c in stored] == ["applied"]
        types = [m["event_type"] for m in await s.rows(sa.select(outbox).order_by(outbox.c.id))]
        assert types == ["job.submitted", "job.succeeded"]


async def test_three_concurrent_duplicates_make_one_transition_and_one_event(
    database_url: str,
) -> None:
    async with stack(database_url, job_seconds=0.3, callback_drop_rate=1.0) as s:
        job = await s.submit(ProjectId="p-dup")

        async def finished_at_ice() -> bool:
            return bool((await s.truth(job["ice_job_id"]))["status"] == "Success")

        await eventually(finished_at_ice)
        token = await s.token_of(job["ice_job_id"])
        body = json.dumps(envelope(job["ice_job_id"], "Success"))
        answers = await asyncio.gather(
            *(s.callbacks.post(f"/callbacks/ice/{token}", content=body) for _ in range(3))
        )
        assert [a.status_code for a in answers] == [200, 200, 200]
        # Same job and status but another body: stored, judged a duplicate, not applied twice.
        other = json.dumps(envelope(job["ice_job_id"], "Success", EventTime="2026-11-22T08:00:09Z"))
        assert (await s.callbacks.post(f"/callbacks/ice/{token}", content=other)).status_code == 200

        async def judged() -> bool:
            rows = await s.rows(sa.select(callbacks_table))
            return all(r["outcome"] != "pending" for r in rows)

        await eventually(judged)
        outcomes = sorted(r["outcome"] for r in await s.rows(sa.select(callbacks_table)))
        assert outcomes == ["applied", "duplicate"], "one row per distinct body"
        events = await s.rows(sa.select(job_events).where(job_events.c.to_status == "succeeded"))
        assert len(events) == 1
        messages = await s.rows(sa.select(outbox).where(outbox.c.event_type == "job.succeeded"))
        assert len(messages) == 1


async def test_success_before_processing_never_moves_the_job_back(database_url: str) -> None:
    async with stack(database_url, job_seconds=0.3, callback_drop_rate=1.0) as s:
        job = await s.submit(ProjectId="p-order")

        async def finished_at_ice() -> bool:
            return bool((await s.truth(job["ice_job_id"]))["status"] == "Success")

        await eventually(finished_at_ice)
        token = await s.token_of(job["ice_job_id"])
        url = f"/callbacks/ice/{token}"
        await s.callbacks.post(url, json=envelope(job["ice_job_id"], "Success"))

        async def succeeded() -> bool:
            return bool((await s.job(job["id"]))["status"] == "succeeded")

        await eventually(succeeded)
        late = await s.callbacks.post(url, json=envelope(job["ice_job_id"], "Processing"))
        assert late.status_code == 200

        async def judged() -> bool:
            rows = await s.rows(sa.select(callbacks_table).order_by(callbacks_table.c.id))
            return bool(rows[-1]["outcome"] != "pending")

        await eventually(judged)
        rows = await s.rows(sa.select(callbacks_table).order_by(callbacks_table.c.id))
        assert [r["outcome"] for r in rows] == ["applied", "stale"]
        final = await s.job(job["id"])
        assert final["status"] == "succeeded"
        assert [e["to_status"] for e in final["events"]] == ["submitted", "succeeded"]


async def test_a_false_status_is_not_believed_the_job_follows_ice(database_url: str) -> None:
    async with stack(database_url, job_seconds=60) as s:
        job = await s.submit(ProjectId="p-false")
        token = await s.token_of(job["ice_job_id"])
        lie = envelope(job["ice_job_id"], "Success", MediaURL="https://evil.example.com/x.mp4")
        assert (await s.callbacks.post(f"/callbacks/ice/{token}", json=lie)).status_code == 200

        async def judged() -> bool:
            rows = await s.rows(sa.select(callbacks_table))
            return bool(rows) and rows[0]["outcome"] != "pending"

        await eventually(judged)
        row = (await s.rows(sa.select(callbacks_table)))[0]
        assert row["outcome"] == "rejected"
        assert "ICE says" in row["detail"]
        after = await s.job(job["id"])
        assert after["status"] in ("submitted", "queuing", "processing")
        assert after["media_url"] is None


async def test_every_callback_dropped_the_sweeper_still_finishes_every_job(
    database_url: str,
) -> None:
    async with stack(
        database_url, sweep_after=0.5, job_seconds=0.5, callback_drop_rate=1.0, failure_rate=0.4
    ) as s:
        jobs = [await s.submit(ProjectId=f"p-{n}") for n in range(6)]
        batch = await s.api.post(
            "/v1/batch-jobs",
            json={"ProjectIds": "a,b,c", "OutputConfig": {"MediaURL": BATCH_URL}},
        )
        assert batch.status_code == 201, batch.text
        everything = [*jobs, batch.json()]

        async def all_final() -> bool:
            listed = (await s.api.get("/v1/jobs", params={"limit": 100})).json()["items"]
            return len(listed) == 10 and all(j["status"] in FINAL for j in listed)

        await eventually(all_final)
        for job in everything:
            mine, truth = await s.job(job["id"]), await s.truth(job["ice_job_id"])
            assert mine["ice_status"] == truth["status"]
            assert all(e["source"] in ("submit", "sweep") for e in mine["events"])
        sub_jobs = (await s.api.get(f"/v1/batch-jobs/{batch.json()['id']}")).json()["sub_jobs"]
        assert len(sub_jobs) == 3
        truths = {
            t["job_id"]: t["status"]
            for t in (await s.truth(batch.json()["ice_job_id"]))["sub_jobs"]
        }
        assert {j["ice_job_id"]: j["ice_status"] for j in sub_jobs} == truths
        assert not [
            c
            for c in (await s.sim.get("/_sim/callbacks")).json()["callbacks"]
            if c["response_status"]
        ]


async def test_reconcile_asks_ice_now(database_url: str) -> None:
    async with stack(database_url, job_seconds=0.3, callback_drop_rate=1.0) as s:
        job = await s.submit(ProjectId="p-rec")

        async def finished_at_ice() -> bool:
            return bool((await s.truth(job["ice_job_id"]))["status"] == "Success")

        await eventually(finished_at_ice)
        assert (await s.job(job["id"]))["status"] == "submitted"
        answer = await s.api.post(f"/v1/jobs/{job['id']}/reconcile")
        assert answer.status_code == 200
        assert answer.json()["status"] == "succeeded"
        assert (await s.job(job["id"]))["events"][-1]["source"] == "manual"
        assert (await s.api.post("/v1/jobs/no-such-job/reconcile")).status_code == 404


async def open_transactions(s: Stack) -> int:
    """icehook's connections inside a transaction right now (this query's own excluded)."""
    rows = await s.rows(
        sa.select(sa.func.count())
        .select_from(sa.text("pg_stat_activity"))
        .where(
            sa.text("datname = current_database()"),
            sa.text("xact_start IS NOT NULL"),
            sa.text("pid <> pg_backend_pid()"),
        )
    )
    return int(rows[0]["count"])


async def test_no_transaction_is_open_while_ice_is_called(database_url: str) -> None:
    # Invariant 5: ICE answers slowly; while it thinks, icehook holds no transaction open.
    async with stack(database_url, job_seconds=0.3, callback_drop_rate=1.0) as s:
        await s.sim.patch("/_sim/settings", json={"api_latency_ms": 1500})
        submitting = asyncio.create_task(
            s.api.post("/v1/jobs", json={"ProjectId": "p", "OutputMediaConfig": OUTPUT})
        )
        await asyncio.sleep(0.7)  # inside SubmitMediaProducingJob
        assert await open_transactions(s) == 0
        job = (await submitting).json()
        assert job["status"] == "submitted"

        async def finished_at_ice() -> bool:
            return bool((await s.truth(job["ice_job_id"]))["status"] == "Success")

        await eventually(finished_at_ice)
        token = await s.token_of(job["ice_job_id"])
        await s.callbacks.post(
            f"/callbacks/ice/{token}", json=envelope(job["ice_job_id"], "Success")
        )
        await asyncio.sleep(0.7)  # the worker is inside GetMediaProducingJob
        assert await open_transactions(s) == 0

        async def succeeded() -> bool:
            return bool((await s.job(job["id"]))["status"] == "succeeded")

        await eventually(succeeded)


async def test_a_sweep_leases_only_the_jobs_it_works_on(database_url: str) -> None:
    """A job waiting for its turn holds no lease, so its lease cannot run out before its
    confirmation even starts (with a slow ICE, a long queue of leased jobs would)."""
    async with stack(database_url, sweep_after=0.5, job_seconds=60, callback_drop_rate=1.0) as s:
        for n in range(40):
            await s.submit(ProjectId=f"p-{n}")
        leased = (
            sa.select(sa.func.count().label("n"))
            .select_from(jobs)
            .where(jobs.c.lease_until > sa.func.now())
        )
        most = 0
        deadline = asyncio.get_running_loop().time() + 5  # several sweeps of all 40 jobs
        while asyncio.get_running_loop().time() < deadline:
            most = max(most, (await s.rows(leased))[0]["n"])
            await asyncio.sleep(0.005)
        assert 0 < most <= Sweeper.chunk < 40, f"{most} of 40 due jobs leased at once"
