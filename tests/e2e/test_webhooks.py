"""Webhooks to subscribers, end to end over real sockets: signed as Standard Webhooks,
retried, in order per job, never sent twice for one transition, and only where allowed."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.store.tables import deliveries
from tests.helpers.receiver import Receiver, receiver
from tests.helpers.stack import Stack, stack
from tests.helpers.waiting import eventually

FAST_RETRIES = (0.2, 0.2, 0.2)


async def subscribe(s: Stack, r: Receiver, **more: Any) -> dict[str, Any]:
    answer = await s.api.post(
        "/v1/subscriptions", json={"url": r.url, "event_types": ["job.*"], **more}
    )
    assert answer.status_code == 201, answer.text
    subscription = answer.json()
    assert subscription["secret"].startswith("whsec_")
    r.secrets.append(subscription["secret"])
    return subscription  # type: ignore[no-any-return]


async def finished(s: Stack, job: dict[str, Any]) -> bool:
    return (await s.job(str(job["id"])))["status"] in ("succeeded", "failed")


async def recorded_events(s: Stack, *jobs: dict[str, Any]) -> dict[str, list[str]]:
    """Each job's events as icehook recorded them, in order, as event types."""
    by_job = {}
    for job in jobs:
        events = (await s.job(str(job["id"])))["events"]
        by_job[job["id"]] = [f"job.{event['to_status']}" for event in events]
    return by_job


def events_by_job(r: Receiver) -> dict[str, list[str]]:
    by_job: dict[str, list[str]] = defaultdict(list)
    for event in r.delivered():
        by_job[event["data"]["id"]].append(event["type"])
    return dict(by_job)


async def test_every_delivery_verifies_with_the_standardwebhooks_library_across_a_rotation(
    database_url: str,
) -> None:
    async with receiver() as r, stack(database_url, job_seconds=0.3) as s:
        subscription = await subscribe(s, r)
        first = await s.submit(ProjectId="p-1")
        await eventually(lambda: finished(s, first))
        await eventually(lambda: _delivered(r, 2))
        old_secret = subscription["secret"]
        rotated = await s.api.post(f"/v1/subscriptions/{subscription['id']}/rotate-secret")
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != old_secret
        r.secrets.append(new_secret)
        second = await s.submit(ProjectId="p-2")
        await eventually(lambda: finished(s, second))
        expected = await recorded_events(s, first, second)
        await eventually(lambda: _delivered(r, sum(map(len, expected.values()))))
        assert events_by_job(r) == expected
        before = [
            d for d in r.requests if d.body and json.loads(d.body)["data"]["id"] == first["id"]
        ]
        after = [d for d in r.requests if json.loads(d.body)["data"]["id"] == second["id"]]
        assert all(d.verified_with == (old_secret,) for d in before)
        # During the overlap both secrets sign: a receiver with either one accepts.
        assert all(d.verified_with == (old_secret, new_secret) for d in after)
        assert all(len(d.headers["webhook-signature"].split(" ")) == 2 for d in after)


async def _delivered(r: Receiver, count: int) -> bool:
    return len(r.delivered()) >= count


async def test_a_subscriber_that_was_down_gets_every_event_in_order_with_stable_ids(
    database_url: str,
) -> None:
    icehook = {"delivery_retry_schedule": (0.3,) * 20}
    async with receiver() as r, stack(database_url, job_seconds=0.5, icehook=icehook) as s:
        await subscribe(s, r)
        r.status = 503
        jobs = [await s.submit(ProjectId=f"p-{n}") for n in range(3)]
        await eventually(lambda: _finished_all(s, jobs))
        await eventually(lambda: _failed_requests(r, 6))
        r.status = 200
        expected = await recorded_events(s, *jobs)
        await eventually(lambda: _delivered(r, sum(map(len, expected.values()))))
        assert events_by_job(r) == expected
        failed_ids = {d.webhook_id for d in r.requests if d.answered == 503}
        assert failed_ids <= {event["webhook_id"] for event in r.delivered()}


async def _finished_all(s: Stack, jobs: list[dict[str, Any]]) -> bool:
    return all([await finished(s, job) for job in jobs])


async def _failed_requests(r: Receiver, count: int) -> bool:
    return sum(d.answered >= 500 for d in r.requests) >= count


