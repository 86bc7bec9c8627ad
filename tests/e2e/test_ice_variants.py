"""icehook is right in every plausible ICE, not only in the simulator's default one.

Where ICE's behaviour is undocumented (docs/ice.md, "Open questions"), the simulator offers
each plausible behaviour as a setting (docs/simulator.md). Each test here runs icehook and
the simulator over sockets in one of them and checks the outcome against the simulator's
truth: every job ends in ICE's true status, ICE made exactly one job (or batch) per icehook
submission, and nothing ICE holds is recorded ``rejected``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from app.core.tokens import CALLBACK_PATH
from app.store.tables import callbacks, job_events, outbox
from tests.helpers.processes import clean_environment, run_icehook
from tests.helpers.stack import Stack, stack
from tests.helpers.waiting import FINAL, eventually

BATCH_OUTPUT = {"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out-{index}.mp4"}
ICE_STATUS = {"Success": "succeeded", "Failed": "failed", "Finished": "finished"}
# Short deadlines, so that lost answers are settled within the test: the sweeper looks
# after half a second, and a submission ICE does not list is sent again 12 s after it was
# last sent (no less than an ICE call of two 2 s attempts may take: core.policies).
QUICK = {"ice_timeout_seconds": 2.0, "ice_max_attempts": 2, "ice_listing_grace_seconds": 12.0}


def _token(user_data: str | None) -> str | None:
    address = json.loads(user_data or "{}").get("NotifyAddress", "")
    return address.rsplit(CALLBACK_PATH, 1)[1] if CALLBACK_PATH in address else None


async def _submit_all(s: Stack, jobs: int, batches: int) -> list[dict[str, Any]]:
    clients = asyncio.Semaphore(32)  # concurrent clients (within the service's pool)

    async def job(n: int) -> dict[str, Any]:
        async with clients:
            return await s.submit(ProjectId=f"p-{n}")

    async def batch(n: int) -> dict[str, Any]:
        body = {"ProjectIds": [f"b{n}-1", f"b{n}-2"], "OutputConfig": BATCH_OUTPUT}
        async with clients:
            answer = await s.api.post("/v1/batch-jobs", json=body)
        assert answer.status_code in (201, 202), answer.text
        return answer.json()  # type: ignore[no-any-return]

    made = await asyncio.gather(*(job(n) for n in range(jobs)), *(batch(n) for n in range(batches)))
    return list(made)


async def _statuses(s: Stack) -> dict[str, str]:
    """Every job's status, by id (all pages of GET /v1/jobs)."""
    statuses: dict[str, str] = {}
    params: dict[str, Any] = {"limit": 200}
    while True:
        page = (await s.api.get("/v1/jobs", params=params)).json()
        statuses |= {job["id"]: job["status"] for job in page["items"]}
        if page["next_cursor"] is None:
            return statuses
        params["cursor"] = page["next_cursor"]


async def _all_final(s: Stack, made: Sequence[dict[str, Any]], seconds: float = 120) -> None:
    async def final() -> bool:
        statuses = await _statuses(s)
        return all(statuses.get(m["id"]) in FINAL for m in made)

    try:
        await eventually(final, seconds=seconds, every=0.5)
    except TimeoutError:
        statuses = await _statuses(s)
        stuck = [m["id"] for m in made if statuses.get(m["id"]) not in FINAL]
        heard = await s.rows(
            sa.select(callbacks.c.job_id, callbacks.c.ice_job_id, callbacks.c.outcome).where(
                callbacks.c.job_id.in_(stuck[:3])
            )
        )
        jobs = [await s.job(job_id) for job_id in stuck[:3]]
        raise AssertionError(f"{len(stuck)} not final, e.g. {jobs}; callbacks: {heard}") from None


