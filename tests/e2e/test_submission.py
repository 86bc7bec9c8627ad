"""Submitting through /v1: validation, idempotency, ICE's refusals, unknown outcomes, access."""

from __future__ import annotations

import base64
import json
import math
import uuid
from typing import Any

import pytest

from app.ice.client import IceClient
from app.settings import Settings
from tests.helpers.servers import http_client
from tests.helpers.stack import KEY_ID, OUTPUT, SECRET, stack
from tests.helpers.waiting import FINAL, eventually


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"OutputMediaConfig": OUTPUT}, "ProjectId"),
        (
            {"ProjectId": "p", "Timeline": {"VideoTracks": []}, "OutputMediaConfig": OUTPUT},
            "ProjectId",
        ),
        ({"TemplateId": "t", "OutputMediaConfig": OUTPUT}, "ClipsParam"),
        ({"ProjectId": "p"}, "OutputMediaConfig"),
        ({"ProjectId": "p", "OutputMediaConfig": "{broken"}, "OutputMediaConfig"),
        ({"ProjectId": "p", "OutputMediaConfig": 7}, "OutputMediaConfig"),
        ({"ProjectId": "", "OutputMediaConfig": OUTPUT}, "ProjectId"),
        ({"ProjectId": "p", "OutputMediaConfig": OUTPUT, "Colour": "red"}, "Colour"),
        ({"ProjectId": "p", "OutputMediaConfig": OUTPUT, "ClientToken": "x"}, "ClientToken"),
        ({"ProjectId": "p", "OutputMediaConfig": OUTPUT, "UserData": [1]}, "UserData"),
        (
            {"ProjectId": "p", "OutputMediaConfig": OUTPUT, "UserData": {"NotifyAddress": "x"}},
            "UserData",
        ),
        (
            {"ProjectId": "p", "OutputMediaConfig": OUTPUT, "OutputMediaTarget": "ftp"},
            "OutputMediaTarget",
        ),
        # JSON can escape what PostgreSQL cannot keep: NUL, and half a surrogate pair.
        ({"ProjectId": "p", "OutputMediaConfig": OUTPUT, "UserData": {"k": "a\x00"}}, "UserData"),
        ({"ProjectId": "p\ud800", "OutputMediaConfig": OUTPUT}, "ProjectId"),
        ({"ProjectId": "p", "OutputMediaConfig": {"\x00": 1}}, "OutputMediaConfig"),
        ({"ProjectId": "p", "OutputMediaConfig": {"a": [[[["\ud800"]]]]}}, "OutputMediaConfig"),
        # ...and what is not JSON at all, though Python's parser reads it.
        ({"ProjectId": "p", "OutputMediaConfig": OUTPUT, "UserData": {"n": math.nan}}, "body"),
        (
            {"ProjectId": "p", "OutputMediaConfig": OUTPUT, "ProjectMetadata": '{"a": Infinity}'},
            "ProjectMetadata",
        ),
        # The same checks inside a parameter given as JSON text.
        (
            {"ProjectId": "p", "OutputMediaConfig": OUTPUT, "UserData": '{"k": "\\u0000"}'},
            "UserData",
        ),
        (
            {"ProjectId": "p", "OutputMediaConfig": OUTPUT, "ProjectMetadata": "[" * 5000},
            "ProjectMetadata",
        ),
        # Every parameter but Timeline goes in ICE's query string, which has a limit.
        (
            {"TemplateId": "t", "ClipsParam": {"a": "x" * 40_000}, "OutputMediaConfig": OUTPUT},
            "ClipsParam",
        ),
    ],
)
async def test_bad_submissions_are_422_naming_the_field(
    database_url: str, body: dict[str, Any], field: str
) -> None:
    async with stack(database_url, job_seconds=60) as s:
        answer = await s.api.post("/v1/jobs", content=json.dumps(body))  # escapes as JSON may
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "validation_error"
        assert answer.json()["error"]["field"] == field
        assert (await s.api.get("/v1/jobs")).json()["items"] == [], "nothing was recorded"


async def test_malformed_json_and_non_objects_are_422_on_the_body(database_url: str) -> None:
    async with stack(database_url, job_seconds=60) as s:
        for raw in (b"{nope", b"[1]", b"", b"[" * 5000 + b"]" * 5000):
            answer = await s.api.post("/v1/jobs", content=raw)
            assert answer.status_code == 422
            assert answer.json()["error"]["field"] == "body"


