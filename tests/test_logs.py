"""Logs: one JSON object per line, the request id on a request's records, no secret anywhere."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.settings import Settings
from app.telemetry import logs
from app.wiring import create_app
from tests.receiver import receiver
from tests.stack import OUTPUT, eventually
from tests.support import log_record, serve, serve_simulated

API_KEY = "logs-api-key-0123"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """What icehook's logging writes, configured as ``icehook`` does, then put back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_configured_secrets_and_icehooks_own_are_redacted_by_value_and_shape() -> None:
    redact = logs.Redactor(["configured-key", 'quote"key', "a+b/c=d"])
    line = (
        'key configured-key and quote\\"key, a%2Bb%2Fc%3Dd; POST /callbacks/ice/Abc-123_xyz?x=1; '
        "NotifyAddress%3Dhttp%253A%252F%252Fh%252Fcallbacks%252Fice%252FEnc0ded-Tok; "
        "UserData=%7B%22u%22%3A%22http%3A%2F%2Fh%2Fcallbacks%2Fice%2FOnce-Encoded%22%7D; "
        "whsec_c2VjcmV0IHNlY3JldA==, whsec_c2Vj%2Bc%2Fd%3D; Authorization: Bearer some.key; "
        "webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= ; "
        "ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host,Signature=0a1b2c3d; "
        "X-ICE-SIGNATURE: 0123456789abcdef0123456789abcdef; "
        "postgresql+psycopg://icehook:hunter2@db:5432/icehook"
    )
    redacted = redact(line)
    for secret in (
        "configured-key",
        "quote",
        "a%2Bb",
        "Abc-123_xyz",
        "Enc0ded-Tok",
        "Once-Encoded",
        "c2VjcmV0IHNlY3JldA",
        "c2Vj",
        "some.key",
        "K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN",
        "0a1b2c3d",
        "0123456789abcdef0123456789abcdef",
        "hunter2",
    ):
        assert secret not in redacted, secret
    assert "/callbacks/ice/<token>?x=1" in redacted
    assert "postgresql+psycopg://icehook:<password>@db:5432/icehook" in redacted


def test_a_redacted_json_line_stays_json() -> None:
    """A secret just before an escaped quote: the quote and its backslash stay."""
    redact = logs.Redactor()
    inner = {
        "url": "/callbacks/ice/Tok-1",
        "auth": "Bearer k1",
        "sig": "Signature=abc",
        "X-ICE-SIGNATURE": "0123456789abcdef0123456789abcdef",
    }
    line = json.dumps({"message": json.dumps(inner)})
    redacted = json.loads(redact(line))
    assert json.loads(redacted["message"]) == {
        "url": "/callbacks/ice/<token>",
        "auth": "Bearer <key>",
        "sig": "Signature=<signature>",
        "X-ICE-SIGNATURE": "<signature>",
    }


def test_a_line_is_one_json_object_with_the_request_id_and_a_redacted_traceback(
    settings: Settings, captured: io.StringIO
) -> None:
    logs.configure("json", captured)
    log = logging.getLogger("app.somewhere")
    log.info("before the key is known: sekrit-api-key")
    logs.protect_settings(
        dataclasses.replace(
            settings,
            api_keys=("sekrit-api-key",),
            database_url="postgresql://u:db-pass-word@h/d",
        )
    )
    log.info("the password db-pass-word alone")
    log.info("outside any request")
    token = logs.REQUEST_ID.set("req-1")
    try:
        try:
            raise RuntimeError("failed on /callbacks/ice/the-token with sekrit-api-key")
        except RuntimeError:
            log.exception("it broke: %s", "sekrit-api-key")
    finally:
        logs.REQUEST_ID.reset(token)
    before, password, outside, broke = records(captured)
    assert before["message"] == "before the key is known: sekrit-api-key"
    assert password["message"] == "the password <secret> alone"
    assert outside["message"] == "outside any request"
    assert (outside["level"], outside["logger"]) == ("INFO", "app.somewhere")
    assert "request_id" not in outside
    assert outside["time"].endswith("+00:00")
    assert broke["request_id"] == "req-1"
    assert broke["message"] == "it broke: <secret>"
    assert "RuntimeError: failed on /callbacks/ice/<token> with <secret>" in broke["exc_info"]
    assert "the-token" not in captured.getvalue()
    assert captured.getvalue().count("sekrit-api-key") == 1  # before it was protected


def test_text_format_for_people(settings: Settings, captured: io.StringIO) -> None:
    logs.configure("text", captured)
    logging.getLogger("app.x").warning("plain %s", "words")
    assert captured.getvalue().rstrip().endswith(" WARNING app.x plain words")


