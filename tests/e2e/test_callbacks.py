"""Callback intake: bad input gets a clear 4xx, is kept for the audit, and is never applied."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator

import sqlalchemy as sa

from app.ice.signing import callback_signature
from app.store.callbacks import KEPT_OF_REFUSED
from app.store.tables import callbacks as callbacks_table
from tests.helpers.stack import Stack, envelope, stack
from tests.helpers.waiting import eventually

AUTH_KEY = "Rotation2Key"


async def submitted_job(s: Stack) -> tuple[dict[str, object], str]:
    job = await s.submit(ProjectId="p-intake")
    return job, await s.token_of(str(job["ice_job_id"]))


async def test_an_unknown_token_is_401_kept_with_the_peer_and_never_applied(
    database_url: str,
) -> None:
    async with stack(database_url, job_seconds=60) as s:
        body = json.dumps(envelope("x", "Success", Padding="x" * 10_000)).encode()
        answer = await s.callbacks.post(
            "/callbacks/ice/not-a-token",
            content=body,
            headers={
                "content-type": "application/json",
                "x-request-id": "ice-1",
                "x-big": "y" * 8000,
                "user-agent": "u" * 500,
            },
        )
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"
        (row,) = await s.rows(sa.select(callbacks_table))
        assert (row["outcome"], row["job_id"], row["peer"]) == ("rejected", None, "127.0.0.1")
        assert row["request_id"] == "ice-1", "the audit row names the request, as its logs do"
        assert row["detail"] == "unknown callback token"
        assert len(row["body"]) == KEPT_OF_REFUSED, "of a refused one, a short prefix"
        assert row["headers"] == {
            "body_bytes": len(body),
            "user-agent": "u" * 200,
            "content-type": "application/json",
        }, "and a bounded summary of its headers, never all of them"
        assert row["dedup_key"] is None
        assert row["processed_at"] is not None


async def test_malformed_json_is_400_and_the_raw_body_is_kept(database_url: str) -> None:
    async with stack(database_url, job_seconds=60) as s:
        job, token = await submitted_job(s)
        answer = await s.callbacks.post(f"/callbacks/ice/{token}", content=b"{not json")
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "malformed_callback"
        not_an_envelope = await s.callbacks.post(f"/callbacks/ice/{token}", content=b"[1, 2]")
        assert not_an_envelope.status_code == 400
        deep = b"[" * 5000 + b"]" * 5000  # deeper than Python's JSON parser goes
        assert (await s.callbacks.post(f"/callbacks/ice/{token}", content=deep)).status_code == 400
        rows = await s.rows(sa.select(callbacks_table).order_by(callbacks_table.c.id))
        assert [(r["outcome"], bytes(r["body"])) for r in rows] == [
            ("malformed", b"{not json"),
            ("malformed", b"[1, 2]"),
            ("malformed", deep),
        ]
        assert {r["job_id"] for r in rows} == {uuid.UUID(str(job["id"]))}


async def test_an_unknown_event_type_is_200_kept_and_not_applied(database_url: str) -> None:
    async with stack(database_url, job_seconds=60) as s:
        job, token = await submitted_job(s)
        body = envelope(str(job["ice_job_id"]), "Success", event="RegisterMediaComplete")
        assert (await s.callbacks.post(f"/callbacks/ice/{token}", json=body)).status_code == 200
        (row,) = await s.rows(sa.select(callbacks_table))
        assert (row["outcome"], row["event_type"]) == ("ignored", "RegisterMediaComplete")
        assert (await s.job(str(job["id"])))["status"] == "submitted"


async def test_an_oversized_body_is_413(database_url: str) -> None:
    async with stack(database_url, job_seconds=60, icehook={"callback_max_bytes": 1024}) as s:
        _, token = await submitted_job(s)
        big = json.dumps(envelope("x", "Success", Padding="x" * 2000))
        assert (await s.callbacks.post(f"/callbacks/ice/{token}", content=big)).status_code == 413

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield b"x" * 600  # no Content-Length: the limit is enforced while reading

        streamed = await s.callbacks.post(f"/callbacks/ice/{token}", content=chunks())
        assert streamed.status_code == 413
        assert await s.rows(sa.select(callbacks_table)) == []


async def test_with_auth_keys_a_signature_that_is_sent_must_verify(database_url: str) -> None:
    """ICE may not sign callbacks to a job's own address (docs/ice.md): one with the job's
    token and no signature is kept as a hint, marked unsigned (icehook confirms every
    callback with ICE); a signature that is sent must verify, within its time."""
    icehook = {"callback_auth_keys": ("OldKey1", AUTH_KEY)}
    async with stack(database_url, job_seconds=60, icehook=icehook) as s:
        job, token = await submitted_job(s)
        url = f"/callbacks/ice/{token}"
        full_url = str(s.callbacks.base_url).rstrip("/") + url
        # What ICE says for the first 6 s of this job, a stale claim after: never one that
        # ICE contradicts, which the worker would judge rejected once it confirms it.
        body = envelope(str(job["ice_job_id"]), "Init")
        now = str(int(time.time()))

        wrong = await s.callbacks.post(
            url,
            json=body,
            headers={
                "x-ice-timestamp": now,
                "x-ice-signature": callback_signature(full_url, now, "Nope123"),
            },
        )
        assert wrong.status_code == 401
        old = str(int(time.time()) - 3600)
        expired = await s.callbacks.post(
            url,
            json=body,
            headers={
                "x-ice-timestamp": old,
                "x-ice-signature": callback_signature(full_url, old, AUTH_KEY),
            },
        )
        assert expired.status_code == 401
        good = await s.callbacks.post(
            url,
            json=body,
            headers={
                "x-ice-timestamp": now,
                "x-ice-signature": callback_signature(full_url, now, AUTH_KEY),
            },
        )
        assert good.status_code == 200
        unsigned_body = envelope(str(job["ice_job_id"]), "Init", Sent="unsigned")  # not a replay
        unsigned = await s.callbacks.post(url, json=unsigned_body)
        assert unsigned.status_code == 200
        rows = await s.rows(sa.select(callbacks_table).order_by(callbacks_table.c.id))
        assert [(r["outcome"], r["signed"]) for r in rows[:2]] == [("rejected", False)] * 2
        assert [r["signed"] for r in rows[2:]] == [True, False]
        assert {r["outcome"] for r in rows[2:]} <= {"pending", "duplicate", "applied", "stale"}
        assert all(AUTH_KEY not in (r["detail"] or "") for r in rows)


async def test_ice_signed_callbacks_from_the_simulator_are_accepted(database_url: str) -> None:
    icehook = {"callback_auth_keys": (AUTH_KEY,)}
    async with stack(
        database_url, job_seconds=0.3, callback_auth_key=AUTH_KEY, icehook=icehook
    ) as s:
        job = await s.submit(ProjectId="p-signed")

        async def answered() -> bool:
            log = (await s.sim.get("/_sim/callbacks")).json()["callbacks"]
            return any(c["response_status"] == 200 for c in log)

        async with asyncio.timeout(60):
            while not await answered():
                await asyncio.sleep(0.1)
        rows = await s.rows(sa.select(callbacks_table))
        assert [r["ice_job_id"] for r in rows] == [job["ice_job_id"]]
        assert "x-ice-signature" in rows[0]["headers"]


async def test_the_token_is_stored_only_as_its_hash(database_url: str) -> None:
    async with stack(database_url, job_seconds=0.3) as s:
        job, token = await submitted_job(s)
        (row,) = await s.rows(sa.text("SELECT * FROM jobs"))  # type: ignore[arg-type]
        assert bytes(row["callback_token_hash"]) == hashlib.sha256(token.encode()).digest()
        assert token not in json.dumps(dict(row), default=str)

        async def final() -> bool:
            return bool((await s.job(str(job["id"])))["status"] == "succeeded")

        await eventually(final)
        assert token not in json.dumps(await s.job(str(job["id"])))


async def test_nul_and_lone_surrogates_in_a_callback_are_stored_not_refused(
    database_url: str,
) -> None:
    async with stack(database_url, job_seconds=60) as s:
        _, token = await submitted_job(s)
        message = rb'{"JobId": "a\u0000b", "Status": "\ud800"}'
        body = b'{"EventType": "ProduceMediaComplete", "MessageBody": ' + message + b"}"
        answer = await s.callbacks.post(f"/callbacks/ice/{token}", content=body)
        assert answer.status_code == 200
        (row,) = await s.rows(sa.select(callbacks_table))
        assert bytes(row["body"]) == body
        assert (row["ice_job_id"], row["ice_status"]) == ("a\ufffdb", "?")


async def test_a_late_copy_is_judged_when_it_is_answered(database_url: str) -> None:
    async with stack(database_url, job_seconds=0.3) as s:
        job, token = await submitted_job(s)

        async def final() -> bool:
            return bool((await s.job(str(job["id"])))["status"] == "succeeded")

        await eventually(final)
        body = envelope(str(job["ice_job_id"]), "Success")
        for n in range(3):  # the first teaches the intake that the job is final
            body["EventTime"] = f"2026-11-30T12:00:0{n}Z"
            assert (await s.callbacks.post(f"/callbacks/ice/{token}", json=body)).is_success
        rows = await s.rows(sa.select(callbacks_table).order_by(callbacks_table.c.id))
        late = rows[-2:]
        judged = [(r["outcome"], r["detail"]) for r in late]
        assert judged == [("duplicate", "already succeeded")] * 2
        assert all(r["dedup_key"] is None for r in late), "a judged callback is kept as sent"
        assert all(r["processed_at"] == r["received_at"] for r in late), "judged as stored"
