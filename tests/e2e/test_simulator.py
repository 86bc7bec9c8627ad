"""The ICE simulator over real sockets: signed RPC calls, job lifecycle, callbacks, admin routes.

Requests are signed with ``app.signing`` and sent with httpx to a simulator served by uvicorn
(``tests.support.serve``); callbacks go to small receiver apps served the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.core.errors import ConfigError
from app.ice.signing import canonical_query, percent_encode, sign_v2, sign_v3, v2_params, v3_headers
from app.simulator import SimulatorSettings, create_simulator_app
from app.simulator import callbacks as callbacks_module
from app.simulator.callbacks import MAX_IN_FLIGHT_PER_RECEIVER
from app.simulator.state import FAILURES
from tests.helpers.servers import http_client, serve
from tests.helpers.waiting import eventually

KEY_ID = "sim-test-key"
SECRET = "sim-test-secret"
VERSION = "2020-11-09"
REQUEST_ID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
HEX32 = re.compile(r"[0-9a-f]{32}")
ICE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
OUTPUT = json.dumps({"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out/a.mp4"})
BATCH_OUTPUT = json.dumps(
    {"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out/{index}.mp4"}
)
TIMELINE = json.dumps({"VideoTracks": [{"VideoTrackClips": [{"MediaId": "m" * 32}]}]})
JOB_ORDER = ["Init", "Queuing", "Processing", "Success"]


# --- helpers ----------------------------------------------------------------------------------


class Ice:
    """Signed calls to one simulator, and its admin routes."""

    def __init__(self, base_url: str, http: httpx.AsyncClient, app: Starlette) -> None:
        self.base_url = base_url
        self.host = base_url.removeprefix("http://")
        self.http = http
        self.app = app

    async def call(
        self,
        action: str,
        params: Mapping[str, str] | None = None,
        *,
        form: Mapping[str, str] | None = None,
        signature: str = "v3",
        key_id: str = KEY_ID,
        secret: str = SECRET,
        version: str = VERSION,
        nonce: str | None = None,
        now: datetime | None = None,
        method: str = "POST",
    ) -> httpx.Response:
        query = dict(params or {})
        nonce = nonce or uuid.uuid4().hex
        now = now or datetime.now(UTC)
        body = canonical_query(form).encode() if form else b""
        content_type = "application/x-www-form-urlencoded" if form else None
        headers: dict[str, str] = {}
        if signature == "v3":
            headers = v3_headers(
                host=self.host,
                action=action,
                version=version,
                body=body,
                now=now,
                nonce=nonce,
                content_type=content_type,
            )
            headers["Authorization"] = sign_v3(
                method=method,
                path="/",
                query=query,
                headers=headers,
                body=body,
                access_key_id=key_id,
                access_key_secret=secret,
            )
        else:
            query = {
                **v2_params(
                    action=action, version=version, access_key_id=key_id, now=now, nonce=nonce
                ),
                **query,
            }
            query["Signature"] = sign_v2(
                {**query, **(form or {})}, method=method, access_key_secret=secret
            )
            if content_type:
                headers["content-type"] = content_type
        return await self.http.request(
            method, f"{self.base_url}/?{canonical_query(query)}", content=body, headers=headers
        )

    async def ok(self, action: str, params: Mapping[str, str] | None = None, **kw: Any) -> Any:
        response = await self.call(action, params, **kw)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert REQUEST_ID.fullmatch(answer["RequestId"])
        return answer

    async def submit(self, **params: str) -> Any:
        query = {"OutputMediaConfig": OUTPUT, **params}
        timeline = query.pop("Timeline", None)
        if "ProjectId" not in query and "TemplateId" not in query and timeline is None:
            timeline = TIMELINE
        return await self.ok(
            "SubmitMediaProducingJob", query, form={"Timeline": timeline} if timeline else None
        )

    async def job(self, job_id: str) -> Any:
        return (await self.ok("GetMediaProducingJob", {"JobId": job_id}))["MediaProducingJob"]

    async def callback_log(self, **filters: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"{self.base_url}/_sim/callbacks", params=filters)
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()["callbacks"]
        return entries


def assert_ice_error(response: httpx.Response, status: int, code: str, host: str) -> str:
    """The answer is ICE's error shape with this status and Code; returns its Message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert body["Code"] == code
    assert REQUEST_ID.fullmatch(body["RequestId"])
    assert body["HostId"] == host
    assert body["Message"]
    assert body["Recommend"] == (
        f"https://api.aliyun.com/troubleshoot?q={code}&product=ICE&requestId={body['RequestId']}"
    )
    message: str = body["Message"]
    return message


@contextlib.asynccontextmanager
async def simulator(**behaviour: Any) -> AsyncIterator[Ice]:
    app = create_simulator_app(SimulatorSettings(access_keys={KEY_ID: SECRET}, **behaviour))
    async with serve(app) as base_url, http_client(timeout=30) as http:
        yield Ice(base_url, http, app)


