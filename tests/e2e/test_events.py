"""``GET /v1/events`` end to end over real sockets: every recorded event, oldest first, a page
at a time, each with the webhook-id and the body its webhooks carried (as a
``standardwebhooks``-verifying subscriber received them); filtered by type or pattern and by
job; a cursor that reads on as new events arrive; bad input refused with 422."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import sqlalchemy as sa

from app.http.contracts.common import encode_id_cursor
from app.store.tables import outbox
from tests.helpers.receiver import Receiver, receiver
from tests.helpers.stack import Stack, stack
from tests.helpers.waiting import FINAL, eventually

BATCH_URL = "https://bucket.oss-cn-shanghai.aliyuncs.com/out-{index}.mp4"


async def subscribe_to_everything(s: Stack, r: Receiver) -> None:
    answer = await s.api.post("/v1/subscriptions", json={"url": r.url, "event_types": ["*"]})
    assert answer.status_code == 201, answer.text
    r.secrets.append(answer.json()["secret"])


async def run_to_the_end(s: Stack, r: Receiver, jobs: list[dict[str, Any]]) -> None:
    """Until ``jobs`` are final and every event recorded was delivered to ``r``."""

    async def final() -> bool:
        return all([(await s.job(job["id"]))["status"] in FINAL for job in jobs])

    await eventually(final)

    async def all_delivered() -> bool:
        recorded = await s.rows(sa.select(outbox.c.event_id))
        return {row["event_id"] for row in recorded} <= {e["webhook_id"] for e in r.delivered()}

    await eventually(all_delivered)


async def read_all(
    s: Stack, params: dict[str, Any] | None = None, *, cursor: str | None = None, limit: int = 2
) -> tuple[list[dict[str, Any]], str, list[int]]:
    """Every event from ``cursor`` on, a page of ``limit`` at a time until an empty page:
    the events, the cursor to read on from, and each page's size."""
    events: list[dict[str, Any]] = []
    sizes = []
    while True:
        query = {**(params or {}), "limit": limit} | ({"cursor": cursor} if cursor else {})
        answer = await s.api.get("/v1/events", params=query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert page["next_cursor"], "every page says where to read on from"
        sizes.append(len(page["items"]))
        events += page["items"]
        if not page["items"]:
            assert cursor is None or page["next_cursor"] == cursor, "an empty page stays put"
            return events, page["next_cursor"], sizes
        cursor = page["next_cursor"]


def without_id(event: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key != "id"}


async def test_every_event_in_order_with_the_webhooks_ids_and_bodies_then_only_new_ones(
    database_url: str,
) -> None:
    async with receiver() as r, stack(database_url, job_seconds=0.3) as s:
        await subscribe_to_everything(s, r)
        jobs = [await s.submit(ProjectId=f"p-{n}") for n in range(3)]
        await run_to_the_end(s, r, jobs)

        events, cursor, sizes = await read_all(s)
        recorded = await s.rows(sa.select(outbox.c.event_id).order_by(outbox.c.id))
        assert [e["id"] for e in events] == [row["event_id"] for row in recorded]
        assert len(events) >= 6  # at least submitted and succeeded, for each job
        assert all(size <= 2 for size in sizes)
        assert sizes[-1] == 0
        # Each is what the subscriber received under that webhook-id, body for body.
        received = {d.webhook_id: json.loads(d.body) for d in r.requests if d.answered == 200}
        assert {e["id"]: without_id(e) for e in events} == received
        for job in jobs:
            mine = [e["type"] for e in events if e["data"]["id"] == job["id"]]
            timeline = (await s.job(job["id"]))["events"]
            assert mine == [f"job.{event['to_status']}" for event in timeline]

        # Nothing new: the same cursor again, and again an empty page.
        again = (await s.api.get("/v1/events", params={"cursor": cursor})).json()
        assert again == {"items": [], "next_cursor": cursor}
        later = await s.submit(ProjectId="p-later")
        await run_to_the_end(s, r, [later])
        new, _, _ = await read_all(s, cursor=cursor)
        assert new, "the events recorded since are listed from the old cursor"
        assert {e["data"]["id"] for e in new} == {later["id"]}
        assert [e["type"] for e in new] == [
            f"job.{event['to_status']}" for event in (await s.job(later["id"]))["events"]
        ]
        assert {e["id"] for e in new}.isdisjoint(e["id"] for e in events)


async def test_events_are_filtered_by_type_pattern_and_job(database_url: str) -> None:
    async with receiver() as r, stack(database_url, job_seconds=0.3) as s:
        await subscribe_to_everything(s, r)
        jobs = [await s.submit(ProjectId=f"p-{n}") for n in range(2)]
        batch = await s.api.post(
            "/v1/batch-jobs", json={"ProjectIds": "a,b", "OutputConfig": {"MediaURL": BATCH_URL}}
        )
        assert batch.status_code == 201, batch.text
        await run_to_the_end(s, r, [*jobs, batch.json()])
        everything, _, _ = await read_all(s, limit=200)
        types = {e["type"] for e in everything}
        assert {"job.succeeded", "batch.submitted"} <= types

        def expected(wanted: list[str]) -> list[str]:
            """The ids of the events ``wanted`` selects, as a subscription's would."""
            return [
                e["id"]
                for e in everything
                if {e["type"], f"{e['type'].split('.')[0]}.*", "*"} & set(wanted)
            ]

        for wanted in (
            ["job.succeeded"],
            ["job.*"],
            ["batch.*"],
            ["*"],
            ["job.succeeded", "batch.*"],
            ["job.submitted", "job.*"],  # overlapping: each event once
        ):
            found, _, _ = await read_all(s, {"type": wanted})
            assert found, wanted
            assert [e["id"] for e in found] == expected(wanted), wanted
        assert expected(["*"]) == [e["id"] for e in everything]
        one = jobs[1]["id"]
        found, _, _ = await read_all(s, {"job_id": one})
        assert [e["id"] for e in found] == [e["id"] for e in everything if e["data"]["id"] == one]
        found, _, _ = await read_all(s, {"job_id": one, "type": "job.succeeded"})
        assert [(e["type"], e["data"]["id"]) for e in found] == [("job.succeeded", one)]
        nobody, cursor, _ = await read_all(s, {"job_id": str(uuid.uuid4())})
        assert (nobody, cursor) == ([], encode_id_cursor(0))


async def test_bad_input_is_422_naming_the_parameter_never_a_server_error(
    database_url: str,
) -> None:
    async with stack(database_url) as s:
        for bad in (
            {"type": "job.done"},
            {"type": "job"},
            {"type": "subscription.nope"},
            {"type": "job\x00"},
            {"cursor": "garbage"},
            {"cursor": base64.urlsafe_b64encode(b"id|-1").decode()},
            {"cursor": base64.urlsafe_b64encode(b"id|99999999999999999999").decode()},
            {"cursor": base64.urlsafe_b64encode(b"\xff\xfe").decode()},
            {"cursor": base64.urlsafe_b64encode(f"2026-01-01T00:00:00|{uuid.uuid4()}".encode())},
            {"limit": "0"},
            {"limit": "201"},
            {"limit": "x"},
            {"job_id": "nope"},
            {"colour": "red"},
        ):
            answer = await s.api.get("/v1/events", params=bad)
            assert answer.status_code == 422, (bad, answer.text)
            error = answer.json()["error"]
            assert (error["code"], error["field"]) == ("validation_error", next(iter(bad))), bad
        unknown = (await s.api.get("/v1/events", params={"type": "job.done"})).json()["error"]
        assert "'job.done' is not an event type; use one of" in unknown["message"]
        assert "job.*" in unknown["message"]
        second = await s.api.get("/v1/events", params=[("type", "job.*"), ("type", "nope")])
        assert second.json()["error"]["field"] == "type"
        # An empty parameter is as if not given, as for every list.
        empty = await s.api.get("/v1/events", params={"type": "", "cursor": "", "job_id": ""})
        assert empty.json() == {"items": [], "next_cursor": encode_id_cursor(0)}
