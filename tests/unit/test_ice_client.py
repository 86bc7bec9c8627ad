"""IceClient: unit tests against a mock ICE, then against the real simulator over sockets."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import aiohttp
import httpx
import pytest

from app.core.errors import IceError, IceJobNotFound
from app.core.statuses import JobKind
from app.ice import verification
from app.ice.client import LIST_SPAN, IceClient
from app.settings import Settings

KEY_ID, SECRET = "test-ak", "test-secret"
BASE = Settings(
    ice_endpoint="http://ice.test",
    access_key_id=KEY_ID,
    access_key_secret=SECRET,
)
OUTPUT = json.dumps({"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out.mp4"})
Handler = Callable[[httpx.Request], httpx.Response]


class Sleeps:
    """A fake ``sleep`` that records what it was asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def ice_error(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"RequestId": "R-1", "HostId": "ice.test", "Code": code, "Message": f"{code} happened"}
    return httpx.Response(status, json=body, headers=headers)


def client_for(
    handler: Handler, settings: Settings = BASE, sleeps: Sleeps | None = None
) -> IceClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return IceClient(http, settings, sleep=sleeps or Sleeps())


def verify(request: httpx.Request) -> verification.VerifiedRequest:
    """Check a captured request exactly as the simulator (and ICE's gateway) would."""
    body = request.read()
    form = dict(parse_qsl(body.decode())) if body else {}
    return verification.verify_request(
        method=request.method,
        path=request.url.path,
        query=dict(parse_qsl(request.url.query.decode(), keep_blank_values=True)),
        form=form,
        headers=dict(request.headers),
        body=body,
        secret_for={KEY_ID: SECRET}.get,
        now=datetime.now(UTC),
    )


# -- wire shape ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v3", "v2"])
async def test_timeline_goes_in_the_form_body_and_the_rest_in_the_query(version: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"RequestId": "R", "JobId": "j1", "ProjectId": "p1"})

    settings = dataclasses.replace(BASE, ice_signature_version=version)  # type: ignore[arg-type]
    timeline = json.dumps({"VideoTracks": [{"Title": "a b+c*~/ 中文 🎬"}]}, ensure_ascii=False)
    job = await client_for(handler, settings).submit_media_producing_job(
        {"Timeline": timeline, "OutputMediaConfig": OUTPUT, "ClientToken": "t-1"}
    )
    assert job.job_id == "j1"
    assert job.project_id == "p1"
    request = seen[0]
    query = dict(parse_qsl(request.url.query.decode()))
    assert query["OutputMediaConfig"] == OUTPUT
    assert query["ClientToken"] == "t-1"
    assert "Timeline" not in query
    assert dict(parse_qsl(request.read().decode())) == {"Timeline": timeline}
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    verified = verify(request)
    assert verified.action == "SubmitMediaProducingJob"
    assert verified.signature_version == version


async def test_security_token_is_sent_and_signed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"RequestId": "R", "MediaProducingJob": {"JobId": "j"}})

    settings = dataclasses.replace(BASE, security_token="sts-token")
    await client_for(handler, settings).get_media_producing_job("j")
    assert seen[0].headers["x-acs-security-token"] == "sts-token"
    assert "x-acs-security-token" in seen[0].headers["authorization"]
    verify(seen[0])


async def test_get_parses_the_job_and_keeps_the_raw_answer() -> None:
    raw = {
        "JobId": "j1",
        "Status": "Failed",
        "Code": "ExceededMaximumValue",
        "Message": "too wide",
        "MediaURL": "",
        "UserData": '{"NotifyAddress":"http://x"}',
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"RequestId": "R", "MediaProducingJob": raw})

    job = await client_for(handler).get_media_producing_job("j1")
    assert (job.status, job.code, job.message) == ("Failed", "ExceededMaximumValue", "too wide")
    assert job.media_url is None
    assert job.raw == raw


async def test_batch_parses_sub_jobs_and_its_error_from_extend() -> None:
    raw = {
        "JobId": "b1",
        "Status": "Failed",
        "Extend": json.dumps({"ErrorCode": "AllFailed", "ErrorMessage": "every sub-job failed"}),
        "SubJobList": [{"JobId": "s1", "Status": "Failed", "ProjectId": "p1"}],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"RequestId": "R", "EditingBatchJob": raw})

    batch = await client_for(handler).get_batch_media_producing_job("b1")
    assert batch.code == "AllFailed"
    assert [(s.job_id, s.status, s.project_id) for s in batch.sub_jobs] == [("s1", "Failed", "p1")]


async def test_list_pages_carry_the_next_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        query = dict(parse_qsl(request.url.query.decode()))
        assert query["MaxResults"] == "100"
        if "NextToken" not in query:
            items = [{"JobId": "a", "Status": "Success"}]
            return httpx.Response(200, json={"MediaProducingJobList": items, "NextToken": "n2"})
        assert query["NextToken"] == "n2"
        return httpx.Response(200, json={"MediaProducingJobList": [{"JobId": "b"}]})

    client = client_for(handler)
    first = await client.list_media_producing_jobs({"Status": "Success"})
    assert [j.job_id for j in first.items] == ["a"]
    assert first.next_token == "n2"
    second = await client.list_media_producing_jobs({}, next_token=first.next_token)
    assert [j.job_id for j in second.items] == ["b"]
    assert second.next_token is None


