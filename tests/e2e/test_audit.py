"""The audit API: a job's timeline, and every callback received, over real sockets."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.store.engine import create_engine
from app.store.tables import jobs
from tests.helpers.receiver import receiver
from tests.helpers.servers import http_client
from tests.helpers.stack import Stack, envelope, stack
from tests.helpers.waiting import eventually


async def _everything_judged_and_delivered(s: Stack, count: int) -> bool:
    callbacks = (await s.api.get("/v1/callbacks", params={"limit": 100})).json()["items"]
    deliveries = (await s.api.get("/v1/deliveries", params={"limit": 100})).json()["items"]
    return (
        len(callbacks) == count
        and all(c["outcome"] != "pending" for c in callbacks)
        and all(d["status"] == "delivered" for d in deliveries)
    )


async def _listed(s: Stack, **params: Any) -> list[dict[str, Any]]:
    """Every page of ``/v1/callbacks``, two at a time."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await s.api.get(
            "/v1/callbacks", params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


async def test_a_jobs_timeline_and_every_callback_with_how_it_was_judged(
    database_url: str,
) -> None:
    async with receiver() as r, stack(database_url, job_seconds=0.3, callback_drop_rate=1.0) as s:
        created = await s.api.post("/v1/subscriptions", json={"url": r.url, "event_types": ["*"]})
        r.secrets.append(created.json()["secret"])
        job, other = await s.submit(ProjectId="p-audit"), await s.submit(ProjectId="p-other")

        async def finished_at_ice() -> bool:
            return bool((await s.truth(job["ice_job_id"]))["status"] == "Success")

        await eventually(finished_at_ice)
        url = f"/callbacks/ice/{await s.token_of(job['ice_job_id'])}"
        sent = [
            envelope(job["ice_job_id"], "Success"),  # applied
            envelope(job["ice_job_id"], "Success", EventTime="2026-11-22T08:00:09Z"),  # duplicate
            envelope(job["ice_job_id"], "Failed", EventTime="2026-11-22T08:00:10Z"),  # rejected
            envelope(other["ice_job_id"], "Success"),  # unmatched: not this token's job
        ]
        for n, body in enumerate(sent):
            answer = await s.callbacks.post(
                url, content=json.dumps(body), headers={"x-request-id": f"from-ice-{n}"}
            )
            assert answer.status_code == 200
        unknown = await s.callbacks.post("/callbacks/ice/not-a-token", json=sent[0])
        assert unknown.status_code == 401
        await eventually(lambda: _everything_judged_and_delivered(s, len(sent) + 1))

        timeline = await s.job(job["id"])
        assert [e["to_status"] for e in timeline["events"]] == ["submitted", "succeeded"]
        judged = timeline["callbacks"]
        assert [c["outcome"] for c in judged] == ["applied", "duplicate", "rejected", "unmatched"]
        assert [c["ice_status"] for c in judged] == ["Success", "Success", "Failed", "Success"]
        assert all(c["detail"] and c["processed_at"] and c["received_at"] for c in judged)
        assert all("body" not in c for c in judged), "the body holds the callback token"
        assert [c["request_id"] for c in judged] == [f"from-ice-{n}" for n in range(4)]
        assert [(d["event_type"], d["status"]) for d in timeline["deliveries"]] == [
            ("job.submitted", "delivered"),
            ("job.succeeded", "delivered"),
        ]
        assert {d["event_id"] for d in timeline["deliveries"]} <= {
            delivered["webhook_id"] for delivered in r.delivered()
        }

        everything = await _listed(s)
        assert len(everything) == 5
        assert [c["id"] for c in everything] == sorted((c["id"] for c in everything), reverse=True)
        assert [c["id"] for c in await _listed(s, job_id=job["id"])] == [
            c["id"] for c in reversed(judged)
        ]
        rejected = await _listed(s, outcome="rejected")
        assert sorted(str(c["job_id"]) for c in rejected) == sorted([job["id"], "None"])
        assert [c["outcome"] for c in await _listed(s, outcome="unmatched")] == ["unmatched"]
        first = min(datetime.fromisoformat(c["received_at"]) for c in everything)
        assert len(await _listed(s, received_after=first.isoformat())) == 5
        assert await _listed(s, received_before=first.isoformat()) == []
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert await _listed(s, received_after=later) == []

        for params in (
            {"outcome": "lost"},
            {"job_id": "x"},
            {"received_after": "yesterday"},
            {"cursor": "zz"},
            {"body": "x"},
        ):
            answer = await s.api.get("/v1/callbacks", params=params)
            assert answer.status_code == 422, (params, answer.text)
        async with http_client(base_url=str(s.api.base_url)) as anonymous:
            assert (await anonymous.get("/v1/callbacks")).status_code == 401


async def insert_jobs(database_url: str, count: int) -> None:
    """``count`` jobs in one transaction (so with one created_at)."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(jobs),
                [{"id": uuid.uuid4(), "kind": "job", "status": "submitted"} for _ in range(count)],
            )
    finally:
        await engine.dispose()


async def test_job_pages_stay_correct_while_new_jobs_arrive(database_url: str) -> None:
    """Jobs created while a client pages through the list never shift its pages: every job
    that existed is seen once, newest first, and the new ones only before the first page."""
    async with stack(database_url) as s:
        for _ in range(3):  # three transactions: three created_at values, ties by id
            await insert_jobs(database_url, 10)
        existing = {str(row.id) for row in await s.rows(sa.select(jobs.c.id))}
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
            page = (await s.api.get("/v1/jobs", params=params)).json()
            seen += page["items"]
            await insert_jobs(database_url, 2)  # new jobs between every two pages
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert [job["id"] for job in seen if job["id"] in existing] == [job["id"] for job in seen]
    assert sorted(job["id"] for job in seen) == sorted(existing), "each once, none missed"
    keys = [(job["created_at"], job["id"]) for job in seen]
    assert keys == sorted(keys, reverse=True)


async def test_jobs_are_found_by_the_search_box_and_by_user_data_over_http(
    database_url: str,
) -> None:
    async with stack(database_url, job_seconds=30) as s:
        acme = await s.submit(ProjectId="p-search", UserData={"tenant": "acme", "order": 7})
        other = await s.submit(ProjectId="p-search", UserData={"tenant": "umbrella"})

        async def ids(**params: Any) -> list[str]:
            answer = await s.api.get("/v1/jobs", params=params)
            assert answer.status_code == 200, answer.text
            return [job["id"] for job in answer.json()["items"]]

        assert await ids(q=acme["ice_job_id"]) == [acme["id"]]
        assert await ids(q=acme["id"]) == [acme["id"]]
        assert await ids(q="p-search") == [other["id"], acme["id"]]
        assert await ids(q="tenant=acme") == [acme["id"]]
        assert await ids(**{"user_data.order": "7"}) == [acme["id"]]
        assert await ids(**{"user_data.tenant": "umbrella", "q": "p-search"}) == [other["id"]]
        assert await ids(**{"user_data.tenant": "acme", "user_data.order": "8"}) == []
        for bad in ({"user_data.": "x"}, {"q": "x" * 257}, {"user_data.k": "\x00"}):
            refused = await s.api.get("/v1/jobs", params=bad)
            assert refused.status_code == 422, bad
            assert refused.json()["error"]["field"] == next(iter(bad)), refused.text