@dataclass
class Delivery:
    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A callback receiver that records every POST, then waits ``delay`` and answers ``status``.

    ``delay`` applies to the first ``slow`` requests only, or to all when ``slow`` is None.
    """

    status: int = 200
    delay: float = 0.0
    slow: int | None = None
    received: list[Delivery] = field(default_factory=list)
    url: str = ""
    busy: int = 0  # requests being answered right now
    most_busy: int = 0

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            body = await request.body()
            self.received.append(Delivery(time.time(), dict(request.headers), body))
            self.busy += 1
            self.most_busy = max(self.most_busy, self.busy)
            try:
                if self.slow is None or len(self.received) <= self.slow:
                    await asyncio.sleep(self.delay)
            finally:
                self.busy -= 1
            return PlainTextResponse("success", status_code=self.status)

        return Starlette(routes=[Route("/ice/callback", receive, methods=["POST"])])


@contextlib.asynccontextmanager
async def receiver(
    status: int = 200, delay: float = 0.0, slow: int | None = None
) -> AsyncIterator[Receiver]:
    target = Receiver(status=status, delay=delay, slow=slow)
    async with serve(target.app()) as base_url:
        target.url = f"{base_url}/ice/callback"
        yield target


async def settle(seconds: float) -> None:
    """Wait on purpose, to see that nothing more happens."""
    await asyncio.sleep(seconds)


def user_data(url: str, **extra: str) -> str:
    return json.dumps({"NotifyAddress": url, **extra})


# --- lifecycle --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_status_follows_the_clock_through_every_phase() -> None:
    clock = FakeClock()
    app = create_simulator_app(
        SimulatorSettings(access_keys={KEY_ID: SECRET}, job_seconds=10.0), clock=clock
    )
    async with serve(app) as base_url, http_client(timeout=30) as http:
        ice = Ice(base_url, http, app)
        submitted = await ice.submit()
        start = clock.now
        seen = []
        for offset in (0.0, 0.5, 1.5, 3.5, 9.9, 10.0, 50.0):
            clock.now = start + offset
            job = await ice.job(submitted["JobId"])
            seen.append((job["Status"], job["Progress"]))
        assert [status for status, _ in seen] == [
            "Init",
            "Init",
            "Queuing",
            "Processing",
            "Processing",
            "Success",
            "Success",
        ]
        assert [progress for _, progress in seen] == [0, 0, 0, 7, 98, 100, 100]
        assert job["CompleteTime"] == datetime.fromtimestamp(start + 10.0, UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )


async def test_job_runs_init_to_success_in_real_time() -> None:
    async with simulator(job_seconds=3.0) as ice:
        submitted = await ice.submit(UserData=json.dumps({"Key": "value"}))
        assert HEX32.fullmatch(submitted["JobId"])
        assert HEX32.fullmatch(submitted["MediaId"])
        assert HEX32.fullmatch(submitted["ProjectId"])  # made for the bare Timeline
        seen: list[str] = []
        job: dict[str, Any] = {}

        async def done() -> bool:
            nonlocal job
            job = await ice.job(submitted["JobId"])
            if not seen or seen[-1] != job["Status"]:
                seen.append(job["Status"])
            return bool(job["Status"] == "Success")

        await eventually(done, every=0.03)
        assert seen == JOB_ORDER
        assert job["JobId"] == submitted["JobId"]
        assert job["MediaId"] == submitted["MediaId"]
        assert job["ProjectId"] == submitted["ProjectId"]
        assert job["MediaURL"] == json.loads(OUTPUT)["MediaURL"]
        assert job["Timeline"] == TIMELINE
        assert job["UserData"] == json.dumps({"Key": "value"})
        assert (job["Code"], job["Message"]) == ("", "")
        assert job["Progress"] == 100
        assert isinstance(job["Duration"], float)
        assert job["Duration"] > 0
        for name in ("CreateTime", "ModifiedTime", "CompleteTime"):
            assert ICE_TIME.fullmatch(job[name])


async def test_failure_rate_one_fails_every_job_with_code_and_message() -> None:
    async with simulator(job_seconds=0.2, failure_rate=1.0) as ice:
        submitted = await ice.submit()
        job: dict[str, Any] = {}

        async def final() -> bool:
            nonlocal job
            job = await ice.job(submitted["JobId"])
            return job["Status"] in ("Success", "Failed")

        await eventually(final)
        assert job["Status"] == "Failed"
        assert (job["Code"], job["Message"]) in FAILURES
        assert "Duration" not in job
        assert ICE_TIME.fullmatch(job["CompleteTime"])


# --- callbacks --------------------------------------------------------------------------------


async def test_callback_has_ices_envelope_with_user_data_as_a_string() -> None:
    async with receiver() as target, simulator(job_seconds=0.2) as ice:
        data = user_data(target.url, Order="42")
        submitted = await ice.submit(UserData=data)

        async def arrived() -> bool:
            return len(target.received) == 1

        await eventually(arrived)
        delivery = target.received[0]
        assert delivery.headers["content-type"] == "application/json"
        assert "x-ice-signature" not in delivery.headers
        event = json.loads(delivery.body)
        assert set(event) == {"EventType", "UserId", "EventTime", "MessageBody"}
        assert event["EventType"] == "ProduceMediaComplete"
        assert event["UserId"] == SimulatorSettings.user_id
        assert ICE_TIME.fullmatch(event["EventTime"])
        assert event["MessageBody"] == {
            "Status": "Success",
            "JobId": submitted["JobId"],
            "MediaId": submitted["MediaId"],
            "MediaURL": json.loads(OUTPUT)["MediaURL"],
            "ProjectId": submitted["ProjectId"],
            "ErrorCode": "",
            "ErrorMessage": "",
            "UserData": data,
        }
        # By the time the callback arrives, ICE's API agrees with it.
        assert (await ice.job(submitted["JobId"]))["Status"] == "Success"
        await settle(1.2)
        assert len(target.received) == 1
        [entry] = await ice.callback_log(job_id=submitted["JobId"])
        assert entry["event_type"] == "ProduceMediaComplete"
        assert entry["status_sent"] == "Success"
        assert (entry["attempt"], entry["delivery"]) == (1, 1)
        assert entry["url"] == target.url
        assert entry["response_status"] == 200
        assert entry["error"] is None
        assert entry["duration_ms"] >= 0
        datetime.fromisoformat(entry["at"])


async def test_failed_job_calls_back_with_error_code() -> None:
    async with receiver() as target, simulator(job_seconds=0.2, failure_rate=1.0) as ice:
        submitted = await ice.submit(UserData=user_data(target.url))

        async def arrived() -> bool:
            return len(target.received) == 1

        await eventually(arrived)
        body = json.loads(target.received[0].body)["MessageBody"]
        assert body["Status"] == "Failed"
        assert body["JobId"] == submitted["JobId"]
        assert (body["ErrorCode"], body["ErrorMessage"]) in FAILURES


async def test_receiver_answering_500_gets_three_attempts_a_second_apart() -> None:
    async with receiver(status=500) as target, simulator(job_seconds=0.2) as ice:
        submitted = await ice.submit(UserData=user_data(target.url))

        async def three() -> bool:
            return len(target.received) == 3

        await eventually(three)
        await settle(2.0)  # a fourth attempt would come one second after the third
        assert len(target.received) == 3
        times = [delivery.at for delivery in target.received]
        assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(times))
        assert len({delivery.body for delivery in target.received}) == 1
        log = await ice.callback_log(job_id=submitted["JobId"])
        assert [entry["attempt"] for entry in log] == [1, 2, 3]
        assert {entry["response_status"] for entry in log} == {500}
        assert all(entry["error"] for entry in log)


async def test_receiver_slower_than_three_seconds_counts_as_failed() -> None:
    async with receiver(delay=4.0, slow=1) as target, simulator(job_seconds=0.1) as ice:
        submitted = await ice.submit(UserData=user_data(target.url))

        async def retried() -> bool:
            log = await ice.callback_log(job_id=submitted["JobId"])
            return len(log) == 2

        await eventually(retried, seconds=20)
        first, second = await ice.callback_log(job_id=submitted["JobId"])
        assert first["attempt"] == 1
        assert first["response_status"] is None
        assert "3 s" in first["error"]
        # The receiver got it, but too late: ICE tries again, and this time it answers fast.
        assert (second["attempt"], second["response_status"], second["error"]) == (2, 200, None)
        assert len(target.received) == 2
        assert target.received[1].at - target.received[0].at >= 3.9  # 3 s timeout + 1 s pause


async def test_drop_rate_one_sends_nothing_and_logs_the_drop() -> None:
    async with receiver() as target, simulator(job_seconds=0.1, callback_drop_rate=1.0) as ice:
        submitted = await ice.submit(UserData=user_data(target.url))

        async def logged() -> bool:
            return bool(await ice.callback_log(job_id=submitted["JobId"]))

        await eventually(logged)
        await settle(1.0)
        assert target.received == []
        [entry] = await ice.callback_log(job_id=submitted["JobId"])
        assert entry["attempt"] == 0
        assert entry["error"] == "dropped by fault injection"
        assert entry["response_status"] is None


async def test_duplicate_rate_one_delivers_the_same_body_twice() -> None:
    async with receiver() as target, simulator(job_seconds=0.1, callback_duplicate_rate=1) as ice:
        submitted = await ice.submit(UserData=user_data(target.url))

        async def both() -> bool:
            return len(target.received) == 2

        await eventually(both)
        await settle(1.0)
        assert len(target.received) == 2
        assert target.received[0].body == target.received[1].body
        log = await ice.callback_log(job_id=submitted["JobId"])
        assert sorted(entry["delivery"] for entry in log) == [1, 2]
        assert {entry["attempt"] for entry in log} == {1}


async def test_auth_key_signs_each_callback_with_md5_of_url_timestamp_key() -> None:
    key = "AuthKey123"
    async with receiver() as target, simulator(job_seconds=0.1, callback_auth_key=key) as ice:
        await ice.submit(UserData=user_data(target.url))

        async def arrived() -> bool:
            return len(target.received) == 1

        await eventually(arrived)
        headers = target.received[0].headers
        timestamp = headers["x-ice-timestamp"]
        assert timestamp.isdigit()
        assert abs(int(timestamp) - time.time()) < 60
        signed = f"{target.url}|{timestamp}|{key}".encode()
        expected = hashlib.md5(signed, usedforsecurity=False).hexdigest()
        assert headers["x-ice-signature"] == expected


async def test_mns_notify_address_is_logged_not_sent() -> None:
    async with simulator(job_seconds=0.1) as ice:
        submitted = await ice.submit(UserData=json.dumps({"NotifyAddress": "ice-callback-demo"}))

        async def logged() -> bool:
            return bool(await ice.callback_log(job_id=submitted["JobId"]))

        await eventually(logged)
        [entry] = await ice.callback_log(job_id=submitted["JobId"])
        assert entry["attempt"] == 0
        assert "MNS" in entry["error"]


async def test_delayed_callbacks_all_arrive_once() -> None:
    async with (
        receiver() as target,
        simulator(job_seconds=0.1, callback_delay_seconds=1.0, submit_qps=1000) as ice,
    ):
        jobs = [await ice.submit(UserData=user_data(target.url)) for _ in range(8)]

        async def all_arrived() -> bool:
            return len(target.received) == 8

        await eventually(all_arrived)
        await settle(1.2)
        arrived = [
            json.loads(delivery.body)["MessageBody"]["JobId"] for delivery in target.received
        ]
        assert sorted(arrived) == sorted(job["JobId"] for job in jobs)


async def test_a_slow_receiver_neither_gets_unbounded_sockets_nor_delays_others() -> None:
    async with (
        receiver(delay=2.0) as slow,
        receiver() as fast,
        simulator(job_seconds=0.5, submit_qps=1000) as ice,
    ):
        many = MAX_IN_FLIGHT_PER_RECEIVER + 16
        await asyncio.gather(*(ice.submit(UserData=user_data(slow.url)) for _ in range(many)))
        await ice.submit(UserData=user_data(fast.url))

        async def fast_arrived() -> bool:
            return len(fast.received) == 1

        await eventually(fast_arrived)
        # The fast receiver was served while the slow one still held every slot it may have.
        assert slow.busy > 0
        assert len(slow.received) < many

        async def slow_done() -> bool:
            return len(slow.received) == many and slow.busy == 0

        await eventually(slow_done, seconds=30)
        assert slow.most_busy <= MAX_IN_FLIGHT_PER_RECEIVER
        log = await ice.callback_log()
        assert all(entry["response_status"] == 200 for entry in log)  # waiting is not failing


async def test_callback_log_filters_by_since() -> None:
    async with receiver() as target, simulator(job_seconds=0.1) as ice:
        first = await ice.submit(UserData=user_data(target.url))

        async def arrived() -> bool:
            return len(target.received) == 1

        await eventually(arrived)
        [entry] = await ice.callback_log()
        later = datetime.fromisoformat(entry["at"]) + timedelta(microseconds=1)
        assert await ice.callback_log(since=later.isoformat()) == []
        assert await ice.callback_log(since=entry["at"]) == [entry]
        assert entry["job_id"] == first["JobId"]
        response = await ice.http.get(f"{ice.base_url}/_sim/callbacks", params={"since": "soon"})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"


# --- submission rules -------------------------------------------------------------------------


async def test_client_token_replays_the_job_or_refuses_other_parameters() -> None:
    async with simulator(job_seconds=60) as ice:
        first = await ice.submit(ClientToken="order-42")
        again = await ice.submit(ClientToken="order-42")
        assert again["JobId"] == first["JobId"]
        assert again["MediaId"] == first["MediaId"]
        assert again["ProjectId"] == first["ProjectId"]
        assert again["RequestId"] != first["RequestId"]
        other = await ice.submit(ClientToken="order-43")
        assert other["JobId"] != first["JobId"]
        response = await ice.call(
            "SubmitMediaProducingJob",
            {"OutputMediaConfig": OUTPUT, "ClientToken": "order-42", "UserData": "{}"},
            form={"Timeline": TIMELINE},
        )
        assert_ice_error(response, 400, "IdempotentParameterMismatch", ice.host)
        listed = await ice.ok("ListMediaProducingJobs", {"MaxResults": "100"})
        assert len(listed["MediaProducingJobList"]) == 2


@pytest.mark.parametrize(
    ("params", "form", "code", "named"),
    [
        ({}, {"Timeline": TIMELINE}, "MissingParameter", "OutputMediaConfig"),
        ({"OutputMediaConfig": OUTPUT}, {}, "MissingParameter", "ProjectId"),
        (
            {"OutputMediaConfig": OUTPUT, "ProjectId": "p" * 32},
            {"Timeline": TIMELINE},
            "InvalidParameter",
            "Timeline",
        ),
        (
            {"OutputMediaConfig": OUTPUT, "ProjectId": "p" * 32, "TemplateId": "t" * 32},
            {},
            "InvalidParameter",
            "TemplateId",
        ),
        (
            {"OutputMediaConfig": OUTPUT, "TemplateId": "t" * 32},
            {},
            "MissingParameter",
            "ClipsParam",
        ),
        ({"OutputMediaConfig": OUTPUT}, {"Timeline": "{not json"}, "InvalidParameter", "Timeline"),
        (
            {"OutputMediaConfig": "{}"},
            {"Timeline": TIMELINE},
            "InvalidParameter",
            "OutputMediaConfig",
        ),
        (
            {"OutputMediaConfig": OUTPUT, "UserData": json.dumps({"k": "x" * 504})},
            {"Timeline": TIMELINE},
            "InvalidParameter",
            "UserData",
        ),
        (
            {"OutputMediaConfig": OUTPUT, "UserData": "not json"},
            {"Timeline": TIMELINE},
            "InvalidParameter",
            "UserData",
        ),
        (
            {"OutputMediaConfig": OUTPUT, "ClientToken": "x" * 65},
            {"Timeline": TIMELINE},
            "InvalidParameter",
            "ClientToken",
        ),
    ],
)
async def test_submit_refuses_bad_parameters(
    ice: Ice, params: dict[str, str], form: dict[str, str], code: str, named: str
) -> None:
    response = await ice.call("SubmitMediaProducingJob", params, form=form or None)
    assert f'"{named}' in assert_ice_error(response, 400, code, ice.host)


async def test_user_data_of_exactly_512_bytes_is_accepted(ice: Ice) -> None:
    # Counted in UTF-8 bytes, not characters: 261 characters here.
    data = json.dumps({"k": "é" * 251 + "x"}, ensure_ascii=False)
    assert len(data.encode()) == 512
    submitted = await ice.submit(UserData=data)
    assert (await ice.job(submitted["JobId"]))["UserData"] == data
    assert len(json.dumps({"k": "x" * 504}).encode()) == 513  # the refused case above


async def test_template_job_and_project_job_are_accepted(ice: Ice) -> None:
    clips = json.dumps({"VideoArray": ["a", "b"]})
    template = await ice.submit(TemplateId="t" * 32, ClipsParam=clips)
    job = await ice.job(template["JobId"])
    assert (job["TemplateId"], job["ClipsParam"]) == ("t" * 32, clips)
    assert "Timeline" not in job
    project = await ice.submit(ProjectId="p" * 32)
    assert project["ProjectId"] == "p" * 32


# --- signatures -------------------------------------------------------------------------------


@pytest.fixture
async def ice() -> AsyncIterator[Ice]:
    async with simulator(job_seconds=30) as running:
        yield running


@pytest.mark.parametrize("signature", ["v3", "v2"])
async def test_wrong_secret_is_signature_does_not_match(ice: Ice, signature: str) -> None:
    response = await ice.call(
        "GetMediaProducingJob", {"JobId": "a" * 32}, secret="wrong", signature=signature
    )
    assert_ice_error(response, 403, "SignatureDoesNotMatch", ice.host)


@pytest.mark.parametrize("signature", ["v3", "v2"])
async def test_unknown_access_key_is_not_found(ice: Ice, signature: str) -> None:
    response = await ice.call(
        "GetMediaProducingJob", {"JobId": "a" * 32}, key_id="nobody", signature=signature
    )
    assert_ice_error(response, 404, "InvalidAccessKeyId.NotFound", ice.host)


@pytest.mark.parametrize("signature", ["v3", "v2"])
async def test_reused_nonce_is_refused(ice: Ice, signature: str) -> None:
    first = await ice.call("ListMediaProducingJobs", nonce="once", signature=signature)
    assert first.status_code == 200, first.text
    again = await ice.call("ListMediaProducingJobs", nonce="once", signature=signature)
    assert_ice_error(again, 400, "SignatureNonceUsed", ice.host)


async def test_stale_date_is_expired(ice: Ice) -> None:
    stale = datetime.now(UTC) - timedelta(minutes=20)
    response = await ice.call("ListMediaProducingJobs", now=stale)
    assert_ice_error(response, 400, "InvalidTimeStamp.Expired", ice.host)


async def test_unsigned_call_is_missing_signature(ice: Ice) -> None:
    response = await ice.http.post(f"{ice.base_url}/?Action=ListMediaProducingJobs")
    message = assert_ice_error(response, 400, "MissingParameter", ice.host)
    assert "Signature" in message
    assert "Authorization" in message


async def test_unknown_action_and_version(ice: Ice) -> None:
    response = await ice.call("DescribeNothing")
    assert_ice_error(response, 404, "InvalidAction.NotFound", ice.host)
    response = await ice.call("ListMediaProducingJobs", version="2017-03-21")
    assert_ice_error(response, 400, "NoSuchVersion", ice.host)


async def test_v2_call_with_a_form_body_is_accepted(ice: Ice) -> None:
    timeline = json.dumps({"VideoTracks": [], "Note": "a b+c*d ~ é 视频"})
    response = await ice.call(
        "SubmitMediaProducingJob",
        {"OutputMediaConfig": OUTPUT, "UserData": json.dumps({"Note": "x y+z"})},
        form={"Timeline": timeline},
        signature="v2",
    )
    assert response.status_code == 200, response.text
    job = await ice.job(response.json()["JobId"])
    assert job["Timeline"] == timeline
    assert job["UserData"] == json.dumps({"Note": "x y+z"})


@pytest.mark.parametrize("signature", ["v3", "v2"])
async def test_get_works_as_well_as_post(ice: Ice, signature: str) -> None:
    response = await ice.call("ListMediaProducingJobs", method="GET", signature=signature)
    assert response.status_code == 200, response.text
    assert response.json()["MediaProducingJobList"] == []


async def test_plus_in_a_query_means_a_space(ice: Ice) -> None:
    # The SDK's query is quote_plus-encoded: '+' is a space, '%2B' a plus. Signed as decoded.
    data = json.dumps({"Note": "a b+c"})
    query = {"OutputMediaConfig": OUTPUT, "UserData": data, "ProjectId": "p" * 32}
    headers = v3_headers(
        host=ice.host,
        action="SubmitMediaProducingJob",
        version=VERSION,
        body=b"",
        now=datetime.now(UTC),
        nonce=uuid.uuid4().hex,
    )
    headers["Authorization"] = sign_v3(
        method="POST",
        path="/",
        query=query,
        headers=headers,
        body=b"",
        access_key_id=KEY_ID,
        access_key_secret=SECRET,
    )
    wire = "&".join(
        f"{name}={percent_encode(value).replace('%20', '+')}" for name, value in query.items()
    )
    assert "+" in wire
    assert "%2B" in wire
    response = await ice.http.post(f"{ice.base_url}/?{wire}", headers=headers)
    assert response.status_code == 200, response.text
    assert (await ice.job(response.json()["JobId"]))["UserData"] == data


# --- queries ----------------------------------------------------------------------------------


async def test_unknown_job_is_not_found_and_a_malformed_id_is_invalid(ice: Ice) -> None:
    for action in ("GetMediaProducingJob", "GetBatchMediaProducingJob"):
        response = await ice.call(action, {"JobId": "0" * 32})
        message = assert_ice_error(response, 404, "JobNotFound", ice.host)
        assert message == "The specified job not found"
        response = await ice.call(action, {"JobId": "not-a-job"})
        assert "JobId" in assert_ice_error(response, 400, "InvalidParameter", ice.host)
        response = await ice.call(action)
        assert "JobId" in assert_ice_error(response, 400, "MissingParameter", ice.host)


async def test_list_pages_250_jobs_each_exactly_once_while_more_arrive() -> None:
    async with simulator(job_seconds=60, submit_qps=10_000) as ice:
        await asyncio.gather(*(ice.submit() for _ in range(250)))
        for sort_by in ("CreationTime:Desc", "CreationTime:Asc"):
            seen: list[str] = []
            token: str | None = None
            pages = 0
            while True:
                params = {"MaxResults": "100", "SortBy": sort_by}
                if token:
                    params["NextToken"] = token
                page = await ice.ok("ListMediaProducingJobs", params)
                assert page["MaxResults"] == "100"
                seen += [job["JobId"] for job in page["MediaProducingJobList"]]
                pages += 1
                token = page.get("NextToken")
                if not token:
                    break
                await ice.submit()  # a new job between pages must not shift the pages
            assert pages == 3
            # Newest first: the jobs added meanwhile are newer than the cursor and never show.
            # Oldest first: they are appended at the end, and show once each.
            assert len(seen) == (250 if sort_by == "CreationTime:Desc" else 250 + 2 + 2)
            assert len(set(seen)) == len(seen)
        response = await ice.call("ListMediaProducingJobs", {"MaxResults": "101"})
        assert_ice_error(response, 400, "InvalidParameter", ice.host)
        response = await ice.call("ListMediaProducingJobs", {"NextToken": "garbage!"})
        assert_ice_error(response, 400, "InvalidParameter", ice.host)


async def test_list_filters_time_span_and_status(ice: Ice) -> None:
    now = datetime.now(UTC)

    def ice_time(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    submitted = await ice.submit()
    listed = await ice.ok(
        "ListMediaProducingJobs",
        {
            "StartTime": ice_time(now - timedelta(minutes=1)),
            "EndTime": ice_time(now + timedelta(minutes=1)),
        },
    )
    assert [job["JobId"] for job in listed["MediaProducingJobList"]] == [submitted["JobId"]]
    assert "NextToken" not in listed
    listed = await ice.ok("ListMediaProducingJobs", {"Status": "Success"})
    assert listed["MediaProducingJobList"] == []
    response = await ice.call(
        "ListMediaProducingJobs",
        {"StartTime": ice_time(now - timedelta(days=31)), "EndTime": ice_time(now)},
    )
    assert "EndTime" in assert_ice_error(response, 400, "InvalidParameter", ice.host)


# --- batches ----------------------------------------------------------------------------------


async def test_scene_batch_runs_a_sub_job_per_project_and_calls_back() -> None:
    async with receiver() as target, simulator(job_seconds=0.3) as ice:
        projects = [uuid.uuid4().hex for _ in range(3)]
        data = user_data(target.url, Batch="b1")
        output = json.dumps(
            {"MediaURL": "https://b.oss-cn-shanghai.aliyuncs.com/x_{index}.mp4", "Width": 1080}
        )
        submitted = await ice.ok(
            "SubmitSceneBatchEditingJob",
            {"ProjectIds": ",".join(projects), "OutputConfig": output, "UserData": data},
        )
        batch_id = submitted["JobId"]
        assert HEX32.fullmatch(batch_id)

        async def all_arrived() -> bool:
            return len(target.received) == 4

        await eventually(all_arrived)
        events = [json.loads(delivery.body) for delivery in target.received]
        assert [event["EventType"] for event in events] == ["ProduceMediaComplete"] * 3 + [
            "BatchProduceMediaComplete"
        ]
        assert events[3]["MessageBody"] == {
            "Status": "Finished",
            "JobId": batch_id,
            "UserData": data,
        }
        batch = (await ice.ok("GetBatchMediaProducingJob", {"JobId": batch_id}))["EditingBatchJob"]
        assert batch["JobId"] == batch_id
        assert batch["JobType"] == "Scene_Batch_Editing"
        assert batch["Status"] == "Finished"
        assert batch["UserData"] == data
        assert batch["OutputConfig"] == output
        assert json.loads(batch["ExtendInput"])["ProjectIds"] == projects
        assert json.loads(batch["Extend"]) == {"ErrorCode": "", "ErrorMessage": ""}
        subs = batch["SubJobList"]
        assert [sub["ProjectId"] for sub in subs] == projects
        assert {sub["Status"] for sub in subs} == {"Success"}
        assert [sub["MediaURL"] for sub in subs] == [
            f"https://b.oss-cn-shanghai.aliyuncs.com/x_{index}.mp4" for index in (1, 2, 3)
        ]
        assert {event["MessageBody"]["JobId"] for event in events[:3]} == {
            sub["JobId"] for sub in subs
        }
        assert all(event["MessageBody"]["UserData"] == data for event in events)
        sub_job = await ice.job(subs[0]["JobId"])
        assert (sub_job["Status"], sub_job["UserData"]) == ("Success", data)
        listed = await ice.ok("ListMediaProducingJobs", {"MasterJobId": batch_id})
        assert {job["JobId"] for job in listed["MediaProducingJobList"]} == {
            sub["JobId"] for sub in subs
        }
        batches = await ice.ok("ListBatchMediaProducingJobs", {"Status": "Finished"})
        [listed_batch] = batches["EditingBatchJobList"]
        assert listed_batch["JobId"] == batch_id
        assert "SubJobList" not in listed_batch
        truth = (await ice.http.get(f"{ice.base_url}/_sim/jobs/{batch_id}")).json()
        assert truth["kind"] == "batch"
        assert len(truth["sub_jobs"]) == 3


async def test_batch_fails_only_when_every_sub_job_failed() -> None:
    async with simulator(job_seconds=0.1, failure_rate=1.0) as ice:
        submitted = await ice.ok(
            "SubmitSceneBatchEditingJob",
            {"ProjectIds": "p1,p2", "OutputConfig": BATCH_OUTPUT},
        )
        batch: dict[str, Any] = {}

        async def final() -> bool:
            nonlocal batch
            answer = await ice.ok("GetBatchMediaProducingJob", {"JobId": submitted["JobId"]})
            batch = answer["EditingBatchJob"]
            return batch["Status"] in ("Finished", "Failed")

        await eventually(final)
        assert batch["Status"] == "Failed"
        assert json.loads(batch["Extend"])["ErrorCode"]
        assert {sub["Status"] for sub in batch["SubJobList"]} == {"Failed"}
        assert all(sub["ErrorCode"] and sub["ErrorMessage"] for sub in batch["SubJobList"])


# --- faults and limits ------------------------------------------------------------------------


async def test_submits_over_30_per_second_are_throttled() -> None:
    async with simulator(job_seconds=60) as ice:
        responses = await asyncio.gather(
            *(
                ice.call(
                    "SubmitMediaProducingJob",
                    {"OutputMediaConfig": OUTPUT},
                    form={"Timeline": TIMELINE},
                )
                for _ in range(80)
            )
        )
        statuses = [response.status_code for response in responses]
        throttled = [response for response in responses if response.status_code != 200]
        assert throttled, statuses
        assert statuses.count(200) >= 30
        for response in throttled:
            message = assert_ice_error(response, 400, "Throttling.User", ice.host)
            assert message == "Request was denied due to user flow control."
            assert int(response.headers["x-acs-retry-after"]) > 0
        # Queries are not limited.
        assert (await ice.call("ListMediaProducingJobs")).status_code == 200


async def test_api_error_rate_one_answers_only_throttling_or_internal_error() -> None:
    async with simulator(api_error_rate=1.0) as ice:
        codes = set()
        for _ in range(30):
            response = await ice.call("ListMediaProducingJobs")
            code = response.json()["Code"]
            assert_ice_error(
                response, {"Throttling.User": 400, "InternalError": 500}[code], code, ice.host
            )
            assert ("x-acs-retry-after" in response.headers) == (code == "Throttling.User")
            codes.add(code)
        assert codes == {"Throttling.User", "InternalError"}


async def test_api_latency_delays_every_answer() -> None:
    async with simulator(api_latency_ms=300) as ice:
        started = time.monotonic()
        response = await ice.call("ListMediaProducingJobs")
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.29


# --- admin routes -----------------------------------------------------------------------------


async def test_settings_patch_validates_and_takes_effect(ice: Ice) -> None:
    url = f"{ice.base_url}/_sim/settings"
    shown = (await ice.http.get(url)).json()
    assert shown["job_seconds"] == 30.0
    assert shown["failure_rate"] == 0.0
    assert shown["callback_auth_key"] == "unset"
    bad_changes: list[dict[str, object]] = [
        {"failure_rate": 1.5},
        {"job_seconds": -1},
        {"api_latency_ms": "fast"},
        {"submit_qps": 1},
        {"nope": 1},
        {"failure_rate": True},
    ]
    for bad in bad_changes:
        response = await ice.http.patch(url, json=bad)
        assert response.status_code == 422, (bad, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert next(iter(bad)) in error["message"]
    response = await ice.http.patch(url, content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert (await ice.http.get(url)).json() == shown  # nothing changed

    response = await ice.http.patch(
        url, json={"job_seconds": 0.1, "failure_rate": 1, "callback_auth_key": "Secret123Key"}
    )
    assert response.status_code == 200, response.text
    assert "Secret123Key" not in response.text
    changed = response.json()
    assert (changed["job_seconds"], changed["failure_rate"]) == (0.1, 1.0)
    assert changed["callback_auth_key"] == "set"
    submitted = await ice.submit()
    job: dict[str, Any] = {}

    async def final() -> bool:
        nonlocal job
        job = await ice.job(submitted["JobId"])
        return job["Status"] in ("Success", "Failed")

    await eventually(final)
    assert job["Status"] == "Failed"


async def test_sim_jobs_shows_the_truth_or_404(ice: Ice) -> None:
    submitted = await ice.submit(UserData='{"a":1}')
    response = await ice.http.get(f"{ice.base_url}/_sim/jobs/{submitted['JobId']}")
    assert response.status_code == 200
    truth = response.json()
    assert truth["job_id"] == submitted["JobId"]
    assert truth["kind"] == "job"
    assert truth["status"] in ("Init", "Queuing")
    assert truth["final_status"] == "Success"
    assert truth["user_data"] == '{"a":1}'
    assert set(truth["status_times"]) == {"Init", "Queuing", "Processing", "Success"}
    response = await ice.http.get(f"{ice.base_url}/_sim/jobs/{'0' * 32}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- settings ---------------------------------------------------------------------------------


def test_settings_from_env_reads_keys_and_behaviour() -> None:
    settings = SimulatorSettings.from_env(
        {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "ak",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "the-secret-value",
            "ICEHOOK_SIM_ACCESS_KEYS": "a:1, b:2:3",
            "ICEHOOK_SIM_JOB_SECONDS": "0.5",
            "ICEHOOK_SIM_FAILURE_RATE": "1",
            "ICEHOOK_SIM_CALLBACK_AUTH_KEY": "Key123abc",
            "ICEHOOK_SIM_API_LATENCY_MS": "",
        }
    )
    assert dict(settings.access_keys) == {"ak": "the-secret-value", "a": "1", "b": "2:3"}
    assert (settings.job_seconds, settings.failure_rate) == (0.5, 1.0)
    assert settings.callback_auth_key == "Key123abc"
    assert settings.api_latency_ms == 0.0
    assert "Key123abc" not in repr(settings)
    assert "the-secret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, "ICEHOOK_SIM_ACCESS_KEYS"),
        ({"ALIBABA_CLOUD_ACCESS_KEY_ID": "only-the-id"}, "ICEHOOK_SIM_ACCESS_KEYS"),
        ({"ICEHOOK_SIM_ACCESS_KEYS": "no-secret"}, "ICEHOOK_SIM_ACCESS_KEYS"),
        (
            {"ICEHOOK_SIM_ACCESS_KEYS": "a:b", "ICEHOOK_SIM_FAILURE_RATE": "2"},
            "ICEHOOK_SIM_FAILURE_RATE",
        ),
        (
            {"ICEHOOK_SIM_ACCESS_KEYS": "a:b", "ICEHOOK_SIM_JOB_SECONDS": "-1"},
            "ICEHOOK_SIM_JOB_SECONDS",
        ),
        (
            {"ICEHOOK_SIM_ACCESS_KEYS": "a:b", "ICEHOOK_SIM_API_LATENCY_MS": "x"},
            "ICEHOOK_SIM_API_LATENCY_MS",
        ),
        (
            {"ICEHOOK_SIM_ACCESS_KEYS": "a:b", "ICEHOOK_SIM_CALLBACK_DROP_RATE": "nan"},
            "ICEHOOK_SIM_CALLBACK_DROP_RATE",
        ),
    ],
)
def test_settings_from_env_names_the_bad_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SimulatorSettings.from_env(environ)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


def test_settings_replace_validates_with_the_same_rules() -> None:
    settings = SimulatorSettings(access_keys={"a": "b"})
    changed = settings.replace({"failure_rate": "0.25", "callback_auth_key": "K1k"})
    assert (changed.failure_rate, changed.callback_auth_key) == (0.25, "K1k")
    assert changed.replace({"callback_auth_key": None}).callback_auth_key is None
    assert settings.failure_rate == 0.0
    for bad in ({"failure_rate": -0.1}, {"callback_delay_seconds": "inf"}, {"user_id": 5}):
        with pytest.raises(ConfigError) as caught:
            settings.replace(bad)
        assert caught.value.variable == next(iter(bad))


# --- callback copies and call counts (for the benchmarks) ------------------------------------


async def test_callback_copies_delivers_every_callback_that_many_times() -> None:
    async with receiver() as target, simulator(job_seconds=0.1, callback_copies=3) as ice:
        submitted = await ice.submit(UserData=user_data(target.url))

        async def all_three() -> bool:
            return len(target.received) == 3

        await eventually(all_three)
        await settle(1.0)
        assert len(target.received) == 3
        assert len({delivery.body for delivery in target.received}) == 1
        log = await ice.callback_log(job_id=submitted["JobId"])
        assert sorted(entry["delivery"] for entry in log) == [1, 2, 3]
        assert {entry["attempt"] for entry in log} == {1}


async def test_a_duplicate_adds_one_delivery_to_the_copies() -> None:
    async with (
        receiver() as target,
        simulator(job_seconds=0.1, callback_copies=2, callback_duplicate_rate=1) as ice,
    ):
        await ice.submit(UserData=user_data(target.url))

        async def three() -> bool:
            return len(target.received) == 3

        await eventually(three)
        await settle(1.0)
        assert len(target.received) == 3


async def test_callback_copies_is_validated_and_shown(ice: Ice) -> None:
    url = f"{ice.base_url}/_sim/settings"
    assert (await ice.http.get(url)).json()["callback_copies"] == 1
    for bad in (0, 1.5, "two", True, 11):
        response = await ice.http.patch(url, json={"callback_copies": bad})
        assert response.status_code == 422, (bad, response.text)
        assert "callback_copies" in response.json()["error"]["message"]
    response = await ice.http.patch(url, json={"callback_copies": "3"})
    assert response.status_code == 200, response.text
    assert response.json()["callback_copies"] == 3


def test_callback_copies_from_env_and_flags() -> None:
    environ = {"ICEHOOK_SIM_ACCESS_KEYS": "a:b", "ICEHOOK_SIM_CALLBACK_COPIES": "3"}
    settings = SimulatorSettings.from_env(environ)
    assert settings.callback_copies == 3
    assert isinstance(settings.callback_copies, int)
    assert SimulatorSettings(access_keys={"a": "b"}).callback_copies == 1
    assert settings.replace({"callback_copies": "2"}).callback_copies == 2
    with pytest.raises(ConfigError) as caught:
        SimulatorSettings.from_env({**environ, "ICEHOOK_SIM_CALLBACK_COPIES": "0"})
    assert caught.value.variable == "ICEHOOK_SIM_CALLBACK_COPIES"


async def test_stats_count_accepted_rpc_calls_by_action(ice: Ice) -> None:
    url = f"{ice.base_url}/_sim/stats"
    nothing = {"submits_peak_per_second": 0, "sts_issued": 0, "sts_refused": 0}
    assert (await ice.http.get(url)).json() == {"rpc_calls": {}, **nothing}
    submitted = await ice.submit()
    await ice.submit()
    await ice.job(submitted["JobId"])
    await ice.ok("ListMediaProducingJobs")
    missing = await ice.call("GetMediaProducingJob", {"JobId": "0" * 32})
    assert missing.status_code == 404  # ICE received it and answered: it counts
    # Refused before ICE does anything: a bad signature and a replayed nonce do not count.
    wrong = await ice.call("GetMediaProducingJob", {"JobId": "a" * 32}, secret="wrong")
    assert wrong.status_code == 403
    first = await ice.call("ListMediaProducingJobs", nonce="stats-once")
    again = await ice.call("ListMediaProducingJobs", nonce="stats-once")
    assert (first.status_code, again.status_code) == (200, 400)
    assert (await ice.http.get(url)).json() == {
        "rpc_calls": {
            "GetMediaProducingJob": 2,
            "ListMediaProducingJobs": 2,
            "SubmitMediaProducingJob": 2,
        },
        **nothing,
        "submits_peak_per_second": 2,
    }


async def test_a_connection_dropped_under_the_http_client_is_a_failed_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """anyio on uvloop raises AttributeError for a connection the receiver has just
    dropped; that attempt fails and the next one is made, as for any other failure."""
    monkeypatch.setattr(callbacks_module, "RETRY_PAUSE_SECONDS", 0.01)
    answers = iter([AttributeError("'NoneType' object has no attribute 'getpeername'")])

    def receiver(request: httpx.Request) -> httpx.Response:
        failure = next(answers, None)
        if failure is not None:
            raise failure
        return httpx.Response(200, stream=httpx.ByteStream(b"success"))

    log = callbacks_module.CallbackLog()
    settings = SimulatorSettings(access_keys={"ak": "sk"})
    dispatcher = callbacks_module.CallbackDispatcher(
        settings=lambda: settings, log=log, clock=time.time, rng=random.Random(1)
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        dispatcher.start(client)
        callback = callbacks_module.Callback(
            "job-1", "ProduceMediaComplete", "Success", "http://receiver.test/cb", b"{}"
        )
        dispatcher.schedule(time.time(), callback)
        async with asyncio.timeout(10):
            while len(log.entries("job-1")) < 2:
                await asyncio.sleep(0.01)
        await dispatcher.aclose()
    first, second = log.entries("job-1")
    assert (first.attempt, first.response_status) == (1, None)
    assert first.error is not None
    assert first.error.startswith("AttributeError")
    assert (second.attempt, second.response_status, second.error) == (2, 200, None)