async def test_a_subscriber_that_always_fails_ends_dead_and_a_manual_retry_delivers(
    database_url: str,
) -> None:
    async with (
        receiver() as r,
        stack(
            database_url, job_seconds=0.3, icehook={"delivery_retry_schedule": FAST_RETRIES}
        ) as s,
    ):
        await subscribe(s, r, event_types=["job.succeeded"])
        r.status = 500
        job = await s.submit(ProjectId="p-dead")

        async def dead() -> list[dict[str, Any]]:
            listed = await s.api.get("/v1/deliveries", params={"status": "dead"})
            return list(listed.json()["items"])

        await eventually(lambda: _nonempty(dead()))
        (delivery,) = await dead()
        assert (delivery["job_id"], delivery["event_type"]) == (job["id"], "job.succeeded")
        assert delivery["attempts"] == len(FAST_RETRIES) + 1
        detail = (await s.api.get(f"/v1/deliveries/{delivery['id']}")).json()
        assert [a["status_code"] for a in detail["attempt_log"]] == [500] * 4
        assert detail["attempt_log"][0]["response_excerpt"] == "answered 500"
        r.status = 200
        retried = await s.api.post(f"/v1/deliveries/{delivery['id']}/retry")
        assert retried.status_code == 202, retried.text
        await eventually(lambda: _delivered(r, 1))

        async def delivered() -> bool:
            one = (await s.api.get(f"/v1/deliveries/{delivery['id']}")).json()
            return bool(one["status"] == "delivered")

        await eventually(delivered)
        assert {d.webhook_id for d in r.requests} == {delivery["event_id"]}
        log = (await s.api.get(f"/v1/deliveries/{delivery['id']}")).json()["attempt_log"]
        assert [a["status_code"] for a in log] == [500] * 4 + [200]


async def _nonempty(items: Any) -> bool:
    return bool(await items)


async def test_duplicate_callbacks_never_make_a_second_event_or_delivery(
    database_url: str,
) -> None:
    async with receiver() as r, stack(database_url, job_seconds=0.3, callback_copies=3) as s:
        await subscribe(s, r)
        jobs = [await s.submit(ProjectId=f"p-{n}") for n in range(3)]
        await eventually(lambda: _finished_all(s, jobs))
        expected = await recorded_events(s, *jobs)
        events = sum(map(len, expected.values()))
        await eventually(lambda: _delivered(r, events))
        await asyncio.sleep(1)  # late copies had their chance
        assert events_by_job(r) == expected
        assert len(r.requests) == events, "no webhook sent twice"
        assert len(await s.rows(sa.select(deliveries.c.message_id))) == events


async def test_a_loopback_subscriber_is_refused_unless_its_network_is_allowed(
    database_url: str,
) -> None:
    closed = {"allowed_webhook_nets": ()}
    async with receiver() as r, stack(database_url, job_seconds=60, icehook=closed) as s:
        for url in (r.url, r.url.replace("127.0.0.1", "localhost"), "http://10.1.2.3/hook"):
            answer = await s.api.post("/v1/subscriptions", json={"url": url, "event_types": ["*"]})
            assert answer.status_code == 422, answer.text
            error = answer.json()["error"]
            assert error["field"] == "url"
            assert "ICEHOOK_ALLOWED_WEBHOOK_NETS" in error["message"]
    loopback = {"allowed_webhook_nets": (ipaddress.ip_network("127.0.0.0/8"),)}
    async with receiver() as r, stack(database_url, job_seconds=60, icehook=loopback) as s:
        answer = await s.api.post("/v1/subscriptions", json={"url": r.url, "event_types": ["*"]})
        assert answer.status_code == 201


# -- the parts, one at a time --------------------------------------------------------------


SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


# -- the API ----------------------------------------------------------------------------------


async def test_subscriptions_are_validated_listed_changed_and_deleted(database_url: str) -> None:
    async with receiver() as r, stack(database_url, job_seconds=60) as s:
        for body, field in (
            ({"event_types": ["*"]}, "url"),
            ({"url": "ftp://example.com/x", "event_types": ["*"]}, "url"),
            ({"url": "https://user:pw@example.com/x", "event_types": ["*"]}, "url"),
            ({"url": r.url, "event_types": []}, "event_types"),
            ({"url": r.url, "event_types": ["job.done"]}, "event_types"),
            ({"url": r.url, "event_types": ["*"], "secret": "mine"}, "secret"),
            ({"url": "http://a..b/x", "event_types": ["*"]}, "url"),  # IDNA refuses the name
            ({"url": f"http://{'a' * 64}.example/x", "event_types": ["*"]}, "url"),
        ):
            answer = await s.api.post("/v1/subscriptions", json=body)
            assert answer.status_code == 422, body
            assert answer.json()["error"]["field"] == field
        created = await subscribe(s, r, description="orders")
        url = f"/v1/subscriptions/{created['id']}"
        listed = (await s.api.get("/v1/subscriptions")).json()["items"]
        assert [item["id"] for item in listed] == [created["id"]]
        assert all("secret" not in item for item in [*listed, (await s.api.get(url)).json()])
        await s.api.patch(url, json={"enabled": False})
        changed = await s.api.patch(url, json={"event_types": ["batch.*"], "enabled": True})
        assert changed.status_code == 200, changed.text
        assert (changed.json()["event_types"], changed.json()["enabled"]) == (["batch.*"], True)
        assert (await s.api.delete(url)).status_code == 204
        assert (await s.api.get(url)).status_code == 404
        assert (await s.api.get("/v1/subscriptions")).json()["items"] == []
        assert (await s.api.get("/v1/subscriptions/not-an-id")).status_code == 404