async def test_user_data_over_ices_512_bytes_says_how_much_is_left(database_url: str) -> None:
    async with stack(database_url, job_seconds=60) as s:
        answer = await s.api.post(
            "/v1/jobs",
            json={"ProjectId": "p", "OutputMediaConfig": OUTPUT, "UserData": {"n": "x" * 500}},
        )
        assert answer.status_code == 422
        message = answer.json()["error"]["message"]
        assert "512" in message
        allowed = int(message.split("leaves ")[1].split(" bytes")[0])
        fits = {"n": "x" * (allowed - len('{"n":""}'))}
        ok = await s.api.post(
            "/v1/jobs", json={"ProjectId": "p", "OutputMediaConfig": OUTPUT, "UserData": fits}
        )
        assert ok.status_code == 201, ok.text


async def test_json_parameters_may_be_objects_or_strings(database_url: str) -> None:
    async with stack(database_url, job_seconds=60) as s:
        timeline = {"VideoTracks": [{"VideoTrackClips": [{"MediaURL": "oss://b/x 中.mp4"}]}]}
        job = await s.submit(Timeline=json.dumps(timeline), UserData=json.dumps({"k": 1}))
        truth = await s.truth(job["ice_job_id"])
        assert json.loads(truth["user_data"])["k"] == 1
        assert job["user_data"] == {"k": 1}


async def test_a_batch_takes_project_ids_as_a_list_or_a_comma_string(database_url: str) -> None:
    async with stack(database_url, job_seconds=0.3) as s:
        out = {"MediaURL": "https://b.oss-cn-shanghai.aliyuncs.com/o_{index}.mp4"}
        listed = await s.api.post(
            "/v1/batch-jobs", json={"ProjectIds": ["a", "b"], "OutputConfig": out}
        )
        comma = await s.api.post(
            "/v1/batch-jobs", json={"ProjectIds": " c, d ,", "OutputConfig": out}
        )
        assert (listed.status_code, comma.status_code) == (201, 201)
        assert (await s.truth(comma.json()["ice_job_id"]))["project_ids"] == ["c", "d"]
        empty = await s.api.post("/v1/batch-jobs", json={"ProjectIds": [], "OutputConfig": out})
        assert (empty.status_code, empty.json()["error"]["field"]) == (422, "ProjectIds")
        batch = (await s.api.get(f"/v1/batch-jobs/{listed.json()['id']}")).json()
        assert batch["kind"] == "batch"
        assert (await s.api.get("/v1/batch-jobs/no-such-batch")).status_code == 404


async def test_idempotency_key_returns_the_same_job_or_409(database_url: str) -> None:
    async with stack(database_url, job_seconds=60) as s:
        body = {"ProjectId": "p", "OutputMediaConfig": OUTPUT}
        headers = {"idempotency-key": "order-7"}
        first = await s.api.post("/v1/jobs", json=body, headers=headers)
        again = await s.api.post("/v1/jobs", json=body, headers=headers)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        other = await s.api.post("/v1/jobs", json={**body, "ProjectId": "q"}, headers=headers)
        assert other.status_code == 409
        assert len((await s.api.get("/v1/jobs")).json()["items"]) == 1


async def test_ice_refusing_a_job_records_it_rejected_with_ices_code(database_url: str) -> None:
    async with stack(database_url, job_seconds=60) as s:
        answer = await s.api.post(
            "/v1/jobs", json={"ProjectId": "p", "OutputMediaConfig": {"Width": 10}}
        )
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["code"] == "ice_rejected"
        assert error["ice_code"] == "InvalidParameter"
        assert error["ice_request_id"]
        job = await s.job(error["job"]["id"])
        assert (job["status"], job["error_code"]) == ("rejected", "InvalidParameter")
        assert [(e["from_status"], e["to_status"]) for e in job["events"]] == [
            ("submitting", "rejected")
        ]
        # ICE never ran it, so there is nothing to ask ICE: the job is answered as it is.
        again = await s.api.post(f"/v1/jobs/{job['id']}/reconcile")
        assert (again.status_code, again.json()["status"]) == (200, "rejected")


