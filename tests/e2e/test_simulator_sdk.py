"""The official Alibaba Cloud SDK (alibabacloud-ice20201109) against the simulator.

If the SDK, which signs and encodes requests its own way, completes calls here, the simulator
speaks ICE's protocol as the SDK does: V3 and V2 signatures, the form body for Timeline,
quote_plus-encoded queries and ICE's error bodies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from alibabacloud_ice20201109 import models
from alibabacloud_ice20201109.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config

from app.simulator import SimulatorSettings, create_simulator_app
from tests.helpers.servers import serve

KEY_ID = "sdk-test-key"
SECRET = "sdk-test-secret"
# Spaces, '+', '*', '~', '/', '&', '=' and non-ASCII text: every encoding rule gets exercised.
TIMELINE = json.dumps(
    {
        "VideoTracks": [{"VideoTrackClips": [{"MediaURL": "https://b.oss/x y+z*~.mp4"}]}],
        "SubtitleTracks": [{"SubtitleTrackClips": [{"Type": "Text", "Content": "你好 a&b=c ✓"}]}],
    },
    ensure_ascii=False,
)
OUTPUT = json.dumps({"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out/sdk.mp4"})
USER_DATA = json.dumps({"Source": "sdk test", "Note": "1+1 = 2"})


@dataclass
class Endpoint:
    address: str  # host:port, as Config.endpoint wants it

    def client(self, *, secret: str = SECRET, signature: str | None = None) -> Client:
        config = Config(
            access_key_id=KEY_ID,
            access_key_secret=secret,
            endpoint=self.address,
            protocol="http",
            read_timeout=20_000,
            connect_timeout=5_000,
        )
        if signature is not None:
            config.signature_algorithm = signature
        return Client(config)


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    settings = SimulatorSettings(access_keys={KEY_ID: SECRET}, job_seconds=0.2)
    async with serve(create_simulator_app(settings)) as base_url:
        yield Endpoint(base_url.removeprefix("http://"))


@pytest.mark.parametrize("signature", [None, "v2"], ids=["v3", "v2"])
async def test_sdk_submits_and_gets_a_job(endpoint: Endpoint, signature: str | None) -> None:
    client = endpoint.client(signature=signature)
    # The SDK is synchronous: a thread keeps it from blocking the loop serving the simulator.
    submitted = await asyncio.to_thread(
        client.submit_media_producing_job,
        models.SubmitMediaProducingJobRequest(
            timeline=TIMELINE, output_media_config=OUTPUT, user_data=USER_DATA
        ),
    )
    assert submitted.status_code == 200
    job_id = submitted.body.job_id
    assert len(job_id) == 32
    assert submitted.body.media_id
    assert submitted.body.project_id

    job = None
    for _ in range(200):
        answer = await asyncio.to_thread(
            client.get_media_producing_job, models.GetMediaProducingJobRequest(job_id=job_id)
        )
        job = answer.body.media_producing_job
        if job.status in ("Success", "Failed"):
            break
        await asyncio.sleep(0.05)
    assert job is not None
    assert job.status == "Success"
    assert job.job_id == job_id
    assert job.timeline == TIMELINE  # the form body arrived byte for byte
    assert job.user_data == USER_DATA  # and so did the quote_plus-encoded query
    assert job.media_url == json.loads(OUTPUT)["MediaURL"]
    assert job.duration > 0


async def test_sdk_lists_jobs_with_a_page_token(endpoint: Endpoint) -> None:
    client = endpoint.client()
    for _ in range(3):
        await asyncio.to_thread(
            client.submit_media_producing_job,
            models.SubmitMediaProducingJobRequest(project_id="p" * 32, output_media_config=OUTPUT),
        )
    first = await asyncio.to_thread(
        client.list_media_producing_jobs, models.ListMediaProducingJobsRequest(max_results=2)
    )
    assert len(first.body.media_producing_job_list) == 2
    assert first.body.next_token
    second = await asyncio.to_thread(
        client.list_media_producing_jobs,
        models.ListMediaProducingJobsRequest(max_results=2, next_token=first.body.next_token),
    )
    assert len(second.body.media_producing_job_list) == 1
    assert not second.body.next_token


@pytest.mark.parametrize("signature", [None, "v2"], ids=["v3", "v2"])
async def test_sdk_raises_signature_does_not_match_with_a_wrong_secret(
    endpoint: Endpoint, signature: str | None
) -> None:
    client = endpoint.client(secret="not-the-secret", signature=signature)
    with pytest.raises(ClientException) as caught:
        await asyncio.to_thread(
            client.get_media_producing_job, models.GetMediaProducingJobRequest(job_id="a" * 32)
        )
    assert caught.value.code == "SignatureDoesNotMatch"
    assert caught.value.status_code == 403
    assert caught.value.request_id


async def test_sdk_raises_job_not_found(endpoint: Endpoint) -> None:
    client = endpoint.client()
    with pytest.raises(ClientException) as caught:
        await asyncio.to_thread(
            client.get_media_producing_job, models.GetMediaProducingJobRequest(job_id="0" * 32)
        )
    assert caught.value.code == "JobNotFound"
    assert caught.value.status_code == 404


BATCH_OUTPUT = json.dumps({"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/b/{index}.mp4"})


@pytest.mark.parametrize("signature", [None, "v2"], ids=["v3", "v2"])
async def test_sdk_submits_gets_and_lists_a_scene_batch(
    endpoint: Endpoint, signature: str | None
) -> None:
    """The three batch actions icehook makes, through the SDK: its models parse every field
    the simulator answers with, sub-jobs included."""
    client = endpoint.client(signature=signature)
    submitted = await asyncio.to_thread(
        client.submit_scene_batch_editing_job,
        models.SubmitSceneBatchEditingJobRequest(
            project_ids="p1,p2", output_config=BATCH_OUTPUT, user_data=USER_DATA
        ),
    )
    assert submitted.status_code == 200
    batch_id = submitted.body.job_id
    assert len(batch_id) == 32

    batch = None
    for _ in range(200):
        answer = await asyncio.to_thread(
            client.get_batch_media_producing_job,
            models.GetBatchMediaProducingJobRequest(job_id=batch_id),
        )
        batch = answer.body.editing_batch_job
        if batch.status in ("Finished", "Failed"):
            break
        await asyncio.sleep(0.05)
    assert batch is not None
    assert (batch.job_id, batch.status, batch.user_data) == (batch_id, "Finished", USER_DATA)
    assert batch.job_type == "Scene_Batch_Editing"
    subs = batch.sub_job_list
    assert [s.project_id for s in subs] == ["p1", "p2"]
    assert {s.status for s in subs} == {"Success"}
    assert [s.media_url for s in subs] == [
        "https://bucket.oss-cn-shanghai.aliyuncs.com/b/1.mp4",
        "https://bucket.oss-cn-shanghai.aliyuncs.com/b/2.mp4",
    ]

    listed = await asyncio.to_thread(
        client.list_batch_media_producing_jobs,
        models.ListBatchMediaProducingJobsRequest(max_results=10, status="Finished"),
    )
    assert [b.job_id for b in listed.body.editing_batch_job_list] == [batch_id]
    assert listed.body.editing_batch_job_list[0].user_data == USER_DATA
    assert not listed.body.next_token


async def test_sdk_raises_on_a_batch_that_would_write_one_object(endpoint: Endpoint) -> None:
    client = endpoint.client()
    with pytest.raises(ClientException) as caught:
        await asyncio.to_thread(
            client.submit_scene_batch_editing_job,
            models.SubmitSceneBatchEditingJobRequest(project_ids="p1,p2", output_config=OUTPUT),
        )
    assert (caught.value.status_code, caught.value.code) == (400, "InvalidParameter")