async def test_a_replay_sends_recorded_events_even_from_before_the_subscription(
    database_url: str,
) -> None:
    async with receiver() as r, stack(database_url, job_seconds=0.3) as s:
        since = datetime.now(UTC) - timedelta(seconds=1)
        job = await s.submit(ProjectId="p-early")
        await eventually(lambda: finished(s, job))
        subscription = await subscribe(s, r)
        await asyncio.sleep(0.5)
        assert r.requests == [], "events from before it existed are not sent by themselves"
        url = f"/v1/subscriptions/{subscription['id']}/replay"
        bad = await s.api.post(url, json={"since": "yesterday"})
        assert bad.status_code == 422
        replayed = await s.api.post(url, json={"since": since.isoformat()})
        assert replayed.status_code == 202, replayed.text
        expected = await recorded_events(s, job)
        assert replayed.json() == {"replayed": len(expected[job["id"]])}
        await eventually(lambda: _delivered(r, len(expected[job["id"]])))
        assert events_by_job(r) == expected


async def test_retry_dead_sends_again_only_what_died_in_its_period(database_url: str) -> None:
    icehook = {"delivery_retry_schedule": (0.1,)}
    async with receiver() as r, stack(database_url, job_seconds=0.3, icehook=icehook) as s:
        subscription = await subscribe(s, r)
        delivered_job = await s.submit(ProjectId="p-fine")
        await eventually(lambda: finished(s, delivered_job))
        delivered = await recorded_events(s, delivered_job)
        await eventually(lambda: _delivered(r, len(delivered[delivered_job["id"]])))
        since = datetime.now(UTC)
        r.status = 503  # the subscriber goes down: the next job's webhooks die
        dead_job = await s.submit(ProjectId="p-down")
        await eventually(lambda: finished(s, dead_job))

        async def all_dead() -> bool:
            found = (await s.job(dead_job["id"]))["deliveries"]
            return len(found) == 2 and all(d["status"] == "dead" for d in found)

        await eventually(all_dead)
        url = f"/v1/subscriptions/{subscription['id']}/retry-dead"
        await s.api.patch(f"/v1/subscriptions/{subscription['id']}", json={"enabled": False})
        refused = await s.api.post(url, json={"since": since.isoformat()})
        assert refused.status_code == 409
        await s.api.patch(f"/v1/subscriptions/{subscription['id']}", json={"enabled": True})
        r.status = 200
        before = len(r.requests)
        retried = await s.api.post(url, json={"since": since.isoformat()})
        assert retried.status_code == 202, retried.text
        assert retried.json() == {"retried": 2}
        expected = await recorded_events(s, delivered_job, dead_job)
        await eventually(lambda: _delivered(r, sum(map(len, expected.values()))))
        assert events_by_job(r) == expected
        # Only the dead ones went again; the delivered job's webhooks were not resent.
        again = {req.webhook_id for req in r.requests[before:]}
        dead_ids = {d["event_id"] for d in (await s.job(dead_job["id"]))["deliveries"]}
        assert again == dead_ids
        # Nothing dead is left in the period: a second call finds nothing to do.
        assert (await s.api.post(url, json={"since": since.isoformat()})).json() == {"retried": 0}
        missing = await s.api.post(
            "/v1/subscriptions/00000000-0000-4000-8000-000000000000/retry-dead",
            json={"since": since.isoformat()},
        )
        assert missing.status_code == 404


async def test_deliveries_are_listed_by_filter_newest_first_a_page_at_a_time(
    database_url: str,
) -> None:
    async with receiver() as r, stack(database_url, job_seconds=0.3) as s:
        subscription = await subscribe(s, r)
        jobs = [await s.submit(ProjectId=f"p-{n}") for n in range(3)]
        await eventually(lambda: _finished_all(s, jobs))
        expected = await recorded_events(s, *jobs)
        total = sum(map(len, expected.values()))
        await eventually(lambda: _delivered(r, total))

        async def listed(**params: Any) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            cursor = None
            while True:
                page = await s.api.get(
                    "/v1/deliveries",
                    params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})},
                )
                assert page.status_code == 200, page.text
                items += page.json()["items"]
                cursor = page.json()["next_cursor"]
                if cursor is None:
                    return items

        everything = await listed()
        assert len(everything) == total
        assert [d["id"] for d in everything] == sorted((d["id"] for d in everything), reverse=True)
        assert {d["status"] for d in everything} == {"delivered"}
        mine = await listed(job_id=jobs[0]["id"])
        assert [d["event_type"] for d in reversed(mine)] == expected[jobs[0]["id"]]
        assert await listed(subscription_id=subscription["id"], status="delivered") == everything
        assert await listed(status="dead") == []
        submitted = await listed(event_type="job.submitted")
        assert {d["job_id"] for d in submitted} == {job["id"] for job in jobs}
        for params in (
            {"status": "lost"},
            {"job_id": "x"},
            {"event_type": "job.*"},
            {"cursor": "zz"},
        ):
            assert (await s.api.get("/v1/deliveries", params=params)).status_code == 422
        assert (await s.api.get("/v1/deliveries/999999")).status_code == 404
