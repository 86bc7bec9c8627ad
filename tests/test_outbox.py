"""Webhooks to subscribers, end to end over real sockets: signed as Standard Webhooks,
retried, in order per job, never sent twice for one transition, and only where allowed."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import random
import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from app.core.delivery import Attempt, next_delay, parse_retry_after, verdict
from app.core.moves import Move
from app.core.statuses import EventSource, JobStatus
from app.settings import Settings
from app.store import deliveries as store_deliveries
from app.store import jobs as store_jobs
from app.store.tables import deliveries, delivery_attempts, jobs, subscriptions
from app.webhooks import addresses
from app.webhooks.sender import send
from app.webhooks.signing import signing_secrets
from tests.receiver import Receiver, receiver
from tests.stack import Stack, eventually, stack

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


def test_the_retry_schedule_has_jitter_and_honours_retry_after() -> None:
    rng = random.Random(7)
    schedule = (5.0, 30.0, 120.0)
    delays = [next_delay(schedule, n, None, rng) for n in (1, 2, 3)]
    for delay, step in zip(delays, schedule, strict=True):
        assert delay is not None
        assert step * 0.8 <= delay <= step * 1.2
    assert next_delay(schedule, 4, None, rng) is None, "after the schedule: dead"
    delay = next_delay(schedule, 1, 90.0, rng)
    assert delay == 90.0, "never sooner than Retry-After"
    assert next_delay(schedule, 1, 10**9, rng) == 120.0, "but not past the schedule"


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Mon, 30 Nov 2026 12:01:00 GMT", now) == 60.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address under test, not a bind)
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("fd00::1", "private"),
        ("100.64.0.1", "public"),
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str, reason: str) -> None:
    refused = addresses.refusal(ipaddress.ip_address(address), ())
    assert refused is not None
    assert reason in refused


def test_an_allowed_network_admits_its_addresses() -> None:
    allowed = (ipaddress.ip_network("127.0.0.0/8"),)
    assert addresses.refusal(ipaddress.ip_address("127.0.0.5"), allowed) is None
    assert addresses.refusal(ipaddress.ip_address("10.0.0.1"), allowed) is not None
    assert addresses.refusal(ipaddress.ip_address("93.184.216.34"), ()) is None


async def test_the_request_goes_to_the_checked_address_and_keeps_its_host() -> None:
    allowed = (ipaddress.ip_network("127.0.0.0/8"),)
    plain = await addresses.resolve("http://localhost:8080/hook?x=1", allowed)
    assert plain == addresses.Target("http://127.0.0.1:8080/hook?x=1", "localhost:8080", None)
    tls = await addresses.resolve("https://localhost/hook", allowed)
    assert tls == addresses.Target("https://127.0.0.1:443/hook", "localhost", "localhost")
    with pytest.raises(addresses.Refused, match="loopback"):
        await addresses.resolve("http://localhost/hook", ())


SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def a_delivery(url: str = "http://localhost:8080/hook") -> dict[str, Any]:
    return {
        "id": 1,
        "attempts": 0,
        "subscription_id": uuid.uuid4(),
        "event_id": "msg_1",
        "payload": {"type": "job.succeeded", "timestamp": "t", "data": {"id": "j"}},
        "url": url,
        "secret": SECRET,
        "previous_secret": None,
        "previous_secret_until": None,
    }


LOOPBACK = Settings(allowed_webhook_nets=(ipaddress.ip_network("127.0.0.0/8"),))


async def test_a_delivery_is_signed_sent_to_the_checked_address_and_not_redirected() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = b"\x00" + b"x" * 5000  # any bytes at all; text without NUL is kept
        return httpx.Response(302, headers={"location": "http://10.0.0.1/"}, content=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        attempt = await send(client, a_delivery(), LOOPBACK, datetime.now(UTC))
    (request,) = seen
    assert (request.url.host, request.headers["host"]) == ("127.0.0.1", "localhost:8080")
    payload = Webhook(SECRET).verify(request.content.decode(), dict(request.headers))
    assert payload["type"] == "job.succeeded"
    assert request.headers["webhook-id"] == "msg_1"
    assert (attempt.status_code, attempt.delivered) == (302, False)
    assert attempt.excerpt == "\ufffd" + "x" * 1023


async def test_a_failed_request_is_an_attempt_with_its_error() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    def dropped(request: httpx.Request) -> httpx.Response:
        raise aiohttp.ServerDisconnectedError()  # one the transport lets through

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        attempt = await send(client, a_delivery(), LOOPBACK, datetime.now(UTC))
        refused = await send(client, a_delivery(), Settings(), datetime.now(UTC))
    async with httpx.AsyncClient(transport=httpx.MockTransport(dropped)) as client:
        lost = await send(client, a_delivery(), LOOPBACK, datetime.now(UTC))
    assert lost.error is not None
    assert lost.error.startswith("ServerDisconnectedError")
    assert attempt.status_code is None
    assert attempt.error is not None
    assert attempt.error.startswith("ConnectTimeout")
    assert refused.error is not None
    assert refused.error.startswith("refused: localhost")


def test_a_rotated_out_secret_signs_only_during_its_overlap() -> None:
    now = datetime.now(UTC)
    row = {"secret": "new", "previous_secret": "old", "previous_secret_until": now}
    assert signing_secrets(row, now - timedelta(seconds=1)) == ["new", "old"]
    assert signing_secrets(row, now + timedelta(seconds=1)) == ["new"]


async def record(
    session: AsyncSession,
    delivery: Mapping[Any, Any],
    attempt: Attempt,
    settings: Settings,
    rng: random.Random,
) -> str:
    """Record one delivery's ``attempt`` (``store.deliveries.record``); its new status."""
    judged = verdict(attempt, delivery["attempts"], settings.delivery_retry_schedule, rng)
    await store_deliveries.record(
        session, [(delivery, attempt, judged)], settings.webhook_disable_after_seconds
    )
    return judged.status.value