@pytest.mark.parametrize("kind", [JobKind.JOB, JobKind.BATCH])
async def test_listing_pages_through_windows_and_stops_on_an_empty_page(kind: JobKind) -> None:
    """ICE may end a list with an empty page that still carries a NextToken: icehook stops
    there instead of asking forever; and it splits a span longer than ICE takes."""
    asked: list[dict[str, str]] = []
    key = "EditingBatchJobList" if kind == JobKind.BATCH else "MediaProducingJobList"

    def handler(request: httpx.Request) -> httpx.Response:
        query = dict(parse_qsl(request.url.query.decode()))
        asked.append(query)
        if "NextToken" not in query:
            return httpx.Response(
                200, json={key: [{"JobId": query["StartTime"]}], "NextToken": "n"}
            )
        return httpx.Response(200, json={key: [], "NextToken": "n"})  # empty, yet a token

    start = datetime(2026, 1, 1, tzinfo=UTC)
    listed = client_for(handler).listed(kind, start, start + LIST_SPAN + timedelta(days=1))
    ids = [item.job_id async for item in listed]
    assert ids == ["2026-01-01T00:00:00Z", "2026-01-30T00:00:00Z"]  # two windows
    assert len(asked) == 4  # each window: a page, then the empty one
    assert {q["EndTime"] for q in asked} == {"2026-01-30T00:00:00Z", "2026-01-31T00:00:00Z"}


# -- errors and retries -------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(404, "JobNotFound"), (400, "InvalidParameter")])
async def test_no_such_job_is_its_own_error(status: int, code: str) -> None:
    with pytest.raises(IceJobNotFound) as caught:
        await client_for(lambda r: ice_error(status, code)).get_media_producing_job("nope")
    assert (caught.value.status, caught.value.code, caught.value.request_id) == (
        status,
        code,
        "R-1",
    )


async def test_a_non_retryable_error_surfaces_at_once_with_ices_code() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return ice_error(400, "MissingParameter")

    with pytest.raises(IceError) as caught:
        await client_for(handler).submit_media_producing_job({"ProjectId": "p"})
    assert caught.value.code == "MissingParameter"
    assert caught.value.message == "MissingParameter happened"
    assert len(calls) == 1


async def test_throttling_is_retried_honouring_retry_after_and_resigned() -> None:
    answers = [ice_error(400, "Throttling.User", **{"x-acs-retry-after": "1500"})] * 2
    answers.append(httpx.Response(200, json={"RequestId": "R", "JobId": "j"}))
    nonces: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        nonces.append(request.headers["x-acs-signature-nonce"])
        verify(request)
        return answers.pop(0)

    sleeps = Sleeps()
    # No ClientToken: throttling proves ICE did nothing, so even this submit is retried.
    job = await client_for(handler, sleeps=sleeps).submit_media_producing_job({"ProjectId": "p"})
    assert job.job_id == "j"
    retry_sleeps = [s for s in sleeps.calls if s >= 1.5]
    assert len(retry_sleeps) == 2
    assert len(set(nonces)) == 3, "every attempt is signed anew"


async def test_gives_up_after_max_attempts() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return ice_error(503, "ServiceUnavailable")

    settings = dataclasses.replace(BASE, ice_max_attempts=3)
    with pytest.raises(IceError) as caught:
        await client_for(handler, settings).get_media_producing_job("j")
    assert caught.value.code == "ServiceUnavailable"
    assert len(calls) == 3


def timing_out(then: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            raise httpx.ReadTimeout("no answer", request=request)
        return then

    return handler, seen


@pytest.mark.parametrize("client_token", [None, "tok-1"])
async def test_a_timed_out_submit_is_not_repeated_even_with_a_client_token(
    client_token: str | None,
) -> None:
    """What ICE does with a repeated ClientToken is undocumented (docs/ice.md): it might make
    a second job. The submit flow looks for the job before any resubmission."""
    handler, seen = timing_out(httpx.Response(200, json={"JobId": "j"}))
    parameters = {"ProjectId": "p", "OutputMediaConfig": OUTPUT}
    if client_token is not None:
        parameters["ClientToken"] = client_token
    with pytest.raises(IceError) as caught:
        await client_for(handler).submit_media_producing_job(parameters)
    assert caught.value.code == "NoAnswer"
    assert len(seen) == 1


async def test_a_batch_submit_is_not_repeated_after_an_internal_error() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return ice_error(500, "InternalError")

    with pytest.raises(IceError):
        await client_for(handler).submit_scene_batch_editing_job({"ProjectIds": "a,b"})
    assert len(calls) == 1


async def test_a_refused_connection_is_retried_even_for_a_submit() -> None:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        if len(seen) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"JobId": "b"})

    job = await client_for(handler).submit_scene_batch_editing_job({"ProjectIds": "a"})
    assert job.job_id == "b"
    assert len(seen) == 2


async def test_an_answer_that_is_not_json_is_an_ice_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    settings = dataclasses.replace(BASE, ice_max_attempts=1)
    with pytest.raises(IceError) as caught:
        await client_for(handler, settings).get_media_producing_job("j")
    assert (caught.value.status, caught.value.code) == (502, "InvalidResponse")


async def test_submits_are_spaced_by_the_rate_limit() -> None:
    clock = [0.0]
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock[0] += seconds

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"JobId": "j"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    settings = dataclasses.replace(BASE, ice_submit_qps=4)
    client = IceClient(http, settings, sleep=sleep, clock=lambda: clock[0])
    for _ in range(9):
        await client.submit_media_producing_job({"ProjectId": "p"})
    # 9 submits at 4 per second: the last starts 2 s after the first.
    assert clock[0] == pytest.approx(2.0)
    assert len(waited) == 8


# -- against the real simulator, over sockets ------------------------------------------------


async def test_an_aiohttp_error_the_transport_lets_through_is_no_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise aiohttp.ServerDisconnectedError()

    with pytest.raises(IceError) as caught:
        await client_for(handler).submit_media_producing_job({"ProjectId": "p"})
    assert caught.value.code == "NoAnswer"