async def test_an_unknown_outcome_stays_submitting_then_the_sweeper_settles_it_once(
    database_url: str,
) -> None:
    # ICE answers too slowly: icehook gives up waiting, ICE may or may not have the job.
    icehook = {"ice_timeout_seconds": 0.3, "ice_max_attempts": 2}
    async with stack(
        database_url, sweep_after=0.5, job_seconds=0.3, api_latency_ms=1000, icehook=icehook
    ) as s:
        answer = await s.api.post("/v1/jobs", json={"ProjectId": "p", "OutputMediaConfig": OUTPUT})
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "submitting"
        await s.sim.patch("/_sim/settings", json={"api_latency_ms": 0})

        async def final() -> bool:
            return (await s.job(answer.json()["id"]))["status"] in FINAL

        await eventually(final)
        settings = Settings(
            ice_endpoint=str(s.sim.base_url).rstrip("/"),
            access_key_id=KEY_ID,
            access_key_secret=SECRET,
        )
        async with http_client() as http:
            at_ice = await IceClient(http, settings).list_media_producing_jobs({})
        assert len(at_ice.items) == 1, "the resubmission reused the ClientToken"
        job = await s.job(answer.json()["id"])
        assert job["ice_job_id"] == at_ice.items[0].job_id


async def test_every_v1_route_needs_an_api_key(database_url: str) -> None:
    async with stack(database_url, job_seconds=60) as s:
        anonymous = http_client(base_url=s.callbacks.base_url)
        async with anonymous:
            for method, path in (
                ("GET", "/v1/jobs"),
                ("POST", "/v1/jobs"),
                ("GET", "/v1/jobs/x"),
                ("POST", "/v1/jobs/x/reconcile"),
                ("POST", "/v1/batch-jobs"),
                ("GET", "/v1/batch-jobs/x"),
                ("GET", "/v1/no-such-route"),
            ):
                for headers in (
                    {},
                    {"authorization": "Bearer wrong"},
                    {"authorization": "Basic x"},
                ):
                    answer = await anonymous.request(method, path, headers=headers)
                    assert answer.status_code == 401, (method, path, headers)
                    assert answer.json()["error"]["code"] == "unauthorized"


async def test_list_filters_and_cursor_pagination(database_url: str) -> None:
    async with stack(database_url, job_seconds=60) as s:
        made = [await s.submit(ProjectId=f"p-{n % 2}") for n in range(5)]
        page = (await s.api.get("/v1/jobs", params={"limit": 2})).json()
        seen = [j["id"] for j in page["items"]]
        while page["next_cursor"]:
            page = (
                await s.api.get("/v1/jobs", params={"limit": 2, "cursor": page["next_cursor"]})
            ).json()
            seen += [j["id"] for j in page["items"]]
        assert seen == [j["id"] for j in reversed(made)], "newest first, each once"
        by_project = (await s.api.get("/v1/jobs", params={"project_id": "p-1"})).json()["items"]
        assert {j["id"] for j in by_project} == {made[1]["id"], made[3]["id"]}
        by_ice = await s.api.get("/v1/jobs", params={"ice_job_id": made[2]["ice_job_id"]})
        assert [j["id"] for j in by_ice.json()["items"]] == [made[2]["id"]]
        by_status = await s.api.get("/v1/jobs", params={"status": "submitted"})
        assert len(by_status.json()["items"]) == 5
        after = await s.api.get("/v1/jobs", params={"created_after": made[3]["created_at"]})
        assert [j["id"] for j in after.json()["items"]] == [made[4]["id"], made[3]["id"]]
        for bad in (
            {"status": "done"},
            {"limit": "0"},
            {"limit": "x"},
            {"cursor": "garbage"},
            {"created_after": "yesterday"},
            {"created_after": "2026-01-01T00:00:00"},
            {"batch_id": "nope"},
            {"colour": "red"},
            {"project_id": "p\x00"},  # PostgreSQL text cannot hold NUL
            {"limit": "²"},  # a digit to str.isdigit, not to int()
            {"created_after": "0001-01-01T00:00:00+01:00"},  # before year 1 in UTC
            {"cursor": base64.urlsafe_b64encode(f"2026-01-01T00:00:00|{uuid.uuid4()}".encode())},
        ):
            answer = await s.api.get("/v1/jobs", params=bad)
            assert answer.status_code == 422, bad
            assert answer.json()["error"]["field"] == next(iter(bad))
        assert (await s.api.get("/v1/jobs/a%00b")).status_code == 404
        assert (await s.api.get("/v1/deliveries/²")).status_code == 404