async def two_events(sessionmaker: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    """A subscription, and one job with two events for it; returns the subscription id."""
    subscription_id, job_id = uuid.uuid4(), uuid.uuid4()
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.insert(subscriptions).values(
                id=subscription_id, url="http://localhost/hook", event_types=["*"], secret=SECRET
            )
        )
        await session.execute(
            sa.insert(jobs).values(id=job_id, kind="job", status="submitted", ice_job_id="j")
        )
    for status in (JobStatus.PROCESSING, JobStatus.SUCCEEDED):
        await move(sessionmaker, job_id, status)
    return subscription_id


async def move(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID, status: JobStatus
) -> None:
    """Record ``status`` of ``job_id``: its event, message and deliveries."""
    async with sessionmaker.begin() as session:
        job = await store_jobs.lock(session, job_id)
        assert job is not None
        await store_jobs.record_status(session, Move(job, status, EventSource.CALLBACK, None))


async def test_a_jobs_next_event_waits_until_the_earlier_one_is_delivered_or_dead(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await two_events(sessionmaker)
    settings = Settings(delivery_retry_schedule=(0.001,))
    rng = random.Random(1)
    async with sessionmaker.begin() as session:
        (first,) = await store_deliveries.claim(session, limit=10, lease_seconds=60)
    assert first["payload"]["type"] == "job.processing"
    async with sessionmaker.begin() as session:
        assert await store_deliveries.claim(session, limit=10, lease_seconds=60) == [], (
            "leased, or next"
        )
        failed = Attempt(status_code=500)
        assert await record(session, first, failed, settings, rng) == "pending"
    await asyncio.sleep(0.01)
    async with sessionmaker.begin() as session:
        (again,) = await store_deliveries.claim(session, limit=10, lease_seconds=60)
        assert again["event_id"] == first["event_id"], "the same event again, not the next one"
        assert await record(session, again, failed, settings, rng) == "dead"
    async with sessionmaker.begin() as session:
        (second,) = await store_deliveries.claim(session, limit=10, lease_seconds=60)
    assert second["payload"]["type"] == "job.succeeded"


async def test_410_gone_disables_the_subscription(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    subscription_id = await two_events(sessionmaker)
    async with sessionmaker.begin() as session:
        (first,) = await store_deliveries.claim(session, limit=10, lease_seconds=60)
        gone = Attempt(status_code=410)
        assert await record(session, first, gone, Settings(), random.Random()) == "dead"
    async with sessionmaker.begin() as session:
        row = (await session.execute(sa.select(subscriptions))).mappings().one()
        assert (row["id"], row["enabled"]) == (subscription_id, False)
        assert "410" in row["disabled_reason"]
        assert await store_deliveries.claim(session, limit=10, lease_seconds=60) == [], (
            "held while off"
        )


async def test_a_subscription_failing_for_too_long_is_disabled_and_a_success_clears_it(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await two_events(sessionmaker)
    settings = Settings(delivery_retry_schedule=(0.001,) * 5, webhook_disable_after_seconds=3600)
    rng = random.Random(1)
    async with sessionmaker.begin() as session:
        (first,) = await store_deliveries.claim(session, limit=1, lease_seconds=60)
        await record(session, first, Attempt(status_code=200), settings, rng)
        (second,) = await store_deliveries.claim(session, limit=1, lease_seconds=60)
        await record(session, second, Attempt(error="refused"), settings, rng)
        row = (await session.execute(sa.select(subscriptions))).mappings().one()
        assert row["enabled"], "failing, not yet for long"
        assert row["failing_since"] is not None
        await session.execute(
            sa.update(subscriptions).values(failing_since=sa.func.now() - timedelta(hours=2))
        )
    await asyncio.sleep(0.01)
    async with sessionmaker.begin() as session:
        (second,) = await store_deliveries.claim(session, limit=1, lease_seconds=60)
        await record(session, second, Attempt(status_code=503), settings, rng)
        row = (await session.execute(sa.select(subscriptions))).mappings().one()
        assert not row["enabled"]
        assert "every delivery has failed since" in row["disabled_reason"]


async def test_deliveries_finished_together_are_recorded_together(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Successes of one lot are one statement; a failure in the same lot is scheduled again
    and leaves the subscription failing, while the successes clear nothing they should not."""
    subscription_id = uuid.uuid4()
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.insert(subscriptions).values(
                id=subscription_id, url="http://localhost/hook", event_types=["*"], secret=SECRET
            )
        )
        job_ids = [uuid.uuid4() for _ in range(3)]
        for n, job_id in enumerate(job_ids):
            await session.execute(
                sa.insert(jobs).values(
                    id=job_id, kind="job", status="processing", ice_job_id=f"j{n}"
                )
            )
    for job_id in job_ids:
        await move(sessionmaker, job_id, JobStatus.SUCCEEDED)
    settings = Settings(delivery_retry_schedule=(60.0,))
    async with sessionmaker.begin() as session:
        claimed = await store_deliveries.claim(session, limit=10, lease_seconds=60)
        attempts = [
            Attempt(status_code=200, latency_ms=1.0, excerpt="ok"),
            Attempt(status_code=500, latency_ms=2.0, excerpt="no"),
            Attempt(status_code=204, latency_ms=3.0, excerpt=""),
        ]
        rng = random.Random(1)
        judged = [
            (delivery, attempt, verdict(attempt, 0, settings.delivery_retry_schedule, rng))
            for delivery, attempt in zip(claimed, attempts, strict=True)
        ]
        await store_deliveries.record(session, judged, settings.webhook_disable_after_seconds)
    assert [v.status for _, _, v in judged] == ["delivered", "pending", "delivered"]
    async with sessionmaker() as session:
        rows = {row["id"]: row for row in (await session.execute(sa.select(deliveries))).mappings()}
        logged = (
            await session.execute(
                sa.select(delivery_attempts.c.delivery_id, delivery_attempts.c.status_code)
            )
        ).all()
        failing = (await session.execute(sa.select(subscriptions.c.failing_since))).scalar_one()
    for delivery, attempt in zip(claimed, attempts, strict=True):
        row = rows[delivery["id"]]
        assert row["attempts"] == 1
        assert row["last_status_code"] == attempt.status_code
        assert row["lease_until"] is None
        assert (row["delivered_at"] is not None) == attempt.delivered
    assert sorted(logged) == sorted(
        (d["id"], a.status_code) for d, a in zip(claimed, attempts, strict=True)
    )
    assert failing is not None, "the failure in the lot is noted"


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