async def _check_against_the_truth(s: Stack, made: Sequence[dict[str, Any]]) -> None:
    """Exactly one ICE job or batch per submission, each icehook job in ICE's final status,
    and none ``rejected``: the simulator refuses nothing in these runs."""
    truth = (await s.sim.get("/_sim/jobs")).json()
    singles = [j for j in truth["jobs"] if j["master_job_id"] is None]
    made_by_ice = Counter(_token(j["user_data"]) for j in [*singles, *truth["batches"]])
    assert len(made_by_ice) == len(made), "one token per icehook submission"
    assert set(made_by_ice.values()) == {1}, f"ICE made some twice: {made_by_ice.most_common(3)}"
    by_id = {j["job_id"]: j for j in truth["jobs"] + truth["batches"]}
    for submitted in made:
        job = await s.job(submitted["id"])
        assert job["status"] != "rejected", job
        ice = by_id[job["ice_job_id"]]
        assert job["status"] == _true_status(ice), (job, ice)
        assert job["fate_unknown_since"] is None
        if job["kind"] == "batch":
            subs = [by_id[sub]["final_status"] for sub in ice["sub_jobs"]]
            counted = (job["sub_jobs_succeeded"], job["sub_jobs_failed"])
            assert counted == (subs.count("Success"), subs.count("Failed")), (job, ice)


def _true_status(ice: dict[str, Any]) -> str:
    """icehook's status for the simulator's truth: ICE's final word, but a batch that failed
    as a whole (no sub-jobs) is ``failed`` whether ICE calls it Finished or Failed."""
    if ice["kind"] == "batch" and not ice["sub_jobs"]:
        return "failed"
    return ICE_STATUS[ice["final_status"]]


@pytest.mark.parametrize(
    ("reuse", "listing"),
    [
        ("original", "exact"),
        ("error", "exact"),
        ("ignored", "exact"),
        ("original", "reformatted"),
        ("original", "absent"),
    ],
)
async def test_lost_submit_answers_converge_without_duplicates(
    database_url: str, reuse: str, listing: str
) -> None:
    """A third of the submits create the job and lose the answer. Whatever ICE does with a
    repeated ClientToken, and however it lists scene batches, every submission ends as
    exactly one ICE job in ICE's status."""
    async with stack(
        database_url,
        sweep_after=0.5,
        icehook=QUICK,
        job_seconds=3,
        failure_rate=0.2,
        submit_answer_loss_rate=0.3,
        client_token_reuse=reuse,
        batch_listing=listing,
    ) as s:
        made = await _submit_all(s, jobs=200, batches=20)
        await _all_final(s, made, seconds=180)
        await _check_against_the_truth(s, made)
        settled_later = await s.rows(
            sa.select(job_events.c.job_id).where(
                job_events.c.from_status == "submitting", job_events.c.source != "submit"
            )
        )
        assert settled_later, "some answers were lost, and their jobs settled later"


async def test_a_reused_client_token_refused_is_looked_up_not_rejected(database_url: str) -> None:
    """ICE answers a repeated ClientToken with a 400 (client_token_reuse ``error``) and every
    submit's answer is lost: icehook finds each job in ICE's list instead of submitting it
    again, and never records ``rejected``."""
    async with stack(
        database_url,
        sweep_after=0.5,
        icehook=QUICK,
        job_seconds=1,
        submit_answer_loss_rate=1,
        client_token_reuse="error",
    ) as s:
        made = await _submit_all(s, jobs=10, batches=0)
        assert {m["status"] for m in made} == {"submitting"}
        await _all_final(s, made)
        await _check_against_the_truth(s, made)
        stats = (await s.sim.get("/_sim/stats")).json()["rpc_calls"]
        assert stats["SubmitMediaProducingJob"] == 10, "no submission was repeated"


