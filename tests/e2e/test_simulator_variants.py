"""The simulator's settings for what ICE does not document (docs/simulator.md): each value
behaves as it says, over real sockets."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import httpx
import pytest

from app.core.errors import IceError, IceJobNotFound
from app.ice.client import IceClient
from app.ice.credentials import Credential, FixedCredentials
from app.settings import Settings
from tests.e2e.test_simulator import (
    BATCH_OUTPUT,
    OUTPUT,
    Ice,
    assert_ice_error,
    receiver,
    simulator,
    user_data,
)
from tests.helpers.waiting import eventually


async def _final_batch(ice: Ice, job_id: str) -> dict[str, Any]:
    batch: dict[str, Any] = {}

    async def final() -> bool:
        nonlocal batch
        answer = await ice.ok("GetBatchMediaProducingJob", {"JobId": job_id})
        batch = answer["EditingBatchJob"]
        return batch["Status"] in ("Finished", "Failed")

    await eventually(final)
    return batch


async def test_a_lost_answer_cuts_the_connection_after_making_the_job() -> None:
    async with simulator(job_seconds=60, submit_answer_loss_rate=1) as ice:
        with pytest.raises(httpx.HTTPError):
            await ice.call(
                "SubmitMediaProducingJob", {"OutputMediaConfig": OUTPUT, "ProjectId": "p"}
            )
        every = (await ice.http.get(f"{ice.base_url}/_sim/jobs")).json()
        assert len(every["jobs"]) == 1, "the job was made; only its answer was lost"
        listed = await ice.ok("GetMediaProducingJob", {"JobId": every["jobs"][0]["job_id"]})
        assert listed["MediaProducingJob"]["ProjectId"] == "p"


@pytest.mark.parametrize(
    ("reuse", "jobs", "refused"),
    [("original", 1, False), ("error", 1, True), ("ignored", 2, False)],
)
async def test_a_repeated_client_token_answers_as_the_setting_says(
    reuse: str, jobs: int, refused: bool
) -> None:
    async with simulator(job_seconds=60, client_token_reuse=reuse) as ice:
        first = await ice.submit(ProjectId="p", ClientToken="order-1")
        again = await ice.call(
            "SubmitMediaProducingJob",
            {"OutputMediaConfig": OUTPUT, "ProjectId": "p", "ClientToken": "order-1"},
        )
        if refused:
            assert_ice_error(again, 400, "InvalidParameter", ice.host)
        else:
            assert again.status_code == 200
            assert (again.json()["JobId"] == first["JobId"]) == (reuse == "original")
        every = (await ice.http.get(f"{ice.base_url}/_sim/jobs")).json()["jobs"]
        assert len(every) == jobs
        assert {job["client_token"] for job in every} == {"order-1"}


@pytest.mark.parametrize("listing", ["exact", "reformatted", "absent"])
async def test_the_batch_list_shows_user_data_as_the_setting_says(listing: str) -> None:
    sent = json.dumps({"NotifyAddress": "https://h.example/cb/x", "k": "v"})
    async with simulator(job_seconds=60, batch_listing=listing) as ice:
        made = await ice.ok(
            "SubmitSceneBatchEditingJob",
            {"ProjectIds": "p1,p2", "OutputConfig": BATCH_OUTPUT, "UserData": sent},
        )
        listed = (await ice.ok("ListBatchMediaProducingJobs", {}))["EditingBatchJobList"]
        got = await ice.ok("GetBatchMediaProducingJob", {"JobId": made["JobId"]})
        assert got["EditingBatchJob"]["UserData"] == sent, "Get always echoes it"
        if listing == "absent":
            assert listed == []
            return
        (batch,) = listed
        assert json.loads(batch["UserData"]) == json.loads(sent)
        assert (batch["UserData"] == sent) == (listing == "exact")


@pytest.mark.parametrize(
    ("setting", "status"), [("failed-when-all-fail", "Failed"), ("always-finished", "Finished")]
)
async def test_a_batch_whose_sub_jobs_all_failed_ends_as_the_setting_says(
    setting: str, status: str
) -> None:
    async with simulator(job_seconds=0.2, failure_rate=1, batch_failure=setting) as ice:
        made = await ice.ok(
            "SubmitSceneBatchEditingJob", {"ProjectIds": "p1,p2", "OutputConfig": BATCH_OUTPUT}
        )
        batch = await _final_batch(ice, made["JobId"])
        assert batch["Status"] == status
        assert {sub["Status"] for sub in batch["SubJobList"]} == {"Failed"}


async def test_a_batch_naming_an_unknown_project_fails_whole_without_sub_jobs() -> None:
    async with simulator(job_seconds=0.5) as ice:
        made = await ice.ok(
            "SubmitSceneBatchEditingJob",
            {"ProjectIds": "p1,unknown-2", "OutputConfig": BATCH_OUTPUT},
        )
        batch = await _final_batch(ice, made["JobId"])
        assert batch["Status"] == "Failed"
        assert batch["SubJobList"] == []
        assert json.loads(batch["Extend"])["ErrorCode"] == "InvalidParameter.ProjectIds"


@pytest.mark.parametrize("word", ["Failed", "Fail"])
async def test_a_failed_jobs_callback_says_the_configured_word(word: str) -> None:
    async with (
        receiver() as target,
        simulator(job_seconds=0.1, failure_rate=1, callback_failure_status=word) as ice,
    ):
        made = await ice.submit(ProjectId="p", UserData=user_data(target.url))

        async def called() -> bool:
            return bool(target.received)

        await eventually(called)
        body = json.loads(target.received[0].body)
        assert body["MessageBody"]["Status"] == word
        assert (await ice.job(made["JobId"]))["Status"] == "Failed", "Get still says Failed"


@pytest.mark.parametrize("signing", ["signed", "unsigned"])
async def test_callbacks_are_signed_or_not_as_the_setting_says(signing: str) -> None:
    key = "Key123abc"
    async with (
        receiver() as target,
        simulator(job_seconds=0.1, callback_auth_key=key, callback_signing=signing) as ice,
    ):
        await ice.submit(ProjectId="p", UserData=user_data(target.url))

        async def called() -> bool:
            return bool(target.received)

        await eventually(called)
        headers = target.received[0].headers
        if signing == "unsigned":
            assert "x-ice-signature" not in headers
            assert "x-ice-timestamp" not in headers
            return
        expected = f"{target.url}|{headers['x-ice-timestamp']}|{key}"
        assert (
            headers["x-ice-signature"]
            == hashlib.md5(expected.encode(), usedforsecurity=False).hexdigest()
        )


async def test_sim_jobs_lists_every_job_and_batch_with_token_and_user_data() -> None:
    async with simulator(job_seconds=60) as ice:
        await ice.submit(ProjectId="p", ClientToken="t-1", UserData=user_data("http://h/cb/a"))
        await ice.ok(
            "SubmitSceneBatchEditingJob",
            {
                "ProjectIds": "p1,p2",
                "OutputConfig": BATCH_OUTPUT,
                "UserData": user_data("http://h/b"),
            },
        )
        every = (await ice.http.get(f"{ice.base_url}/_sim/jobs")).json()
        singles = [j for j in every["jobs"] if j["master_job_id"] is None]
        assert [
            (j["client_token"], json.loads(j["user_data"])["NotifyAddress"]) for j in singles
        ] == [("t-1", "http://h/cb/a")]
        (batch,) = every["batches"]
        assert len(batch["sub_jobs"]) == 2
        assert {j["job_id"] for j in every["jobs"] if j["master_job_id"]} == set(batch["sub_jobs"])


@pytest.mark.parametrize("version", ["v3", "v2"])
async def test_sts_credentials_are_refused_once_expired_or_without_their_token(
    version: str,
) -> None:
    """``GET /_sim/sts`` issues credentials in the credentials URI's shape; a call signed
    with them needs their token, and is refused once they expire."""
    async with simulator(sts_seconds=1.5) as ice:
        issued = (await ice.http.get(f"{ice.base_url}/_sim/sts")).json()
        assert issued["Code"] == "Success"
        assert issued["AccessKeyId"].startswith("STS.")
        settings = Settings(ice_endpoint=ice.base_url, ice_signature_version=version)  # type: ignore[arg-type]

        def client(token: str | None) -> IceClient:
            credential = Credential(issued["AccessKeyId"], issued["AccessKeySecret"], token)
            return IceClient(ice.http, settings, credentials=FixedCredentials(credential))

        with pytest.raises(IceJobNotFound):  # signed and accepted: ICE looked for the job
            await client(issued["SecurityToken"]).get_media_producing_job("0" * 32)
        with pytest.raises(IceError) as wrong:
            await client("CAIS-not-the-token").get_media_producing_job("0" * 32)
        assert (wrong.value.status, wrong.value.code) == (
            403,
            "InvalidSecurityToken.MismatchWithAccessKey",
        )
        await asyncio.sleep(1.6)
        with pytest.raises(IceError) as expired:
            await client(issued["SecurityToken"]).get_media_producing_job("0" * 32)
        assert (expired.value.status, expired.value.code) == (403, "InvalidSecurityToken.Expired")
        stats = (await ice.http.get(f"{ice.base_url}/_sim/stats")).json()
        # The wrong token once; the expired one on every attempt (a fixed credential is
        # never renewed: here only the refusal is tested).
        assert (stats["sts_issued"], stats["sts_refused"]) == (1, 1 + Settings().ice_max_attempts)
