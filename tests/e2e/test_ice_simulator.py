"""The ICE client against the real simulator over sockets: signing, polling, retries, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.core.errors import IceError, IceJobNotFound
from app.ice.client import IceClient
from app.settings import Settings
from app.simulator import SimulatorSettings, create_simulator_app
from tests.helpers.servers import http_client, serve

KEY_ID, SECRET = "test-ak", "test-secret"
BASE = Settings(ice_endpoint="http://ice.test", access_key_id=KEY_ID, access_key_secret=SECRET)
OUTPUT = json.dumps({"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out.mp4"})


@pytest.fixture
async def simulator_url() -> AsyncIterator[str]:
    settings = SimulatorSettings(access_keys={KEY_ID: SECRET}, job_seconds=0.5)
    async with serve(create_simulator_app(settings)) as url:
        yield url


async def short_sleep(seconds: float) -> None:
    await asyncio.sleep(min(seconds, 0.05))


def real_client(url: str, http: httpx.AsyncClient, **changes: Any) -> IceClient:
    return IceClient(
        http, dataclasses.replace(BASE, ice_endpoint=url, **changes), sleep=short_sleep
    )


@pytest.mark.parametrize("version", ["v3", "v2"])
async def test_submit_then_poll_until_success(simulator_url: str, version: str) -> None:
    async with http_client() as http:
        client = real_client(simulator_url, http, ice_signature_version=version)
        submitted = await client.submit_media_producing_job(
            {
                "Timeline": json.dumps({"VideoTracks": [{"Title": "开始 a+b *c*"}]}),
                "OutputMediaConfig": OUTPUT,
                "UserData": json.dumps({"NotifyAddress": "http://127.0.0.1:9/cb", "k": "v"}),
                "ClientToken": "poll-" + version,
            }
        )
        statuses = []
        for _ in range(200):
            job = await client.get_media_producing_job(submitted.job_id)
            statuses.append(job.status)
            if job.status in ("Success", "Failed"):
                break
            await asyncio.sleep(0.05)
        assert statuses[-1] == "Success"
        assert job.media_url
        assert json.loads(job.user_data or "{}")["k"] == "v"
        page = await client.list_media_producing_jobs({})
        assert submitted.job_id in {j.job_id for j in page.items}


async def test_retries_through_injected_api_faults(simulator_url: str) -> None:
    async with http_client(base_url=simulator_url) as http:
        await http.patch("/_sim/settings", json={"api_error_rate": 0.5})
        client = real_client(simulator_url, http, ice_max_attempts=12)
        submitted, unknown = 0, []
        for n in range(10):
            try:
                job = await client.submit_media_producing_job(
                    {"ProjectId": "p", "OutputMediaConfig": OUTPUT, "ClientToken": f"fault-{n}"}
                )
            except IceError as exc:
                # An InternalError leaves a submit's outcome unknown: the client does not
                # repeat it (flows.submit looks the job up); throttling it does retry.
                unknown.append(exc.code)
                continue
            submitted += 1
            # Reads are retried through both faults.
            assert (await client.get_media_producing_job(job.job_id)).job_id == job.job_id
        assert submitted > 0
        assert set(unknown) <= {"InternalError"}, unknown


async def test_non_retryable_errors_and_a_wrong_secret_surface_as_ice_errors(
    simulator_url: str,
) -> None:
    async with http_client() as http:
        with pytest.raises(IceError) as missing:
            await real_client(simulator_url, http).submit_media_producing_job({"ProjectId": "p"})
        assert (missing.value.status, missing.value.code) == (400, "MissingParameter")
        assert missing.value.request_id

        wrong = real_client(simulator_url, http, access_key_secret="not-the-secret")
        with pytest.raises(IceError) as refused:
            await wrong.get_media_producing_job("0" * 32)
        assert (refused.value.status, refused.value.code) == (403, "SignatureDoesNotMatch")

        with pytest.raises(IceJobNotFound):
            await real_client(simulator_url, http).get_batch_media_producing_job("f" * 32)