async def test_a_batch_ice_cannot_list_waits_for_its_callback_or_an_operator(
    database_url: str,
) -> None:
    """ICE lists no scene batch and every batch submit's answer is lost. A batch whose
    callback arrives is settled by it; one whose callback is lost shows its fate unknown
    (API, metric) and is never submitted again by itself; an operator abandons one and
    resubmits another, each choice recorded as an event."""
    async with stack(
        database_url,
        sweep_after=0.5,
        icehook=QUICK,
        job_seconds=1,
        submit_answer_loss_rate=1,
        batch_listing="absent",
    ) as s:
        heard = await _submit_all(s, jobs=0, batches=1)
        await _all_final(s, heard)
        await _check_against_the_truth(s, heard)

        await s.sim.patch("/_sim/settings", json={"callback_drop_rate": 1})
        lost = await _submit_all(s, jobs=0, batches=2)

        async def unknown() -> bool:
            jobs = [await s.job(m["id"]) for m in lost]
            return all(j["fate_unknown_since"] is not None for j in jobs)

        await eventually(unknown, seconds=30)

        async def gauged(count: int) -> bool:  # the gauges are read once a second
            return f"icehook_jobs_fate_unknown {count}.0" in (await s.api.get("/metrics")).text

        await eventually(lambda: gauged(2))
        env = {**clean_environment(), "ICEHOOK_DATABASE_URL": s.database_url}
        code, out, err = await run_icehook("jobs", "list", "--status", "submitting", env=env)
        assert code == 0, err
        assert "fate_unknown_since" in out.splitlines()[0], out
        await asyncio.sleep(3)  # several sweeps: none submits the batch again
        stats = (await s.sim.get("/_sim/stats")).json()["rpc_calls"]
        assert stats["SubmitSceneBatchEditingJob"] == 3

        abandon, resubmit = lost
        answer = await s.api.post(
            f"/v1/batch-jobs/{abandon['id']}/resolve", json={"resolution": "abandon"}
        )
        assert (answer.status_code, answer.json()["status"]) == (200, "abandoned"), answer.text
        await s.sim.patch("/_sim/settings", json={"submit_answer_loss_rate": 0})
        answer = await s.api.post(
            f"/v1/batch-jobs/{resubmit['id']}/resolve", json={"resolution": "resubmit"}
        )
        assert (answer.status_code, answer.json()["status"]) == (200, "submitted"), answer.text
        again = await s.api.post(
            f"/v1/batch-jobs/{resubmit['id']}/resolve", json={"resolution": "abandon"}
        )
        assert again.status_code == 409, "only an unknown fate can be resolved"
        await _all_final(s, [resubmit])
        chain = [
            (e["to_status"], e["source"], (e["payload"] or {}).get("Resolution"))
            for e in (await s.job(abandon["id"]))["events"]
        ]
        assert chain == [("abandoned", "manual", "abandon")]
        events = (await s.job(resubmit["id"]))["events"]
        assert (events[0]["source"], events[0]["payload"]["Resolution"]) == ("manual", "resubmit")
        await eventually(lambda: gauged(0))


@pytest.mark.parametrize("signing", ["signed", "unsigned"])
async def test_callbacks_with_or_without_a_signature_move_jobs(
    database_url: str, signing: str
) -> None:
    """With AuthKeys configured, ICE may or may not sign callbacks to a job's own address:
    either way the callbacks move the jobs (no sweeper runs here), and the audit says
    which were signed."""
    key = "SignKey123"
    async with stack(
        database_url,
        job_seconds=0.5,
        callback_auth_key=key,
        callback_signing=signing,
        icehook={"callback_auth_keys": (key,)},
    ) as s:
        made = await _submit_all(s, jobs=3, batches=1)
        await _all_final(s, made, seconds=30)
        await _check_against_the_truth(s, made)
        stored = await s.rows(sa.select(callbacks.c.outcome, callbacks.c.signed))
        # A batch's callbacks may report what its sub-jobs' already applied: duplicates.
        assert {c["outcome"] for c in stored} <= {"applied", "duplicate", "stale"}
        assert "applied" in {c["outcome"] for c in stored}
        assert {c["signed"] for c in stored} == {signing == "signed"}
        listed = (await s.api.get("/v1/callbacks")).json()["items"]
        assert {c["signed"] for c in listed} == {signing == "signed"}


