"""Subscribers that misbehave and subscribers that shape what they get, end to end over real
sockets, every webhook verified with the ``standardwebhooks`` library: isolation from a slow
neighbour, being told when a subscription is disabled and enabled, recovery of what was not
delivered, filters and static headers."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.test_webhooks import (
    FAST_RETRIES,
    events_by_job,
    finished,
    recorded_events,
    subscribe,
)
from tests.helpers.processes import run_icehook
from tests.helpers.receiver import Receiver, receiver
from tests.helpers.stack import Stack, stack
from tests.helpers.waiting import eventually


async def delivered_at_least(r: Receiver, count: int) -> bool:
    return len(r.delivered()) >= count


async def all_finished(s: Stack, *jobs: dict[str, Any]) -> bool:
    return all([await finished(s, job) for job in jobs])


def gauge(text: str, state: str) -> float:
    found = re.search(rf'^icehook_subscriptions{{state="{state}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else -1.0


async def test_a_slow_subscriber_holds_only_its_share_and_the_others_are_delivered(
    database_url: str,
) -> None:
    """Four slots a worker: the slow subscriber never answers (until released) and holds
    two; the fast one gets every webhook meanwhile."""
    icehook = {"delivery_concurrency": 4, "delivery_timeout_seconds": 60.0}
    async with (
        receiver() as slow,
        receiver() as fast,
        stack(database_url, job_seconds=0.2, icehook=icehook) as s,
    ):
        slow.hold = True
        await subscribe(s, slow)
        await subscribe(s, fast)
        jobs = [await s.submit(ProjectId=f"p-{n}") for n in range(4)]
        await eventually(lambda: all_finished(s, *jobs))
        expected = await recorded_events(s, *jobs)
        await eventually(lambda: delivered_at_least(fast, sum(map(len, expected.values()))))
        assert events_by_job(fast) == expected
        assert len(slow.arrivals) == 2, "the slow subscriber holds half the slots, no more"
        slow.hold = False
        slow.release.set()
        await eventually(lambda: delivered_at_least(slow, sum(map(len, expected.values()))))
        assert events_by_job(slow) == expected


async def test_a_subscription_limited_to_one_in_flight_gets_one_at_a_time(
    database_url: str,
) -> None:
    async with receiver() as r, stack(database_url, job_seconds=0.2) as s:
        r.hold = True
        await subscribe(s, r, max_in_flight=1)
        jobs = [await s.submit(ProjectId=f"p-{n}") for n in range(3)]
        await eventually(lambda: all_finished(s, *jobs))
        await eventually(lambda: _arrived(r, 1))
        await asyncio.sleep(0.5)
        assert len(r.arrivals) == 1
        r.hold = False
        r.release.set()
        expected = await recorded_events(s, *jobs)
        await eventually(lambda: delivered_at_least(r, sum(map(len, expected.values()))))
        assert events_by_job(r) == expected


async def _arrived(r: Receiver, count: int) -> bool:
    return len(r.arrivals) >= count


async def test_a_subscription_disabled_by_a_410_is_told_counted_queued_and_caught_up(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.subscriptions")
    async with (
        receiver() as gone,
        receiver() as operator,
        stack(database_url, job_seconds=0.2) as s,
    ):
        watcher = await subscribe(s, operator, event_types=["subscription.*"])
        subscription = await subscribe(s, gone, event_types=["job.succeeded"])
        gone.status = 410
        first = await s.submit(ProjectId="p-gone")
        await eventually(lambda: finished(s, first))
        await eventually(lambda: delivered_at_least(operator, 1))
        (notice,) = operator.delivered()
        assert notice["type"] == "subscription.disabled"
        assert notice["data"]["id"] == subscription["id"]
        assert notice["data"]["disabled_reason"] == "the endpoint answered 410 Gone"
        assert notice["data"]["queue_until"] is not None
        assert "secret" not in json.dumps(notice)
        warning = next(r for r in caplog.records if r.name == "app.subscriptions")
        assert warning.levelno == logging.WARNING
        assert subscription["id"] in warning.getMessage()
        assert "410" in warning.getMessage()

        async def counted() -> bool:
            text = (await s.api.get("/metrics")).text
            return gauge(text, "disabled") == 1 and gauge(text, "enabled") == 1

        await eventually(counted)
        shown = (await s.api.get(f"/v1/subscriptions/{subscription['id']}")).json()
        assert (shown["enabled"], shown["disabled_reason"]) == (
            False,
            notice["data"]["disabled_reason"],
        )

        # While it is disabled its events are queued for it, not sent.
        later = [await s.submit(ProjectId=f"p-later-{n}") for n in range(3)]
        await eventually(lambda: all_finished(s, *later))
        await asyncio.sleep(0.5)
        assert len(gone.requests) == 1
        gone.status = 200
        enabled = await s.api.patch(
            f"/v1/subscriptions/{subscription['id']}", json={"enabled": True}
        )
        assert enabled.status_code == 200, enabled.text
        assert (enabled.json()["disabled_reason"], enabled.json()["queue_until"]) == (None, None)
        await eventually(lambda: delivered_at_least(gone, len(later)))
        assert events_by_job(gone) == {job["id"]: ["job.succeeded"] for job in later}
        await eventually(lambda: delivered_at_least(operator, 2))
        assert [e["type"] for e in operator.delivered()] == [
            "subscription.disabled",
            "subscription.enabled",
        ]
        assert all(d.verified_with == (watcher["secret"],) for d in operator.requests)

        # Pulled, they are the same events with the same ids ("*" is jobs' and batches' only).
        # (A page may hold back an event recorded just after a rolled-back one for a minute:
        # store/events.py.)
        async def pulled() -> bool:
            listed = await s.api.get("/v1/events", params={"type": "subscription.*"})
            return [(e["id"], e["type"]) for e in listed.json()["items"]] == [
                (e["webhook_id"], e["type"]) for e in operator.delivered()
            ]

        await eventually(pulled, 90)
        everything = (await s.api.get("/v1/events", params={"type": "*"})).json()["items"]
        assert not any(e["type"].startswith("subscription.") for e in everything)
        messages = [r.getMessage() for r in caplog.records if r.name == "app.subscriptions"]
        assert len(messages) == 2
        assert "enabled again" in messages[1]


async def test_a_disabled_subscriptions_events_stop_queueing_after_its_window(
    database_url: str,
) -> None:
    icehook = {"webhook_disabled_queue_seconds": 0.001}
    async with receiver() as r, stack(database_url, job_seconds=0.2, icehook=icehook) as s:
        subscription = await subscribe(s, r)
        off = await s.api.patch(f"/v1/subscriptions/{subscription['id']}", json={"enabled": False})
        assert off.json()["disabled_reason"] == "disabled by an operator"
        job = await s.submit(ProjectId="p-off")
        await eventually(lambda: finished(s, job))
        await s.api.patch(f"/v1/subscriptions/{subscription['id']}", json={"enabled": True})
        await asyncio.sleep(0.5)
        assert r.requests == [], "nothing was queued once its window had passed"


async def test_recover_sends_exactly_what_was_not_delivered(
    database_url: str, clean_env: dict[str, str]
) -> None:
    icehook = {"delivery_retry_schedule": FAST_RETRIES}
    async with receiver() as r, stack(database_url, job_seconds=0.2, icehook=icehook) as s:
        since = datetime.now(UTC)
        subscription = await subscribe(s, r)
        fine = await s.submit(ProjectId="p-fine")
        await eventually(lambda: finished(s, fine))
        delivered = (await recorded_events(s, fine))[fine["id"]]
        await eventually(lambda: delivered_at_least(r, len(delivered)))
        r.status = 503  # down: the next job's webhooks die
        down = await s.submit(ProjectId="p-down")
        await eventually(lambda: finished(s, down))
        missed = (await recorded_events(s, down))[down["id"]]

        async def all_dead() -> bool:
            listed = await s.api.get(
                "/v1/deliveries", params={"status": "dead", "job_id": down["id"]}
            )
            return len(listed.json()["items"]) == len(missed)

        await eventually(all_dead)
        before = len(r.requests)
        r.status = 200
        url = f"/v1/subscriptions/{subscription['id']}/recover"
        assert (await s.api.post(url, json={})).status_code == 422
        # The operator command does what the endpoint does.
        env = {**clean_env, "ICEHOOK_DATABASE_URL": database_url}
        command = ("subscriptions", "recover", subscription["id"], "--since", since.isoformat())
        code, out, err = await run_icehook(*command, "--json", env=env)
        assert code == 0, err
        assert json.loads(out) == {"recovered": len(missed)}
        await eventually(lambda: delivered_at_least(r, len(delivered) + len(missed)))
        await asyncio.sleep(0.3)
        again = [json.loads(d.body)["data"]["id"] for d in r.requests[before:]]
        assert again == [down["id"]] * len(missed), "only the undelivered ones, once each"
        assert events_by_job(r) == {fine["id"]: delivered, down["id"]: missed}
        # Everything is delivered now: recovering again sends nothing.
        recovered = await s.api.post(url, json={"since": since.isoformat()})
        assert recovered.status_code == 202, recovered.text
        assert recovered.json() == {"recovered": 0}
        code, out, _ = await run_icehook(*command[:3], "--since", "yesterday", env=env)
        assert code == 2


async def test_a_filter_lets_through_only_its_projects_and_user_data(database_url: str) -> None:
    async with (
        receiver() as narrow,
        receiver() as everything,
        stack(database_url, job_seconds=0.2) as s,
    ):
        chosen = {"project_id": ["p-a", "p-c"], "user_data": {"tenant": "acme", "tier": [1, 2]}}
        subscription = await subscribe(s, narrow, event_types=["job.succeeded"], filter=chosen)
        assert subscription["filter"] == {
            "project_id": ["p-a", "p-c"],
            "user_data": {"tenant": ["acme"], "tier": ["1", "2"]},
        }
        await subscribe(s, everything, event_types=["job.succeeded"])
        wanted = await s.submit(ProjectId="p-a", UserData={"tenant": "acme", "tier": 2})
        as_text = await s.submit(ProjectId="p-c", UserData={"tenant": "acme", "tier": "1"})
        others = [
            await s.submit(ProjectId="p-a", UserData={"tenant": "umbrella", "tier": 1}),
            await s.submit(ProjectId="p-b", UserData={"tenant": "acme", "tier": 1}),
            await s.submit(ProjectId="p-a", UserData={"tenant": "acme"}),
            await s.submit(ProjectId="p-a"),
        ]
        await eventually(lambda: all_finished(s, wanted, as_text, *others))
        await eventually(lambda: delivered_at_least(everything, 6))
        await eventually(lambda: delivered_at_least(narrow, 2))
        await asyncio.sleep(0.3)
        assert set(events_by_job(narrow)) == {wanted["id"], as_text["id"]}

        url = f"/v1/subscriptions/{subscription['id']}"
        refusals: list[dict[str, Any]] = [
            {"filter": {"project_id": []}},
            {"filter": {"tenant": "acme"}},
            {"filter": {"user_data": {"tenant": {"nested": 1}}}},
        ]
        for bad in refusals:
            refused = await s.api.patch(url, json=bad)
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["error"]["field"] == "filter"
        opened = await s.api.patch(url, json={"filter": None})
        assert opened.json()["filter"] is None
        later = await s.submit(ProjectId="p-z")
        await eventually(lambda: finished(s, later))
        await eventually(lambda: delivered_at_least(narrow, 3))
        assert later["id"] in events_by_job(narrow)


async def test_static_headers_are_sent_shown_masked_and_cannot_replace_the_signature(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "gw-token-8f3a1c"
    async with receiver() as r, stack(database_url, job_seconds=0.2) as s:
        subscription = await subscribe(
            s, r, event_types=["job.succeeded"], headers={"X-Gateway-Token": token}
        )
        assert subscription["headers"] == {"x-gateway-token": "********"}
        job = await s.submit(ProjectId="p-headers")
        await eventually(lambda: finished(s, job))
        await eventually(lambda: delivered_at_least(r, 1))
        (request,) = r.requests
        assert request.headers["x-gateway-token"] == token
        assert request.verified_with == (subscription["secret"],)
        url = f"/v1/subscriptions/{subscription['id']}"
        shown = [
            (await s.api.get(url)).text,
            (await s.api.get("/v1/subscriptions")).text,
            (await s.api.get("/v1/deliveries")).text,
        ]
        assert all(token not in text for text in shown)
        for reserved in ("webhook-signature", "Webhook-Id", "Host", "Content-Type"):
            refused = await s.api.patch(url, json={"headers": {reserved: "x"}})
            assert refused.status_code == 422, refused.text
            assert "cannot be replaced" in refused.json()["error"]["message"]
        split = await s.api.patch(url, json={"headers": {"X-A": "1\r\nX-B: 2"}})
        assert split.status_code == 422
        cleared = await s.api.patch(url, json={"headers": None})
        assert cleared.json()["headers"] == {}
    assert token not in caplog.text
