"""Hostile and strange input, each once seen to stall icehook or answer 500: every one gets a
clear 4xx (or, for ICE, a job ``rejected`` with the reason), and no job is left stuck.

(The faults of peers and sockets are in tests/test_faults.py, over real processes.)
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import asyncpg
import pytest
import sqlalchemy as sa

from app.ice.signing import callback_signature
from app.store.tables import callbacks as callbacks_table
from app.store.tables import deliveries, jobs, subscriptions
from tests.conftest import asyncpg_dsn
from tests.helpers.receiver import receiver
from tests.helpers.stack import OUTPUT, envelope, stack
from tests.helpers.waiting import FINAL, eventually

# -- a parameter ICE's query string cannot carry (5) ---------------------------------------------


async def test_a_job_that_cannot_be_sent_is_rejected_alone_and_its_neighbours_confirmed(
    database_url: str,
) -> None:
    """A job left ``submitting`` with a parameter too large to send (from before the check at
    the API) is rejected with the reason, and the healthy jobs swept with it end final."""
    # ICE's list is given 10 s (the least two 1 s attempts allow) before the job is sent.
    quick = {"ice_timeout_seconds": 1.0, "ice_max_attempts": 2, "ice_listing_grace_seconds": 1.0}
    async with stack(
        database_url, sweep_after=1, job_seconds=1, callback_drop_rate=1, icehook=quick
    ) as s:
        healthy = [await s.submit(ProjectId=f"p{n}") for n in range(3)]
        stuck = uuid.uuid4()
        parameters = {
            "TemplateId": "t",
            "ClipsParam": json.dumps({"a": "x" * 40_000}),
            "OutputMediaConfig": json.dumps(OUTPUT),
            "ClientToken": f"icehook-{stuck.hex}",
            "UserData": "{}",
        }
        engine_url = asyncpg_dsn(s.database_url)
        conn = await asyncpg.connect(engine_url)
        try:
            await conn.execute(
                "INSERT INTO jobs (id, kind, status, parameters, check_at)"
                " VALUES ($1, 'job', 'submitting', $2::jsonb, now())",
                stuck,
                json.dumps(parameters),
            )
        finally:
            await conn.close()

        async def settled() -> bool:
            found = {j["id"]: j for j in await s.rows(sa.select(jobs))}
            return found[stuck]["status"] == "rejected" and all(
                found[uuid.UUID(h["id"])]["status"] in FINAL for h in healthy
            )

        await eventually(settled, 60)
        (row,) = await s.rows(sa.select(jobs).where(jobs.c.id == stuck))
        assert row["error_code"] == "icehook.RequestTooLarge"
        assert "ClipsParam" in row["error_message"]


async def test_a_large_timeline_goes_in_the_body_and_is_accepted(database_url: str) -> None:
    async with stack(database_url, job_seconds=60) as s:
        timeline = {"VideoTracks": [{"VideoTrackClips": [{"MediaURL": "x" * 100_000}]}]}
        answer = await s.api.post(
            "/v1/jobs", json={"Timeline": timeline, "OutputMediaConfig": OUTPUT}
        )
        assert answer.status_code == 201, answer.text


# -- cursors, numbers, paths (8, 13) ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/callbacks", "/v1/deliveries"])
async def test_a_cursor_beyond_64_bits_is_422(database_url: str, path: str) -> None:
    cursor = base64.urlsafe_b64encode(b"id|" + b"9" * 30).decode()
    async with stack(database_url) as s:
        answer = await s.api.get(path, params={"cursor": cursor})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] == "cursor"


async def test_digits_of_other_scripts_are_not_numbers(database_url: str) -> None:
    async with stack(database_url) as s:
        assert (await s.api.get("/v1/jobs", params={"limit": "\u0663"})).status_code == 422
        assert (await s.api.get("/v1/deliveries/\u0663")).status_code == 404
        assert (await s.api.get("/v1/deliveries/" + "9" * 40)).status_code == 404


async def test_no_redirect_is_built_from_the_host_header(database_url: str) -> None:
    async with stack(database_url) as s:
        answer = await s.api.get("/v1/jobs/", headers={"host": "evil.example"})
        assert answer.status_code == 404
        assert "location" not in answer.headers


# -- subscriptions and outbound addresses (10, 11) ----------------------------------------------


async def test_a_subscription_url_with_a_control_character_is_422(database_url: str) -> None:
    async with stack(database_url) as s:
        for url in ("http://example.com/\u0001hook", "http://example.com/a b", "http://e.com/\x7f"):
            answer = await s.api.post("/v1/subscriptions", json={"url": url, "event_types": ["*"]})
            assert answer.status_code == 422, url
            assert answer.json()["error"]["field"] == "url"


async def test_a_stored_url_that_cannot_be_requested_fails_its_attempts_and_ends_dead(
    database_url: str,
) -> None:
    """A subscription stored before the check (or edited in the database) is tried, each
    attempt recorded as failed, and its deliveries end dead: never an error loop."""
    async with (
        receiver() as r,
        stack(
            database_url,
            job_seconds=0.5,
            icehook={"delivery_retry_schedule": (0.2, 0.2)},
        ) as s,
    ):
        created = await s.api.post("/v1/subscriptions", json={"url": r.url, "event_types": ["*"]})
        assert created.status_code == 201
        conn = await asyncpg.connect(asyncpg_dsn(s.database_url))
        try:
            await conn.execute("UPDATE subscriptions SET url = $1", "http://127.0.0.1:9/\x01hook")
        finally:
            await conn.close()
        await s.submit(ProjectId="p")

        async def all_dead() -> bool:
            found = await s.rows(sa.select(deliveries))
            return bool(found) and all(d["status"] == "dead" for d in found)

        await eventually(all_dead, 60)
        (first, *_) = await s.rows(sa.select(deliveries).order_by(deliveries.c.id))
        assert first["attempts"] == 3
        assert first["last_error"]
        (sub,) = await s.rows(sa.select(subscriptions))
        assert "\x01" in sub["url"]
    assert r.requests == []


# -- secrets (12) ---------------------------------------------------------------------------------


# -- the database says no (13) --------------------------------------------------------------------


async def test_a_read_only_database_is_not_ready_and_refuses_with_503(
    database_url: str, server_url: str
) -> None:
    name = database_url.rsplit("/", 1)[1].split("?")[0]
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    finally:
        await admin.close()
    async with stack(database_url) as s:
        ready = await s.callbacks.get("/readyz")
        assert ready.status_code == 503
        assert "read-only" in ready.json()["reason"]
        answer = await s.callbacks.post("/callbacks/ice/x", json=envelope("j", "Success"))
        assert answer.status_code == 503, answer.text
        created = await s.api.post("/v1/jobs", json={"ProjectId": "p", "OutputMediaConfig": OUTPUT})
        assert created.status_code == 503, created.text


async def test_a_statement_out_of_time_is_503(database_url: str) -> None:
    async with stack(database_url, icehook={"database_timeout_seconds": 1.0}) as s:
        blocker = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE callbacks IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            answer = await s.callbacks.post("/callbacks/ice/x", json=envelope("j", "Success"))
            assert answer.status_code == 503, answer.text
            assert time.monotonic() - started < 10
            listed = await s.api.get("/v1/callbacks")
            assert listed.status_code == 503, listed.text
            await transaction.rollback()
        finally:
            await blocker.close()
        answer = await s.callbacks.post("/callbacks/ice/x", json=envelope("j", "Success"))
        assert answer.status_code == 401, "and once the lock is gone, all is well"


# -- callbacks (13) -------------------------------------------------------------------------------


async def test_a_timestamp_of_thousands_of_digits_is_401(database_url: str) -> None:
    key = "AuthKey123abc"
    async with stack(database_url, job_seconds=60, icehook={"callback_auth_keys": (key,)}) as s:
        job = await s.submit(ProjectId="p")
        token = await s.token_of(job["ice_job_id"])
        path = f"/callbacks/ice/{token}"
        url = str(s.callbacks.base_url).rstrip("/") + path

        async def post(stamp: str) -> int:
            signature = callback_signature(url, stamp, key)
            answer = await s.callbacks.post(
                path,
                json=envelope(job["ice_job_id"], "Queuing"),
                headers={"x-ice-timestamp": stamp, "x-ice-signature": signature},
            )
            return answer.status_code

        assert await post(str(int(time.time()))) == 200, "signed as ICE signs"
        assert await post("1" * 5000) == 401, "the same signature scheme, a time too long"


async def test_an_unknown_status_is_kept_and_judged_unrecognized(database_url: str) -> None:
    async with stack(database_url, job_seconds=60) as s:
        job = await s.submit(ProjectId="p")
        token = await s.token_of(job["ice_job_id"])
        body = envelope(job["ice_job_id"], "Exploded")
        assert (await s.callbacks.post(f"/callbacks/ice/{token}", json=body)).status_code == 200

        async def judged() -> bool:
            (row,) = await s.rows(sa.select(callbacks_table))
            return bool(row["outcome"] != "pending")

        await eventually(judged)
        (row,) = await s.rows(sa.select(callbacks_table))
        assert row["outcome"] == "unrecognized"
        assert "'Exploded'" in row["detail"]


async def test_a_stored_callback_body_holds_no_token(database_url: str) -> None:
    async with stack(database_url, job_seconds=1) as s:
        job = await s.submit(ProjectId="p")
        token = await s.token_of(job["ice_job_id"])

        async def called_back() -> bool:
            return bool(await s.rows(sa.select(callbacks_table)))

        await eventually(called_back)
        for row in await s.rows(sa.select(callbacks_table)):
            body = bytes(row["body"])
            assert token.encode() not in body
            assert b"/callbacks/ice/<token>" in body  # ICE repeats the NotifyAddress