async def test_callbacks_saying_fail_fail_the_jobs(database_url: str) -> None:
    """ICE's callbacks may say ``Fail`` where Get says ``Failed``."""
    async with stack(
        database_url, job_seconds=0.5, failure_rate=1, callback_failure_status="Fail"
    ) as s:
        made = await _submit_all(s, jobs=3, batches=0)
        await _all_final(s, made, seconds=30)
        await _check_against_the_truth(s, made)
        stored = await s.rows(sa.select(callbacks.c.ice_status, callbacks.c.outcome))
        assert {(c["ice_status"], c["outcome"]) for c in stored} == {("Fail", "applied")}


@pytest.mark.parametrize("word", ["failed-when-all-fail", "always-finished"])
async def test_batch_outcomes_are_counted_whichever_word_ice_uses(
    database_url: str, word: str
) -> None:
    """ICE may call a batch whose sub-jobs all failed Failed or Finished; either way its
    final event says how many sub-jobs succeeded and failed, and a batch ICE fails as a
    whole, before any sub-job (an unknown project), is ``failed`` with ICE's code."""
    async with stack(database_url, job_seconds=0.5, batch_failure=word) as s:
        await s.sim.patch("/_sim/settings", json={"failure_rate": 1})
        all_failed = await _submit_all(s, jobs=0, batches=1)
        await s.sim.patch("/_sim/settings", json={"failure_rate": 0})
        all_succeeded = await _submit_all(s, jobs=0, batches=1)
        body = {"ProjectIds": ["unknown-project", "p2"], "OutputConfig": BATCH_OUTPUT}
        whole = (await s.api.post("/v1/batch-jobs", json=body)).json()
        made = [*all_failed, *all_succeeded, whole]
        await _all_final(s, made, seconds=60)
        await _check_against_the_truth(s, made)
        failed = await s.job(whole["id"])
        assert (failed["status"], failed["error_code"]) == ("failed", "InvalidParameter.ProjectIds")
        finals = {
            row["job_id"]: row["payload"]["data"]
            for row in await s.rows(
                sa.select(outbox.c.job_id, outbox.c.payload).where(
                    outbox.c.event_type.in_(["batch.finished", "batch.failed"])
                )
            )
        }
        counts = [
            (
                finals[uuid.UUID(m["id"])]["sub_jobs_succeeded"],
                finals[uuid.UUID(m["id"])]["sub_jobs_failed"],
            )
            for m in made
        ]
        assert counts == [(0, 2), (2, 0), (0, 0)]
        expected = "batch.failed" if word == "failed-when-all-fail" else "batch.finished"
        assert finals[uuid.UUID(all_failed[0]["id"])]["status"] == expected.split(".")[1]


async def test_sts_credentials_that_expire_mid_run_are_renewed(database_url: str) -> None:
    """icehook has only temporary credentials, from a credentials URI (the simulator's STS,
    each credential living 3 s): they expire again and again while jobs run, are renewed
    without a restart, and ICE refuses no call for them."""
    async with stack(
        database_url,
        sweep_after=0.5,
        job_seconds=2,
        sts_seconds=3,
        callback_drop_rate=0.5,  # so the sweeper calls ICE as well
        temporary_credentials=True,
    ) as s:
        made = []
        for _ in range(4):  # submissions spread over more than one credential's life
            made += await _submit_all(s, jobs=5, batches=1)
            await asyncio.sleep(1.5)
        await _all_final(s, made, seconds=60)
        await _check_against_the_truth(s, made)
        stats = (await s.sim.get("/_sim/stats")).json()
        assert stats["sts_issued"] >= 3, stats
        assert stats["sts_refused"] == 0, stats