async def test_each_request_has_an_id_in_its_answer_and_its_log_lines(
    settings: Settings, captured: io.StringIO
) -> None:
    """The database is gone: the warning the callback causes names the request's id and
    not the callback's token."""
    gone = dataclasses.replace(settings, database_url="postgresql://nobody@127.0.0.1:9/none")
    logs.configure("json", captured)
    async with serve(create_app(gone)) as url, httpx.AsyncClient(base_url=url) as client:
        given = await client.post(
            "/callbacks/ice/secret-callback-token", content=b"{}", headers={"x-request-id": "r-7"}
        )
        made = await client.get("/healthz", headers={"x-request-id": "not a plain token"})
        again = await client.get("/healthz")
    assert given.status_code == 503
    assert given.headers["x-request-id"] == "r-7"
    assert made.headers["x-request-id"] not in ("", "not a plain token")
    assert again.headers["x-request-id"] != made.headers["x-request-id"]
    warning = next(r for r in records(captured) if r["logger"] == "app.http.errors")
    assert warning["request_id"] == "r-7"
    assert "/callbacks/ice/<token>" in warning["message"]
    assert "secret-callback-token" not in captured.getvalue()


async def test_an_unexpected_error_is_a_500_logged_once_with_the_request_id(
    settings: Settings, captured: io.StringIO
) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    logs.configure("json", captured)
    app = create_app(settings)
    app.router.routes.append(Route("/boom", boom))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.get("/boom", headers={"x-request-id": "bug-1"})
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert answer.headers["x-request-id"] == "bug-1"
    (logged,) = [r for r in records(captured) if r["level"] == "ERROR"]
    assert (logged["logger"], logged["request_id"]) == ("app.http.errors", "bug-1")
    assert "RuntimeError: a bug" in logged["exc_info"]


async def test_the_real_service_logs_json_without_secrets(
    database_url: str, tmp_path: Path
) -> None:
    """``icehook serve --simulate``: jobs, callbacks, a subscription, a secret rotation and
    webhooks; every line it writes is JSON (but its own start-up lines for the person who
    started it), the request id reaches the work the request did, and no key, token,
    webhook secret or signature appears."""
    async with (
        receiver() as hook,
        serve_simulated(
            database_url,
            tmp_path,
            API_KEY,
            ICEHOOK_ALLOWED_WEBHOOK_NETS="127.0.0.0/8",
            ICEHOOK_SIM_JOB_SECONDS="0.2",
        ) as (url, log),
        httpx.AsyncClient(
            base_url=url, headers={"authorization": f"Bearer {API_KEY}"}, timeout=30
        ) as api,
    ):
        created = await api.post("/v1/subscriptions", json={"url": hook.url, "event_types": ["*"]})
        subscription = created.json()
        hook.secrets.append(subscription["secret"])
        job = (
            await api.post(
                "/v1/jobs",
                json={"ProjectId": "p", "OutputMediaConfig": OUTPUT},
                headers={"x-request-id": "submit-1"},
            )
        ).json()

        async def succeeded() -> bool:
            return bool((await api.get(f"/v1/jobs/{job['id']}")).json()["status"] == "succeeded")

        await eventually(succeeded)
        rotated = (await api.post(f"/v1/subscriptions/{subscription['id']}/rotate-secret")).json()
        reconciled = await api.post(
            f"/v1/jobs/{job['id']}/reconcile", headers={"x-request-id": "reconcile-1"}
        )
        assert reconciled.headers["x-request-id"] == "reconcile-1"
        await eventually(lambda: _delivered(api, job["id"]))
        timeline = (await api.get(f"/v1/jobs/{job['id']}")).json()
        assert timeline["callbacks"], "the simulator called back"
        signatures = [r.headers["webhook-signature"] for r in hook.requests]
        sim_url = next(
            line.rsplit(" ", 1)[1]
            for line in log.read_text().splitlines()
            if line.startswith("icehook: ICE simulator at ")
        )
        async with httpx.AsyncClient(base_url=sim_url) as sim:
            truth = (await sim.get(f"/_sim/jobs/{job['ice_job_id']}")).json()
        callback_token = json.loads(truth["user_data"])["NotifyAddress"].rsplit("/", 1)[1]

    lines = log.read_text().splitlines()
    parsed = [log_record(line) for line in lines if not line.startswith("icehook: ")]
    assert parsed, lines
    assert None not in parsed, lines
    assert all({"time", "level", "logger", "message"} <= set(r or {}) for r in parsed)
    assert any(
        r["request_id"] == "reconcile-1" and r["message"].startswith("confirm start")
        for r in parsed
        if r and "request_id" in r
    ), lines
    text = log.read_text()
    for secret in (API_KEY, subscription["secret"], rotated["secret"], callback_token):
        assert secret not in text
    for signature in signatures:
        assert signature.split(",", 1)[1] not in text


async def _delivered(api: httpx.AsyncClient, job_id: str) -> bool:
    deliveries = (await api.get("/v1/deliveries", params={"job_id": job_id})).json()["items"]
    return bool(deliveries) and all(d["status"] == "delivered" for d in deliveries)
