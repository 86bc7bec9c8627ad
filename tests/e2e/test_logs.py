"""Logs: one JSON object per line, the request id on a request's records, no secret anywhere."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.settings import Settings
from app.telemetry import logs
from app.wiring import create_app
from tests.helpers.processes import log_record, records, serve_simulated
from tests.helpers.receiver import receiver
from tests.helpers.servers import http_client, serve
from tests.helpers.stack import OUTPUT
from tests.helpers.waiting import eventually

API_KEY = "logs-api-key-0123"


async def test_each_request_has_an_id_in_its_answer_and_its_log_lines(
    settings: Settings, captured: io.StringIO
) -> None:
    """The database is gone: the warning the callback causes names the request's id and
    not the callback's token."""
    gone = dataclasses.replace(settings, database_url="postgresql://nobody@127.0.0.1:9/none")
    logs.configure("json", captured)
    async with serve(create_app(gone)) as url, http_client(base_url=url) as client:
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
    async with serve(app) as url, http_client(base_url=url) as client:
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
        http_client(
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
        async with http_client(base_url=sim_url) as sim:
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
